package dev.stockade.protocol;

/** What a process stream delivers, in order: one Started, any number of output chunks, one Ended. */
public sealed interface AgentEvent {
    record Started(int pid) implements AgentEvent {}

    record Stdout(byte[] data) implements AgentEvent {}

    record Stderr(byte[] data) implements AgentEvent {}

    /**
     * The process ended. {@code exitCode} is the exit status (0..255), or -1 when a signal killed
     * it; {@code signal} is then the signal's name ("SIGKILL"), else null. {@code outcome} is one of
     * {@link Outcome#PROCESS} (see docs/agent-protocol.md);
     * {@code reason} explains it to a person, e.g. "killed after exceeding the 10 s command timeout".
     */
    record Ended(int exitCode, String signal, Outcome outcome, String reason) implements AgentEvent {}
}
