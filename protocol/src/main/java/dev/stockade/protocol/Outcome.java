package dev.stockade.protocol;

import java.util.Set;

/**
 * How a command or a cell ended: the {@code outcome} the agent sends in a process's or a cell's end
 * event, the server forwards to its clients, and the SDK reports. One enum for the agent client, the
 * server and the SDK, so a new outcome is added in one place and every exhaustive {@code switch}
 * over it breaks where it must be handled.
 *
 * <p>Commands end {@link #EXITED}, {@link #TIMEOUT}, {@link #OOM_KILLED}, {@link #OUTPUT_TRUNCATED},
 * {@link #SIGNAL} or {@link #KILLED}; cells end {@link #OK}, {@link #ERROR}, {@link #TIMEOUT},
 * {@link #OUTPUT_TRUNCATED} or {@link #KILLED}. {@link #UNKNOWN} is only for clients of a newer
 * server; the agent client refuses any name not in the event's set ({@link #PROCESS}, {@link #CELL}).
 */
public enum Outcome {
    /** The process exited on its own; the exit code is its own. */
    EXITED("exited"),
    /** The wall-clock limit fired and the agent (or the server) ended the command or interrupted the cell. */
    TIMEOUT("timeout"),
    /** The sandbox's memory limit fired and the kernel killed the process. */
    OOM_KILLED("oom_killed"),
    /** More than the output limit was written; the rest was dropped and the command or cell stopped. */
    OUTPUT_TRUNCATED("output_truncated"),
    /** The process died of a signal it did not get from a client. */
    SIGNAL("signal"),
    /**
     * A client killed the process (or the sandbox ended); for a cell, its interpreter died, was killed,
     * or its context was restarted or deleted meanwhile.
     */
    KILLED("killed"),
    /** The cell ran to its end without raising. */
    OK("ok"),
    /** The cell raised an exception. */
    ERROR("error"),
    /** The server sent an outcome this version does not know (SDK only; see the result's reason). */
    UNKNOWN("unknown");

    /** The outcomes a process's end event may carry. */
    public static final Set<Outcome> PROCESS = Set.of(EXITED, TIMEOUT, OOM_KILLED, OUTPUT_TRUNCATED, SIGNAL, KILLED);
    /** The outcomes a cell's end event may carry. */
    public static final Set<Outcome> CELL = Set.of(OK, ERROR, TIMEOUT, OUTPUT_TRUNCATED, KILLED);

    private final String wireName;

    Outcome(String wireName) {
        this.wireName = wireName;
    }

    /** The name on the wire, e.g. {@code oom_killed}. */
    public String wireName() {
        return wireName;
    }

    /** The outcome named {@code name} on the wire; null for null or empty, {@link #UNKNOWN} for a name not listed here. */
    public static Outcome fromWire(String name) {
        if (name == null || name.isEmpty()) return null;
        for (Outcome o : values()) {
            if (o.wireName.equals(name)) return o;
        }
        return UNKNOWN;
    }
}
