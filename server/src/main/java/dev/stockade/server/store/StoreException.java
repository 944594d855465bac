package dev.stockade.server.store;

/** The store could not do what was asked (disk full, a corrupt file, a schema from a newer server). */
public final class StoreException extends RuntimeException {
    public StoreException(String message, Throwable cause) {
        super(message, cause);
    }
}
