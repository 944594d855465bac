package dev.stockade.sdk;

/** A failure with no more specific type: an unexpected HTTP status, a malformed response, a broken connection, or an interrupted call. */
public final class SandboxException extends StockadeException {
    public SandboxException(String message) {
        super(message, 0, null);
    }

    public SandboxException(String message, int statusCode, Throwable cause) {
        super(message, statusCode, cause);
    }
}
