package dev.stockade.protocol;

/** A failed agent call. The code says what kind; the HTTP layer alone maps codes to statuses. */
public final class AgentException extends RuntimeException {
    public enum Code {
        NOT_FOUND, ALREADY_EXISTS, INVALID_ARGUMENT, PERMISSION_DENIED, NOT_A_DIRECTORY,
        IS_A_DIRECTORY, NO_SPACE, RESOURCE_EXHAUSTED, PROCESS_NOT_FOUND, UNAVAILABLE, TIMEOUT, PROTOCOL, INTERNAL
    }

    private final Code code;

    public AgentException(Code code, String message) {
        super(message);
        this.code = code;
    }

    public AgentException(Code code, String message, Throwable cause) {
        super(message, cause);
        this.code = code;
    }

    public Code code() {
        return code;
    }
}
