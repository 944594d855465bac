package dev.stockade.sdk;

import dev.stockade.protocol.Outcome;
import java.util.Objects;

/**
 * What a finished command left behind.
 *
 * @param exitCode the process's exit code (E2B reports -1 when it died of a signal)
 * @param stdout everything it wrote to standard output, decoded as UTF-8
 * @param stderr everything it wrote to standard error, decoded as UTF-8
 * @param outcome how it ended (Stockade extension; one of {@link Outcome#PROCESS}, or UNKNOWN); null when the server does not say
 * @param reason a human-readable explanation of the outcome; null when the server does not say
 * @param error the error text of E2B's end event (e.g. {@code "exit status 1"}); null when absent
 */
public record CommandResult(int exitCode, String stdout, String stderr, Outcome outcome, String reason, String error) {
    public CommandResult {
        Objects.requireNonNull(stdout, "stdout");
        Objects.requireNonNull(stderr, "stderr");
    }
}
