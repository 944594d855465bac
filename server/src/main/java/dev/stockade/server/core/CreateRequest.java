package dev.stockade.server.core;

import dev.stockade.server.egress.NetworkPolicy;
import java.util.List;
import java.util.Map;

/**
 * What a client asked for at create, already parsed but not yet checked against policy.
 * Null means "not given". {@link CreatePolicy} resolves defaults and refuses what policy forbids.
 * {@code autoPause}: the timeout pauses the sandbox instead of ending it (E2B's lifecycle onTimeout "pause").
 * {@code idleTimeoutSeconds}: the idle policy (see {@link Sandbox#idleTimeoutSeconds}); null: off.
 */
public record CreateRequest(
        String template,
        Integer timeoutSeconds,
        Map<String, String> metadata,
        Map<String, String> envVars,
        String runtime,
        LimitsRequest limits,
        NetworkRequest network,
        Map<String, SecretRequest> secrets,
        boolean autoPause,
        Integer idleTimeoutSeconds) {
    public CreateRequest {
        metadata = metadata == null ? Map.of() : Map.copyOf(metadata);
        envVars = envVars == null ? Map.of() : Map.copyOf(envVars);
        secrets = secrets == null ? Map.of() : Map.copyOf(secrets);
    }

    /**
     * A secret the sandbox may use but never see: its processes get an opaque placeholder in the
     * environment variable of the secret's name, and the egress proxy substitutes {@code value} for it
     * only in requests to {@code hosts}.
     */
    public record SecretRequest(String value, List<String> hosts) {
        public SecretRequest {
            hosts = List.copyOf(hosts);
        }

        @Override
        public String toString() {
            return "SecretRequest[value=<redacted>, hosts=" + hosts + "]";
        }
    }

    /**
     * The network a client asked for, and, when that is open access, which field asked: by name
     * ({@code network.mode: "open"}) or implied by E2B's fields, which the SDKs send whether their
     * user asked or not. {@link CreatePolicy} refuses the first and may downgrade the second.
     *
     * @param openAskedThrough null unless {@code policy} is open
     */
    public record NetworkRequest(NetworkPolicy policy, OpenVia openAskedThrough) {
        public NetworkRequest {
            if (policy == null) policy = NetworkPolicy.none();
            if ((policy.mode() == NetworkPolicy.Mode.OPEN) != (openAskedThrough != null)) {
                throw new IllegalArgumentException("an open policy says which field asked for it, and only an open one");
            }
        }

        /** A policy that is not open, or open asked by name. */
        public static NetworkRequest of(NetworkPolicy policy) {
            return new NetworkRequest(policy, policy.mode() == NetworkPolicy.Mode.OPEN ? OpenVia.MODE : null);
        }
    }

    /** The field through which a request asked for open access. */
    public enum OpenVia {
        /** {@code network.mode: "open"}: by name, so never downgraded. */
        MODE("network.mode"),
        /** {@code allow_internet_access: true}: E2B's Python SDK and JS SDK up to 2.45 send it on every create. */
        ALLOW_INTERNET_ACCESS("allow_internet_access"),
        /** A {@code network.denyOut} without allowOut, which E2B reads as open access minus those entries. */
        DENY_OUT("network.denyOut");

        private final String field;

        OpenVia(String field) {
            this.field = field;
        }

        /** The request field, as a client wrote it. */
        public String field() {
            return field;
        }
    }

    /** Limits a client asked for; null fields take the server's defaults. */
    public record LimitsRequest(Integer memoryMB, Double cpus, Integer pids, Integer diskMB, Integer outputMB,
                                Integer commandTimeoutSeconds) {
        public static final LimitsRequest NONE = new LimitsRequest(null, null, null, null, null, null);
    }
}
