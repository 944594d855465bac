package dev.stockade.sdk;

/** The sandbox, process, file or directory does not exist (HTTP 404, Connect {@code not_found}). E2B: {@code NotFoundError}. */
public final class NotFoundException extends StockadeException {
    public NotFoundException(String message) {
        super(message, 0, null);
    }

    public NotFoundException(String message, int statusCode, Throwable cause) {
        super(message, statusCode, cause);
    }
}
