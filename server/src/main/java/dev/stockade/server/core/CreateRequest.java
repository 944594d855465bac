package dev.stockade.server.core;

import java.util.Map;

/**
 * What a client asked for at create, already parsed but not yet checked against policy.
 * Null means "not given". {@link SandboxManager} resolves defaults and refuses what policy forbids.
 */
public record CreateRequest(
        String template,
        Integer timeoutSeconds,
        Map<String, String> metadata,
        Map<String, String> envVars,
        String runtime,
        LimitsRequest limits) {
    public CreateRequest {
        metadata = metadata == null ? Map.of() : Map.copyOf(metadata);
        envVars = envVars == null ? Map.of() : Map.copyOf(envVars);
    }

    /** Limits a client asked for; null fields take the server's defaults. */
    public record LimitsRequest(Integer memoryMB, Double cpus, Integer pids, Integer diskMB, Integer outputMB,
                                Integer commandTimeoutSeconds) {
        public static final LimitsRequest NONE = new LimitsRequest(null, null, null, null, null, null);
    }
}
