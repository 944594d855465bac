package dev.stockade.runtime;

/** The one exception type of runtimes: what failed, why, and what to check. */
public final class RuntimeFailure extends RuntimeException {
    public enum Code {
        /** The runtime cannot run on this host (binary missing, kernel feature absent). */
        UNAVAILABLE,
        /** Starting the sandbox failed. */
        START_FAILED,
        /** The sandbox is gone (its container vanished). */
        NOT_FOUND,
        /** Host resources ran out (disk, uid ranges, mounts). */
        EXHAUSTED,
        /** Anything else on the host side. */
        HOST_ERROR
    }

    private final Code code;

    public RuntimeFailure(Code code, String message) {
        super(message);
        this.code = code;
    }

    public RuntimeFailure(Code code, String message, Throwable cause) {
        super(message, cause);
        this.code = code;
    }

    public Code code() {
        return code;
    }
}
