package dev.stockade.protocol;

/**
 * What a process stream delivers, in order: one Started, any number of output chunks, one Ended.
 * A process started on a terminal ({@link ExecRequest#terminal}) has Terminal chunks, never Stdout or Stderr.
 */
public sealed interface AgentEvent {
    /** The process runs: its pid, and whether it runs on a terminal (its output is then Terminal chunks). */
    record Started(int pid, boolean terminal) implements AgentEvent {
        public Started(int pid) {
            this(pid, false);
        }
    }

    record Stdout(byte[] data) implements AgentEvent {}

    record Stderr(byte[] data) implements AgentEvent {}

    /** What a process on a pseudo-terminal wrote to it (stdout and stderr are one stream there). */
    record Terminal(byte[] data) implements AgentEvent {}

    /**
     * The process ended. {@code exitCode} is the exit status (0..255), or -1 when a signal killed
     * it; {@code signal} is then the signal's name ("SIGKILL"), else null. {@code outcome} is one of
     * {@link Outcome#PROCESS} (see docs/agent-protocol.md);
     * {@code reason} explains it to a person, e.g. "killed after exceeding the 10 s command timeout".
     */
    record Ended(int exitCode, String signal, Outcome outcome, String reason) implements AgentEvent {}
}
