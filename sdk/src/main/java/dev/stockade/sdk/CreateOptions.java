package dev.stockade.sdk;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * How to create a sandbox. Every setting is optional; {@link #defaults()} asks for the server's
 * default template, runtime, lifetime and limits.
 *
 * <pre>{@code
 * CreateOptions options = CreateOptions.builder()
 *         .template("base")
 *         .timeout(Duration.ofMinutes(10))
 *         .runtime("runsc")
 *         .limits(Limits.builder().memoryMB(1024).build())
 *         .build();
 * }</pre>
 *
 * @param template the template name ({@code base} is the default Python template; a
 *     {@code -hardened} suffix selects the gVisor tier)
 * @param timeout the sandbox's lifetime before the server kills it; null for the server default
 *     (300 s). Sent in whole seconds, rounded up.
 * @param metadata free-form key/value pairs stored with the sandbox and returned by list/info
 * @param envs environment variables for every command in the sandbox
 * @param runtime {@code runc} or {@code runsc} (Stockade extension); null for the server default
 * @param limits resource limits (Stockade extension); null for the server defaults
 * @param allowOut hosts the sandbox may reach (E2B's {@code network.allowOut}); empty means no
 *     network at all, Stockade's default
 */
public record CreateOptions(
        String template,
        Duration timeout,
        Map<String, String> metadata,
        Map<String, String> envs,
        String runtime,
        Limits limits,
        List<String> allowOut) {

    public CreateOptions {
        metadata = metadata == null ? Map.of() : Map.copyOf(metadata);
        envs = envs == null ? Map.of() : Map.copyOf(envs);
        allowOut = allowOut == null ? List.of() : List.copyOf(allowOut);
        if (timeout != null && (timeout.isNegative() || timeout.isZero())) {
            throw new IllegalArgumentException("timeout must be positive, got " + timeout);
        }
    }

    /** The server's defaults for everything. */
    public static CreateOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Builds {@link CreateOptions}. Not thread-safe. */
    public static final class Builder {
        private String template;
        private Duration timeout;
        private final Map<String, String> metadata = new LinkedHashMap<>();
        private final Map<String, String> envs = new LinkedHashMap<>();
        private String runtime;
        private Limits limits;
        private List<String> allowOut = List.of();

        private Builder() {}

        public Builder template(String value) {
            template = value;
            return this;
        }

        public Builder timeout(Duration value) {
            timeout = value;
            return this;
        }

        public Builder metadata(String key, String value) {
            metadata.put(Objects.requireNonNull(key, "key"), Objects.requireNonNull(value, "value"));
            return this;
        }

        public Builder metadata(Map<String, String> values) {
            values.forEach(this::metadata);
            return this;
        }

        public Builder env(String name, String value) {
            envs.put(Objects.requireNonNull(name, "name"), Objects.requireNonNull(value, "value"));
            return this;
        }

        public Builder envs(Map<String, String> values) {
            values.forEach(this::env);
            return this;
        }

        public Builder runtime(String value) {
            runtime = value;
            return this;
        }

        public Builder limits(Limits value) {
            limits = value;
            return this;
        }

        public Builder allowOut(List<String> hosts) {
            allowOut = List.copyOf(hosts);
            return this;
        }

        public CreateOptions build() {
            return new CreateOptions(template, timeout, metadata, envs, runtime, limits, allowOut);
        }
    }
}
