package dev.stockade.server.error;

/**
 * The server's one exception type. The code says what kind of failure it is; only the HTTP layer
 * maps codes to statuses. Messages follow "what failed: why. What to check."
 */
public final class StockadeError extends RuntimeException {
    public enum Code {
        INVALID_ARGUMENT,
        UNAUTHENTICATED,
        /** Understood, but a policy refuses it (a package not on the allow-list): HTTP 403. */
        FORBIDDEN,
        NOT_FOUND,
        /** An in-sandbox call for a sandbox that does not exist (any more): E2B's proxy answers 502. */
        SANDBOX_GONE,
        CONFLICT,
        PAYLOAD_TOO_LARGE,
        /** A request line (its target) longer than the server reads: HTTP 414. */
        URI_TOO_LONG,
        /** Request headers beyond the server's bounds (total size, count, one header's size): HTTP 431. */
        HEADERS_TOO_LARGE,
        /** A body in a format the endpoint does not read (text or a form where JSON is expected): HTTP 415. */
        UNSUPPORTED_MEDIA_TYPE,
        RESOURCE_EXHAUSTED,
        NO_SPACE,
        UNAVAILABLE,
        TIMEOUT,
        INTERNAL
    }

    private final Code code;
    private final long retryAfterSeconds;

    public StockadeError(Code code, String message) {
        super(message);
        this.code = code;
        this.retryAfterSeconds = 0;
    }

    private StockadeError(Code code, String message, long retryAfterSeconds) {
        super(message);
        this.code = code;
        this.retryAfterSeconds = retryAfterSeconds;
    }

    public StockadeError(Code code, String message, Throwable cause) {
        super(message, cause);
        this.code = code;
        this.retryAfterSeconds = 0;
    }

    /** A quota is full: HTTP 429 with {@code Retry-After: retryAfterSeconds}. */
    public static StockadeError exhausted(String message, long retryAfterSeconds) {
        return new StockadeError(Code.RESOURCE_EXHAUSTED, message, Math.max(1, retryAfterSeconds));
    }

    /** Seconds after which a retry may succeed (a Retry-After header), or 0 when there is no such hint. */
    public long retryAfterSeconds() {
        return retryAfterSeconds;
    }

    public Code code() {
        return code;
    }

    public static StockadeError invalid(String message) {
        return new StockadeError(Code.INVALID_ARGUMENT, message);
    }

    public static StockadeError notFound(String message) {
        return new StockadeError(Code.NOT_FOUND, message);
    }
}
