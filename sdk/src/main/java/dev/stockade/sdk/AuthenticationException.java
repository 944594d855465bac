package dev.stockade.sdk;

/** The API key is missing or wrong (HTTP 401, Connect {@code unauthenticated}). E2B: {@code AuthenticationError}. */
public final class AuthenticationException extends StockadeException {
    public AuthenticationException(String message) {
        super(message, 0, null);
    }

    public AuthenticationException(String message, int statusCode, Throwable cause) {
        super(message, statusCode, cause);
    }
}
