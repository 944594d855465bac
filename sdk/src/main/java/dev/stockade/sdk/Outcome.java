package dev.stockade.sdk;

/**
 * How a command ended, as Stockade's {@code outcome} extension field reports it. E2B servers do
 * not send it, so {@link CommandResult#outcome()} is null there.
 */
public enum Outcome {
    /** The process exited on its own; the exit code is its own. */
    EXITED("exited"),
    /** The command's wall-clock limit fired and the server ended it. */
    TIMEOUT("timeout"),
    /** The sandbox's memory limit fired and the kernel killed the process. */
    OOM_KILLED("oom_killed"),
    /** The command wrote more than the output limit; the rest was dropped. */
    OUTPUT_TRUNCATED("output_truncated"),
    /** The process died of a signal it did not get from a client. */
    SIGNAL("signal"),
    /** A client killed the process (or the sandbox ended). */
    KILLED("killed"),
    /** The server sent an outcome this SDK version does not know; see {@link CommandResult#reason()}. */
    UNKNOWN("unknown");

    private final String wireName;

    Outcome(String wireName) {
        this.wireName = wireName;
    }

    /** The name on the wire, e.g. {@code oom_killed}. */
    public String wireName() {
        return wireName;
    }

    /** The outcome named {@code name} on the wire; null for null, {@link #UNKNOWN} for a name not listed here. */
    public static Outcome fromWire(String name) {
        if (name == null || name.isEmpty()) return null;
        for (Outcome o : values()) {
            if (o.wireName.equals(name)) return o;
        }
        return UNKNOWN;
    }
}
