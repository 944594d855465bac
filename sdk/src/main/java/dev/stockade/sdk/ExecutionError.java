package dev.stockade.sdk;

/**
 * The error a cell raised, like E2B's {@code ExecutionError}: the exception's class name, its
 * message and the traceback (which shows the user's code, not the interpreter's). A cell the server
 * had to stop carries an error too: {@code TimeoutError}, {@code OutputLimitExceeded} or
 * {@code ContextDied}, with {@link Execution#outcome()} saying which.
 *
 * @param name the exception's class name, e.g. {@code ZeroDivisionError}
 * @param value its message, e.g. {@code division by zero}
 * @param traceback the formatted traceback, one string (may be empty)
 */
public record ExecutionError(String name, String value, String traceback) {
    public ExecutionError {
        name = name == null ? "" : name;
        value = value == null ? "" : value;
        traceback = traceback == null ? "" : traceback;
    }
}
