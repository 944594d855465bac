package dev.stockade.server.api;

import dev.stockade.agent.AgentException;
import dev.stockade.server.core.StockadeError;

/** The one place where failure codes become HTTP statuses and Connect error codes. */
final class Errors {
    private Errors() {}

    static StockadeError fromAgent(AgentException e) {
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
     * As {@link #fromAgent(AgentException)}, for a stream of {@code sb} that broke: when the agent went
     * away because the sandbox's runtime ended the whole sandbox (a limit reached), the error says so.
     */
    static StockadeError fromAgent(AgentException e, dev.stockade.server.core.Sandbox sb) {
        if (e.code() == AgentException.Code.UNAVAILABLE || e.code() == AgentException.Code.PROTOCOL) {
            java.util.Optional<String> why = sb.endReason();
            if (why.isPresent()) {
                return new StockadeError(StockadeError.Code.UNAVAILABLE, "sandbox " + sb.id() + " ended: " + why.get(), e);
            }
        }
        return fromAgent(e);
    }

    static int status(StockadeError.Code code) {
        return switch (code) {
            case INVALID_ARGUMENT -> 400;
            case UNAUTHENTICATED -> 401;
            case FORBIDDEN -> 403;
            case NOT_FOUND -> 404;
            case SANDBOX_GONE -> 502;
            case CONFLICT -> 409;
            case PAYLOAD_TOO_LARGE -> 413;
            case RESOURCE_EXHAUSTED -> 429;
            case NO_SPACE -> 507;
            case UNAVAILABLE -> 503;
            case TIMEOUT -> 504;
            case INTERNAL -> 500;
        };
    }

    /** Connect protocol code names (connectrpc.com/docs/protocol#error-codes). */
    static String connectCode(StockadeError.Code code) {
        return switch (code) {
            case INVALID_ARGUMENT -> "invalid_argument";
            case UNAUTHENTICATED -> "unauthenticated";
            case FORBIDDEN -> "permission_denied";
            case NOT_FOUND -> "not_found";
            case SANDBOX_GONE -> "unavailable";
            case CONFLICT -> "already_exists";
            // resource_exhausted is the E2B SDKs' RateLimitError: only for rate limits (docs/e2b-wire.md §13).
            case PAYLOAD_TOO_LARGE -> "invalid_argument";
            case RESOURCE_EXHAUSTED, NO_SPACE -> "resource_exhausted";
            case UNAVAILABLE -> "unavailable";
            case TIMEOUT -> "deadline_exceeded";
            case INTERNAL -> "internal";
        };
    }

    static int connectStatus(StockadeError.Code code) {
        return switch (code) {
            case INVALID_ARGUMENT -> 400;
            case UNAUTHENTICATED -> 401;
            case FORBIDDEN -> 403;
            case NOT_FOUND -> 404;
            case SANDBOX_GONE -> 502;
            case CONFLICT -> 409;
            case PAYLOAD_TOO_LARGE -> 400;
            case RESOURCE_EXHAUSTED, NO_SPACE -> 429;
            case UNAVAILABLE -> 503;
            case TIMEOUT -> 504;
            case INTERNAL -> 500;
        };
    }
}
