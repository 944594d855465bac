package dev.stockade.protocol;

import java.util.List;
import java.util.Map;

/**
 * What a cell's stream delivers, in order: output and results as the cell produces them, then
 * exactly one {@link End}.
 */
public sealed interface CellEvent {
    /** Text the cell (or a process it started) wrote to stdout; decoded as UTF-8, bad bytes replaced. */
    record Stdout(String text) implements CellEvent {}

    /** Text written to stderr; decoded as UTF-8, bad bytes replaced. */
    record Stderr(String text) implements CellEvent {}

    /**
     * A rich result. {@code data} is keyed by format: "text", "html", "markdown", "svg", "png"
     * (base64), "jpeg" (base64), "pdf" (base64), "latex", "json" (a Map or List of plain JSON
     * values), "javascript"; other MIME types appear under their full MIME name (e.g.
     * "application/vnd.plotly.v1+json"). {@code isMainResult} is true for the value of the cell's
     * last expression, false for display() output and figures.
     */
    record Result(Map<String, Object> data, boolean isMainResult) implements CellEvent {}

    /**
     * The cell raised an exception: its class name ("ZeroDivisionError"), its message, and the
     * traceback as plain text (no ANSI colours) showing the cell's lines, not the kernel's frames.
     */
    record Error(String name, String value, String traceback) implements CellEvent {}

    /**
     * The cell is over. {@code executionCount} is the cell's number in its context (1, 2, ...;
     * it starts again at 1 when the context's state is lost). {@code outcome}: OK, ERROR (an
     * exception, see {@link Error}), TIMEOUT, OUTPUT_TRUNCATED, KILLED (the interpreter died,
     * was killed, or the context was restarted or deleted meanwhile). {@code reason} explains it to a
     * person. {@code stateLost}: the context's variables are gone (its interpreter was restarted
     * during or before this cell). {@code files}: regular files created or changed under the user's
     * home while the cell ran (see docs/agent-protocol.md for what the scan skips).
     */
    record End(int executionCount, Outcome outcome, String reason, boolean stateLost, List<FileChange> files)
            implements CellEvent {}
}
