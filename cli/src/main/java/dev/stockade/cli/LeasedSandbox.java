package dev.stockade.cli;

import dev.stockade.sdk.CreateOptions;
import dev.stockade.sdk.Sandbox;
import dev.stockade.sdk.StockadeException;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * A sandbox the CLI creates for one command (run, repl): its lifetime is renewed while the command
 * uses it, and it is killed — with the embedded server, if any — on close or when the JVM stops
 * (Ctrl-C). Used from the command's thread; the shutdown hook may run the cleanup concurrently, once.
 */
final class LeasedSandbox implements AutoCloseable {
    private final Target target;
    private final AtomicBoolean cleaned = new AtomicBoolean();
    private final Thread hook;
    private volatile Sandbox sandbox;
    private Thread lease;

    private LeasedSandbox(Target target, String name) {
        this.target = target;
        this.hook = new Thread(this::cleanup, "stockade-" + name + "-cleanup");
    }

    /** Registers the Ctrl-C cleanup first, then creates the sandbox and starts renewing it. */
    static LeasedSandbox create(Target target, CreateOptions options, String name) {
        LeasedSandbox leased = new LeasedSandbox(target, name);
        Runtime.getRuntime().addShutdownHook(leased.hook);
        try {
            leased.sandbox = target.client().create(options);
        } catch (RuntimeException e) {
            leased.close();
            throw e;
        }
        Sandbox sb = leased.sandbox;
        leased.lease = Thread.ofVirtual().name("stockade-" + name + "-lease").start(() -> RunCommand.renew(sb));
        return leased;
    }

    Sandbox sandbox() {
        return sandbox;
    }

    /** True once the cleanup ran, e.g. because Ctrl-C killed the sandbox under a running command. */
    boolean cleanedUp() {
        return cleaned.get();
    }

    private void cleanup() {
        if (!cleaned.compareAndSet(false, true)) return;
        try {
            if (sandbox != null) sandbox.kill();
        } catch (StockadeException ignored) {
            // already gone, or the server with it
        } finally {
            target.close();
        }
    }

    @Override
    public void close() {
        if (lease != null) lease.interrupt();
        cleanup();
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException ignored) {
            // already shutting down: the hook runs (and finds the work done)
        }
    }
}
