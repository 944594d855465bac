package dev.stockade.sdk.internal;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.sdk.CommandExitException;
import dev.stockade.sdk.CommandHandle;
import dev.stockade.sdk.CommandResult;
import dev.stockade.protocol.Outcome;
import dev.stockade.sdk.SandboxException;
import dev.stockade.sdk.StockadeException;
import dev.stockade.sdk.TimeoutException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;

/**
 * Follows one process's event stream. Threads: the caller of {@link #awaitStart()} reads the
 * start event; then a virtual thread of its own ("stockade-cmd-PID") reads every later event and
 * runs the callbacks; an optional watchdog virtual thread kills the process and ends the following
 * when the timeout passes (the server kills it at the same deadline, sent as Connect-Timeout-Ms;
 * the SDK does not rely on that). A {@code foreground} command (from {@code run}, which hands no
 * handle to the caller) is also killed when its waiter is interrupted or a callback throws.
 * {@link #waitFor()} and the other methods may be called from any thread.
 */
final class CommandHandleImpl implements CommandHandle {
    private final CommandsImpl commands;
    private final ConnectStream stream;
    private final Consumer<String> onStdout;
    private final Consumer<String> onStderr;
    private final Duration timeout;
    private final boolean foreground;
    private final String what;

    private final CompletableFuture<CommandResult> done = new CompletableFuture<>();
    private final ReentrantLock callbacks = new ReentrantLock();
    private final StringBuilder stdout = new StringBuilder();
    private final StringBuilder stderr = new StringBuilder();
    private final Utf8Stream stdoutDecoder = new Utf8Stream();
    private final Utf8Stream stderrDecoder = new Utf8Stream();
    private final long startNanos;
    private final Thread watchdog;

    private volatile int pid = -1;
    private volatile boolean timedOut;
    private volatile boolean disconnected;
    private volatile StockadeException callbackFailure;

    /** {@code startNanos}: {@link System#nanoTime()} before the request went out, where the timeout counts from. */
    CommandHandleImpl(CommandsImpl commands, ConnectStream stream, Consumer<String> onStdout,
            Consumer<String> onStderr, Duration timeout, boolean foreground, String what, long startNanos) {
        this.commands = commands;
        this.stream = stream;
        this.onStdout = onStdout;
        this.onStderr = onStderr;
        this.timeout = timeout;
        this.foreground = foreground;
        this.what = what;
        this.startNanos = startNanos;
        this.watchdog = timeout.isZero() ? null : Thread.ofVirtual().name("stockade-cmd-watchdog").start(this::watch);
    }

    /** Reads the start event in the caller's thread, then starts the reader thread. */
    CommandHandleImpl awaitStart() {
        try {
            JsonNode first = stream.next();
            if (first == null) throw new SandboxException(what + ": the stream ended before the process started");
            if (!(ProcessEvent.parse(first) instanceof ProcessEvent.Start(int p)) || p <= 0) {
                throw new SandboxException(what + ": the server's first event was not the process start: " + first);
            }
            pid = p;
        } catch (StockadeException e) {
            stopWatchdog();
            stream.close();
            if (timedOut) throw timeoutException();
            throw e;
        }
        Thread.ofVirtual().name("stockade-cmd-" + pid).start(this::follow);
        return this;
    }

    /**
     * The stream thread's body: whatever goes wrong in it (a bug, a class that does not load) ends
     * the handle with that failure, so that a caller waiting for the result is never left waiting.
     */
    private void follow() {
        try {
            pump();
        } catch (Throwable t) {
            stopWatchdog();
            stream.close();
            done.completeExceptionally(new SandboxException(what + ": following the command failed: " + t, 0, t));
            if (t instanceof Error error) throw error;
        }
    }

    private void pump() {
        ProcessEvent.End end = null;
        StockadeException failure = null;
        try {
            JsonNode message;
            while ((message = stream.next()) != null) {
                switch (ProcessEvent.parse(message)) {
                    case ProcessEvent.Data d when d.stdout() != null -> deliver(stdout, stdoutDecoder.decode(d.stdout()), onStdout);
                    case ProcessEvent.Data d -> deliver(stderr, stderrDecoder.decode(d.stderr()), onStderr);
                    case ProcessEvent.End e -> end = e;
                    case ProcessEvent.Start s -> { /* a Connect stream may repeat it */ }
                    case ProcessEvent.Keepalive k -> { /* keeps the connection alive, nothing to do */ }
                    case ProcessEvent.Other o -> { /* e.g. pty output: not used by this SDK */ }
                }
                if (callbackFailure != null) break;
            }
        } catch (StockadeException e) {
            // after the end event, a stream that breaks off loses nothing
            if (end == null) failure = e;
        }
        deliver(stdout, stdoutDecoder.finish(), onStdout);
        deliver(stderr, stderrDecoder.finish(), onStderr);
        finish(end, failure);
    }

