package dev.stockade.sdk;

/** The server refused a request as malformed or out of bounds (HTTP 400, Connect {@code invalid_argument}). E2B: {@code InvalidArgumentError}. */
public final class InvalidArgumentException extends StockadeException {
    public InvalidArgumentException(String message) {
        super(message, 0, null);
    }

    public InvalidArgumentException(String message, int statusCode, Throwable cause) {
        super(message, statusCode, cause);
    }
}
