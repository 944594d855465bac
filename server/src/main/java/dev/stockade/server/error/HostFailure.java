package dev.stockade.server.error;

import dev.stockade.runtime.RuntimeFailure;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A failure on the host side — a runtime's command, the host's disk — as the client who asked
 * reads it: what failed (naming the sandbox) and the kind of cause, never the failure's own text,
 * which carries host paths, host uids and runc's or runsc's output (issue 15, item 4). That text is
 * logged here, with the failure, for the operator. Called by the core where a runtime's failure
 * answers a request (pause, resume, snapshot, create, take-over), on the request's thread.
 */
public final class HostFailure {
    private static final Logger LOG = Logger.getLogger(HostFailure.class.getName());

    private HostFailure() {}

    /**
     * The error a client reads for {@code what} failing because of {@code cause}: "what: why. The
     * server's log has the runtime's own words." The cause is kept (for the log), never shown.
     */
    public static StockadeError of(StockadeError.Code code, String what, RuntimeFailure cause) {
        LOG.log(Level.WARNING, what + ": " + cause.getMessage(), cause);
        return new StockadeError(code, what + ": " + reason(cause), cause);
    }

    /**
     * Why, in words that name no host detail: the kind of failure (a full disk said as such, since
     * the operator acts on it at once), and where its details are.
     */
    public static String reason(RuntimeFailure cause) {
        String kind = diskFull(cause) ? "the host's disk for sandboxes is full (no space left)" : switch (cause.code()) {
            case UNAVAILABLE -> "the runtime is not available on this host";
            case START_FAILED -> "the runtime could not start it";
            case NOT_FOUND -> "its container is no longer running";
            case EXHAUSTED -> "the host is out of the resources it needs";
            case HOST_ERROR -> "the runtime failed on the host";
        };
        return kind + " (the server's log has the details)";
    }

    /** Whether ENOSPC is behind {@code t} (runc's or cp's "No space left on device", a FileSystemException's). */
    private static boolean diskFull(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause() == c ? null : c.getCause()) {
            if (c.getMessage() != null && c.getMessage().contains("No space left")) return true;
        }
        return false;
    }
}
