package dev.stockade.protocol;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A process to start inside the sandbox. {@code argv} is executed directly (no shell); the E2B
 * layer wraps shell commands as {@code ["/bin/bash", "-l", "-c", cmd]}. {@code env} is the whole
 * environment beyond the agent's fixed base (PATH, HOME, LANG, USER...): nothing else is inherited.
 * {@code timeoutMillis} 0 means none; {@code outputLimitBytes} caps stdout+stderr together.
 * With a {@code terminal} size the process runs on a pseudo-terminal of that size (E2B's pty):
 * its output arrives as {@link AgentEvent.Terminal}, input goes to the terminal, and it can be
 * resized ({@code AgentClient.resize}); null for pipes.
 */
public record ExecRequest(
        List<String> argv,
        Map<String, String> env,
        String cwd,
        String user,
        boolean stdin,
        long timeoutMillis,
        long outputLimitBytes,
        String tag,
        TerminalSize terminal) {
    public ExecRequest {
        argv = List.copyOf(argv);
        env = Map.copyOf(env);
        Objects.requireNonNull(user, "user");
        if (argv.isEmpty()) throw new IllegalArgumentException("argv must not be empty");
    }

    /** A process on pipes (no terminal). */
    public ExecRequest(List<String> argv, Map<String, String> env, String cwd, String user, boolean stdin,
            long timeoutMillis, long outputLimitBytes, String tag) {
        this(argv, env, cwd, user, stdin, timeoutMillis, outputLimitBytes, tag, null);
    }

    /** A terminal's size in character cells, each 1..{@value #MAX}. */
    public record TerminalSize(int cols, int rows) {
        /** The largest number of columns or rows (the agent refuses more). */
        public static final int MAX = 9999;

        public TerminalSize {
            if (cols < 1 || cols > MAX || rows < 1 || rows > MAX) {
                throw new IllegalArgumentException("a terminal's cols and rows must be 1.." + MAX + ", got " + cols + "x" + rows);
            }
        }
    }
}
