package dev.stockade.sdk;

/**
 * How a cell ended, as Stockade's {@code outcome} extension reports it. E2B servers do not send it,
 * so {@link Execution#outcome()} is null there.
 */
public enum CellOutcome {
    /** The cell ran to its end without raising. */
    OK("ok"),
    /** The cell raised; {@link Execution#error()} says what. */
    ERROR("error"),
    /** The cell exceeded its time limit and was interrupted (the context may have been restarted: see {@link Execution#stateLost()}). */
    TIMEOUT("timeout"),
    /** The cell wrote more than the sandbox's output limit and was stopped. */
    OUTPUT_TRUNCATED("output_truncated"),
    /** The context's interpreter died under the cell (it exited, was killed, or ran out of memory) and was restarted. */
    KILLED("killed"),
    /** The server sent an outcome this SDK version does not know; see {@link Execution#reason()}. */
    UNKNOWN("unknown");

    private final String wireName;

    CellOutcome(String wireName) {
        this.wireName = wireName;
    }

    /** The name on the wire, e.g. {@code output_truncated}. */
    public String wireName() {
        return wireName;
    }

    /** The outcome named {@code name} on the wire; null for null, {@link #UNKNOWN} for a name not listed here. */
    public static CellOutcome fromWire(String name) {
        if (name == null || name.isEmpty()) return null;
        for (CellOutcome o : values()) {
            if (o.wireName.equals(name)) return o;
        }
        return UNKNOWN;
    }
}
