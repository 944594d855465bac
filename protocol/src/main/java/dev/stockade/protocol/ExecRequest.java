package dev.stockade.protocol;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A process to start inside the sandbox. {@code argv} is executed directly (no shell); the E2B
 * layer wraps shell commands as {@code ["/bin/bash", "-l", "-c", cmd]}. {@code env} is the whole
 * environment beyond the agent's fixed base (PATH, HOME, LANG, USER...): nothing else is inherited.
 * {@code timeoutMillis} 0 means none; {@code outputLimitBytes} caps stdout+stderr together.
 */
public record ExecRequest(
        List<String> argv,
        Map<String, String> env,
        String cwd,
        String user,
        boolean stdin,
        long timeoutMillis,
        long outputLimitBytes,
        String tag) {
    public ExecRequest {
        argv = List.copyOf(argv);
        env = Map.copyOf(env);
        Objects.requireNonNull(user, "user");
        if (argv.isEmpty()) throw new IllegalArgumentException("argv must not be empty");
    }
}
