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
        NetworkPolicy network,
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

    /** Limits a client asked for; null fields take the server's defaults. */
    public record LimitsRequest(Integer memoryMB, Double cpus, Integer pids, Integer diskMB, Integer outputMB,
                                Integer commandTimeoutSeconds) {
        public static final LimitsRequest NONE = new LimitsRequest(null, null, null, null, null, null);
    }
}
