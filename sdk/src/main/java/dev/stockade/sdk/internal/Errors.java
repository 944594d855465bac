package dev.stockade.sdk.internal;

import dev.stockade.sdk.AuthenticationException;
import dev.stockade.sdk.CommandExitException;
import dev.stockade.sdk.InvalidArgumentException;
import dev.stockade.sdk.NotFoundException;
import dev.stockade.sdk.RateLimitException;
import dev.stockade.sdk.SandboxException;
import dev.stockade.sdk.StockadeException;
import dev.stockade.sdk.TimeoutException;

/** Helpers for exceptions that cross threads. */
final class Errors {
    private Errors() {}

    /**
     * A copy of {@code e}, of the same type and message, thrown in the caller's thread so that its
     * stack trace shows the caller; the original (from the reader thread) is its cause.
     */
    static StockadeException rethrowable(StockadeException e) {
        String m = e.getMessage();
        int s = e.statusCode();
        return switch (e) {
            case SandboxException x -> new SandboxException(m, s, x);
            case NotFoundException x -> new NotFoundException(m, s, x);
            case AuthenticationException x -> new AuthenticationException(m, s, x);
            case InvalidArgumentException x -> new InvalidArgumentException(m, s, x);
            case TimeoutException x -> new TimeoutException(m, s, x);
            case RateLimitException x -> new RateLimitException(m, s, x);
            case CommandExitException x -> new CommandExitException(x.result());
        };
    }
}
