package dev.stockade.protocol;

import java.util.Map;
import java.util.Objects;

/**
 * One cell to run in a context. {@code contextId} null means the sandbox's default python context,
 * created on first use. {@code envs} are set for this cell only and restored afterwards (null: none).
 * {@code timeoutMillis} 0 means none: at the deadline the cell is interrupted (KeyboardInterrupt),
 * and its interpreter killed and restarted 2 s later if it has not stopped. {@code outputLimitBytes}
 * 0 means none: it caps stdout, stderr, results and errors of the cell together. {@code language}
 * (null: python) picks the default context of that language when {@code contextId} is null:
 * "python" or "bash", one default context each.
 */
public record ExecuteCell(String contextId, String code, Map<String, String> envs, long timeoutMillis, long outputLimitBytes,
        String language) {
    /** A cell of the default language (python) or of the named context. */
    public ExecuteCell(String contextId, String code, Map<String, String> envs, long timeoutMillis, long outputLimitBytes) {
        this(contextId, code, envs, timeoutMillis, outputLimitBytes, null);
    }

    public ExecuteCell {
        Objects.requireNonNull(code, "code");
        envs = envs == null ? Map.of() : Map.copyOf(envs);
        if (timeoutMillis < 0) throw new IllegalArgumentException("timeoutMillis must not be negative");
        if (outputLimitBytes < 0) throw new IllegalArgumentException("outputLimitBytes must not be negative");
    }

    /** {@code code} in the default context, without a timeout or an output limit. */
    public static ExecuteCell of(String code) {
        return new ExecuteCell(null, code, Map.of(), 0, 0);
    }
}
