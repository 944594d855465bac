package dev.stockade.protocol;

import java.util.Map;
import java.util.Objects;

/**
 * One cell to run in a context. {@code contextId} null means the sandbox's default python context,
 * created on first use. {@code envs} are set for this cell only and restored afterwards (null: none).
 * {@code timeoutMillis} 0 means none: at the deadline the cell is interrupted (KeyboardInterrupt),
 * and its interpreter killed and restarted 2 s later if it has not stopped. {@code outputLimitBytes}
 * 0 means none: it caps stdout, stderr, results and errors of the cell together.
 */
public record ExecuteCell(String contextId, String code, Map<String, String> envs, long timeoutMillis, long outputLimitBytes) {
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
