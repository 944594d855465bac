package dev.stockade.sdk;

/** A deadline passed: the request timeout, a command's timeout, or the sandbox's own lifetime (Connect {@code deadline_exceeded}, {@code unavailable}). E2B: {@code TimeoutError}. */
public final class TimeoutException extends StockadeException {
    public TimeoutException(String message) {
        super(message, 0, null);
    }

    public TimeoutException(String message, int statusCode, Throwable cause) {
        super(message, statusCode, cause);
    }
}
