package dev.stockade.server.api;

import dev.stockade.server.error.StockadeError;

/**
 * The one place where failure codes become HTTP statuses and Connect error codes (the agent's codes
 * became the server's in the data plane, {@code dev.stockade.server.session}).
 */
final class Errors {
    private Errors() {}

    static int status(StockadeError.Code code) {
        return switch (code) {
            case INVALID_ARGUMENT -> 400;
            case UNAUTHENTICATED -> 401;
            case FORBIDDEN -> 403;
            case NOT_FOUND -> 404;
            case SANDBOX_GONE -> 502;
            case CONFLICT -> 409;
            case PAYLOAD_TOO_LARGE -> 413;
            case URI_TOO_LONG -> 414;
            case HEADERS_TOO_LARGE -> 431;
            case UNSUPPORTED_MEDIA_TYPE -> 415;
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
            case PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, URI_TOO_LONG, HEADERS_TOO_LARGE -> "invalid_argument";
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
            case URI_TOO_LONG -> 414;
            case HEADERS_TOO_LARGE -> 431;
            // Connect's protocol: a server answers a codec it does not support with HTTP 415.
            case UNSUPPORTED_MEDIA_TYPE -> 415;
            case RESOURCE_EXHAUSTED, NO_SPACE -> 429;
            case UNAVAILABLE -> 503;
            case TIMEOUT -> 504;
            case INTERNAL -> 500;
        };
    }
}
