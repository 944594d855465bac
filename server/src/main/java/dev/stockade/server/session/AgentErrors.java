package dev.stockade.server.session;

import dev.stockade.protocol.AgentException;
import dev.stockade.server.core.Sandbox;
import dev.stockade.server.core.SandboxState;
import dev.stockade.server.error.StockadeError;
import java.util.Optional;

/**
 * The agent link's failures as the server's error type: the one place where an
 * {@link AgentException.Code} becomes a {@link StockadeError.Code} (the HTTP layer then maps those
 * to statuses). Used by {@link Sessions} and its streams only, so no AgentException leaves the data plane.
 */
final class AgentErrors {
    private AgentErrors() {}

    static StockadeError translate(AgentException e) {
        StockadeError.Code code = switch (e.code()) {
            case NOT_FOUND, PROCESS_NOT_FOUND -> StockadeError.Code.NOT_FOUND;
            case ALREADY_EXISTS -> StockadeError.Code.CONFLICT;
            case INVALID_ARGUMENT, NOT_A_DIRECTORY, IS_A_DIRECTORY, PERMISSION_DENIED -> StockadeError.Code.INVALID_ARGUMENT;
            case NO_SPACE -> StockadeError.Code.NO_SPACE;
            case TIMEOUT -> StockadeError.Code.TIMEOUT;
            // A sandbox limit (pids, memory) refused the operation: the sandbox is busy, not the
            // client rate-limited (Connect's resource_exhausted would read as RateLimitError).
            case UNAVAILABLE, PROTOCOL, RESOURCE_EXHAUSTED -> StockadeError.Code.UNAVAILABLE;
            case INTERNAL -> StockadeError.Code.INTERNAL;
        };
        return new StockadeError(code, e.getMessage(), e);
    }

    /**
     * As {@link #translate(AgentException)}, for a stream of {@code sb} that broke: when the agent
     * went away because the sandbox's runtime ended the whole sandbox (a limit reached), or because
     * the sandbox was killed or timed out meanwhile (its state is set before its runtime is
     * stopped), the error says so in the words E2B's SDKs look for ("sandbox was killed or reached
     * its end of life"; unavailable becomes their TimeoutError), not in the link's own words.
     */
    static StockadeError translate(AgentException e, Sandbox sb) {
        if (e.code() == AgentException.Code.UNAVAILABLE || e.code() == AgentException.Code.PROTOCOL) {
            // The runtime's reason (a limit reached) first; else why the server ended it (killed, timed out).
            Optional<String> why = sb.endReason();
            if (why.isEmpty() && sb.state() instanceof SandboxState.Ended(_, var ended)) why = Optional.of(ended);
            if (why.isPresent()) {
                return new StockadeError(StockadeError.Code.UNAVAILABLE, "The sandbox was killed or reached its end"
                        + " of life while the request was in flight (sandbox " + sb.id() + ": " + why.get() + ")", e);
            }
        }
        return translate(e);
    }
}
