package dev.stockade.cli;

import dev.stockade.sdk.CommandExitException;
import dev.stockade.sdk.CommandHandle;
import dev.stockade.sdk.CommandResult;
import dev.stockade.protocol.Outcome;
import dev.stockade.sdk.RunOptions;
import dev.stockade.sdk.Sandbox;
import dev.stockade.sdk.StockadeException;
import dev.stockade.sdk.TimeoutException;
import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;

/**
 * Runs one command in a sandbox with its output on this terminal, for {@code run} and {@code exec}:
 * stdout and stderr stream to ours as they arrive (from the SDK's reader thread), our stdin is
 * forwarded when asked (from a virtual thread of its own), and the result becomes our exit code.
 */
final class Streaming {
    /** Exit code for a command the sandbox's time limit ended (as GNU timeout). */
    static final int EXIT_TIMEOUT = 124;
    /** Exit code for a command killed by a signal (128 + SIGKILL), the shell's convention. */
    static final int EXIT_KILLED = 137;

    private Streaming() {}

    /** Starts {@code commandLine}, streams it, waits; returns the exit code to pass on. */
    static int run(Sandbox sandbox, String commandLine, RunOptions.Builder options, boolean forwardStdin, Io io,
            String command, boolean killOnExit) {
        options.onStdout(s -> {
            io.out().print(s);
            io.out().flush();
        }).onStderr(s -> {
            io.err().print(s);
            io.err().flush();
        }).stdin(forwardStdin);
        CommandHandle handle = sandbox.commands().start(commandLine, options.build());
        if (forwardStdin) Thread.ofVirtual().name("stockade-stdin").start(() -> forward(io.in(), handle));
        // Ctrl-C while the command runs: end it too, rather than leave it running unseen.
        Thread hook = new Thread(() -> {
            try {
                handle.kill();
            } catch (StockadeException ignored) {
                // it ended meanwhile
            }
        }, "stockade-exec-kill");
        if (killOnExit) Runtime.getRuntime().addShutdownHook(hook);
        CommandResult result;
        try {
            result = handle.waitFor();
        } catch (CommandExitException e) {
            result = e.result();
        } catch (TimeoutException e) {
            io.err().println("stockade " + command + ": " + e.getMessage());
            return EXIT_TIMEOUT;
        } finally {
            if (killOnExit) {
                try {
                    Runtime.getRuntime().removeShutdownHook(hook);
                } catch (IllegalStateException ignored) {
                    // shutting down: the hook runs
                }
            }
        }
        return exitCode(result, io, command);
    }

    /** The command's exit code, or 124/137 when it ended without one; says why when it did not simply exit. */
    static int exitCode(CommandResult r, Io io, String command) {
        Outcome o = r.outcome();
        if (o != null && o != Outcome.EXITED) {
            String why = r.reason() != null ? r.reason() : r.error() != null ? r.error() : o.wireName();
            io.err().println("stockade " + command + ": " + o.wireName() + ": " + why);
        }
        int code = r.exitCode();
        if (code >= 0 && code <= 255) return code;
        return o == Outcome.TIMEOUT ? EXIT_TIMEOUT : EXIT_KILLED;
    }

    private static void forward(InputStream in, CommandHandle handle) {
        byte[] buf = new byte[64 * 1024];
        try {
            int n;
            while ((n = in.read(buf)) > 0) handle.sendStdin(Arrays.copyOf(buf, n));
            handle.closeStdin();
        } catch (IOException | StockadeException e) {
            // the command ended or stopped reading: nothing more to forward
        }
    }
}
