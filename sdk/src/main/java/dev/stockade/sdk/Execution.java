package dev.stockade.sdk;

import dev.stockade.protocol.Outcome;
import java.util.List;

/**
 * What running a cell produced, like E2B's {@code Execution}, plus Stockade's account of how it
 * ended. A cell that raised is not an exception in Java either: look at {@link #error()}.
 *
 * @param results what the cell displayed, in order; the main result (the last expression's value) among them
 * @param logs everything it printed, as the chunks arrived
 * @param error the exception it raised, or null
 * @param executionCount the context's execution counter after this cell (Jupyter's {@code In [n]})
 * @param outcome how it ended (Stockade extension; one of {@link Outcome#CELL}, or UNKNOWN); null when the server does not say
 * @param reason a human-readable explanation of the outcome; null when the server does not say
 * @param stateLost true when the context was restarted under the cell (a timeout that an interrupt
 *     could not stop, a dead interpreter): its variables and imports are gone
 * @param files files under /home/user that the cell created or changed
 */
public record Execution(
        List<Result> results,
        Logs logs,
        ExecutionError error,
        int executionCount,
        Outcome outcome,
        String reason,
        boolean stateLost,
        List<CellFile> files) {

    public Execution {
        results = List.copyOf(results);
        files = List.copyOf(files);
        if (logs == null) logs = new Logs(List.of(), List.of());
    }

    /** The text of the main result (the value of the cell's last expression), or null when it had none. */
    public String text() {
        for (Result r : results) {
            if (r.isMainResult()) return r.text();
        }
        return null;
    }

    /**
     * What a cell printed.
     *
     * @param stdout standard output, in the chunks it arrived in
     * @param stderr standard error, in the chunks it arrived in
     */
    public record Logs(List<String> stdout, List<String> stderr) {
        public Logs {
            stdout = List.copyOf(stdout);
            stderr = List.copyOf(stderr);
        }

        /** All of standard output, joined. */
        public String stdoutText() {
            return String.join("", stdout);
        }

        /** All of standard error, joined. */
        public String stderrText() {
            return String.join("", stderr);
        }
    }
}
