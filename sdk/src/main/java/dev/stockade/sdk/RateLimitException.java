package dev.stockade.sdk;

/** The server refused a request because a quota or rate limit was hit (HTTP 429, Connect {@code resource_exhausted}). E2B: {@code RateLimitError}. */
public final class RateLimitException extends StockadeException {
    public RateLimitException(String message) {
        super(message, 0, null);
    }

    public RateLimitException(String message, int statusCode, Throwable cause) {
        super(message, statusCode, cause);
    }
}
