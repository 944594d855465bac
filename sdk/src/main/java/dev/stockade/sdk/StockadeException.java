package dev.stockade.sdk;

/**
 * The base of every error the SDK throws. Unchecked, like the rest of the Java HTTP clients'
 * error families; catch this to handle every Stockade failure in one place, or one of the
 * subclasses, which mirror the E2B SDKs' error classes:
 * {@link NotFoundException}, {@link AuthenticationException}, {@link InvalidArgumentException},
 * {@link TimeoutException}, {@link RateLimitException}, {@link CommandExitException} and
 * {@link SandboxException} for everything else.
 */
public abstract sealed class StockadeException extends RuntimeException
        permits SandboxException, NotFoundException, AuthenticationException, InvalidArgumentException,
                TimeoutException, RateLimitException, CommandExitException {

    private final int statusCode;

    StockadeException(String message, int statusCode, Throwable cause) {
        super(message, cause);
        this.statusCode = statusCode;
    }

    /** The HTTP status of the response that caused this error, or 0 when there was none. */
    public int statusCode() {
        return statusCode;
    }
}
