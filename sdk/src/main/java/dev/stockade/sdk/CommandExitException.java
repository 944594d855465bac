package dev.stockade.sdk;

import dev.stockade.protocol.Outcome;
import java.util.Objects;

/**
 * A command finished with a non-zero exit code. Thrown by {@link Commands#run} and
 * {@link CommandHandle#waitFor}, as E2B's SDKs throw {@code CommandExitError}; the full
 * {@link CommandResult} (output, outcome, reason) is inside.
 */
public final class CommandExitException extends StockadeException {
    private final transient CommandResult result;

    public CommandExitException(CommandResult result) {
        super(describe(Objects.requireNonNull(result, "result")), 0, null);
        this.result = result;
    }

    public CommandResult result() {
        return result;
    }

    public int exitCode() {
        return result.exitCode();
    }

    public String stdout() {
        return result.stdout();
    }

    public String stderr() {
        return result.stderr();
    }

    private static String describe(CommandResult r) {
        StringBuilder sb = new StringBuilder("command exited with code ").append(r.exitCode());
        if (r.outcome() != null && r.outcome() != Outcome.EXITED) sb.append(" (").append(r.outcome().wireName()).append(')');
        if (r.reason() != null && !r.reason().isBlank()) sb.append(": ").append(r.reason());
        else if (r.error() != null && !r.error().isBlank()) sb.append(": ").append(r.error());
        return sb.toString();
    }
}