    private void deliver(StringBuilder buffer, String text, Consumer<String> callback) {
        if (text.isEmpty()) return;
        synchronized (buffer) {
            buffer.append(text);
        }
        if (callback == null) return;
        callbacks.lock();
        try {
            if (disconnected || callbackFailure != null) return;
            callback.accept(text);
        } catch (RuntimeException e) {
            callbackFailure = new SandboxException(what + ": an output callback threw " + e, 0, e);
            if (foreground) killQuietly();
            stream.close();
        } finally {
            callbacks.unlock();
        }
    }

    private void finish(ProcessEvent.End end, StockadeException failure) {
        stopWatchdog();
        stream.close();
        if (callbackFailure != null) {
            done.completeExceptionally(callbackFailure);
        } else if (disconnected) {
            done.completeExceptionally(new SandboxException(what + ": stopped following the command (disconnect);"
                    + " follow it again with commands().connect(" + pid + ")"));
        } else if (end != null && end.exitCode() == 0) {
            // success, even if the watchdog fired between the end event and the end of the stream
            done.complete(result(end));
        } else if (timedOut || (end != null && deadlinePassed())) {
            // The server enforces the same deadline (Connect-Timeout-Ms) and may kill the process a
            // moment before the watchdog fires: that is still this timeout, not a failing command.
            done.completeExceptionally(timeoutException());
        } else if (failure != null) {
            done.completeExceptionally(failure);
        } else if (end == null) {
            done.completeExceptionally(new SandboxException(what + ": the stream ended without the process's end event"));
        } else {
            done.complete(result(end));
        }
    }

    private CommandResult result(ProcessEvent.End end) {
        return new CommandResult(end.exitCode(), stdout(), stderr(), Outcome.fromWire(end.outcome()), end.reason(),
                end.error());
    }

    private boolean deadlinePassed() {
        return !timeout.isZero() && System.nanoTime() - startNanos >= timeout.toNanos();
    }

    private void watch() {
        try {
            long left = timeout.toNanos() - (System.nanoTime() - startNanos);
            if (left > 0) Thread.sleep(Duration.ofNanos(left));
        } catch (InterruptedException e) {
            return;
        }
        if (done.isDone()) return;
        timedOut = true;
        killQuietly();
        stream.close();
    }

    private void stopWatchdog() {
        if (watchdog != null && Thread.currentThread() != watchdog) watchdog.interrupt();
    }

    private TimeoutException timeoutException() {
        return new TimeoutException(what + ": the command did not finish within " + timeout.toMillis() + " ms and was"
                + " killed. Raise RunOptions.timeout (Duration.ZERO for no limit) if it needs longer.", 0, null);
    }

    private void killQuietly() {
        if (pid <= 0) return;
        try {
            commands.kill(pid);
        } catch (StockadeException ignored) {
            // best effort: the process may already be gone, or the sandbox with it
        }
    }

    @Override
    public int pid() {
        return pid;
    }

    @Override
    public CommandResult waitFor() {
        CommandResult r;
        try {
            r = done.get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            if (foreground) killQuietly();
            stream.close();
            throw new SandboxException(what + ": interrupted while waiting for the command", 0, e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof StockadeException se) throw Errors.rethrowable(se);
            throw new SandboxException(what + ": " + e.getCause(), 0, e.getCause());
        }
        if (r.exitCode() != 0) throw new CommandExitException(r);
        return r;
    }

    @Override
    public String stdout() {
        synchronized (stdout) {
            return stdout.toString();
        }
    }

    @Override
    public String stderr() {
        synchronized (stderr) {
            return stderr.toString();
        }
    }

    @Override
    public boolean kill() {
        return commands.kill(pid);
    }

    @Override
    public void sendStdin(String data) {
        commands.sendStdin(pid, data);
    }

    @Override
    public void sendStdin(byte[] data) {
        commands.sendStdin(pid, data);
    }

    @Override
    public void closeStdin() {
        commands.closeStdin(pid);
    }

    @Override
    public void disconnect() {
        disconnected = true;
        callbacks.lock();
        callbacks.unlock();
        stream.close();
    }

    @Override
    public String toString() {
        return "CommandHandle[pid=" + pid + ", done=" + done.isDone() + "]";
    }
}
