package dev.stockade.server.core;

import dev.stockade.runtime.SandboxSpec;
import dev.stockade.server.config.PoolConfig;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.function.IntSupplier;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Ready sandboxes of the default template on one runtime, started ahead of the creates that will take them. One
 * refill thread starts them one at a time with the server's default limits, no network, no
 * secrets, and (when configured) an interpreter that has already imported the preload modules.
 * While creates are in flight the refill waits to start the next container, unless fewer than
 * {@code min} are ready; a pooled sandbox then warms up in the background (the lowest CPU share,
 * raised at the hand-over), so its interpreter's imports take only CPU that live sandboxes leave.
 * A sandbox counts as ready once its interpreter has done its preload.
 *
 * <p>A pooled sandbox is invisible (not listed, not reachable by id) until a create takes it; it
 * serves exactly one create. The pool starts and removes sandboxes through a {@link Starter} (the
 * {@link SandboxAssembler}); it knows nothing of the manager that takes from it.
 */
final class SandboxPool implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(SandboxPool.class.getName());

    /** How the pool gets its sandboxes and gets rid of them. */
    interface Starter {
        /** A sandbox ready to be handed over (its preload and first command done), or an exception. */
        SandboxAssembler.Prepared startForPool(Runtimes.Tier tier, SandboxSpec.Warmup warmup);

        void discard(SandboxAssembler.Prepared p);
    }

    private final Starter starter;
    private final Runtimes.Tier tier;
    private final int size;
    private final int min;
    private final PoolConfig config;
    private final IntSupplier creating;
    private final ConcurrentLinkedDeque<SandboxAssembler.Prepared> ready = new ConcurrentLinkedDeque<>();
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    private final Thread refill;
    private volatile boolean closed;

    /**
     * Keeps {@code size} sandboxes of {@code tier} ready, with the preload and refill rules of
     * {@code config}; {@code creating} tells how many creates are in flight.
     */
    SandboxPool(Starter starter, Runtimes.Tier tier, int size, PoolConfig config, IntSupplier creating) {
        this.starter = starter;
        this.tier = tier;
        this.size = size;
        this.min = Math.min(config.min(), size);
        this.config = config;
        this.creating = creating;
        this.refill = Thread.ofVirtual().name("stockade-pool-refill-" + tier.name()).start(this::refillLoop);
    }

    int ready() {
        return ready.size();
    }

    /** A ready sandbox, or null when none is ready (the create then starts a fresh one). */
    SandboxAssembler.Prepared take() {
        SandboxAssembler.Prepared p = ready.pollFirst();
        wake();
        return p;
    }

    void wake() {
        lock.lock();
        try {
            changed.signalAll();
        } finally {
            lock.unlock();
        }
    }

    private boolean shouldStart() {
        int n = ready.size();
        if (n >= size) return false;
        return n < min || creating.getAsInt() == 0;
    }

    private void refillLoop() {
        SandboxSpec.Warmup warmup = config.preload().isEmpty() ? SandboxSpec.Warmup.NONE
                : new SandboxSpec.Warmup(true, config.preload());
        long backoffMs = 0;
        while (!closed) {
            lock.lock();
            try {
                while (!closed && !shouldStart()) changed.await(50, java.util.concurrent.TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                return;
            } finally {
                lock.unlock();
            }
            if (closed) return;
            try {
                SandboxAssembler.Prepared p = starter.startForPool(tier, warmup);
                if (closed) {
                    starter.discard(p);
                    return;
                }
                ready.addLast(p);
                backoffMs = 0;
            } catch (RuntimeException e) {
                // The host is out of something (memory, uid ranges) or the runtime fails: try again later,
                // creates still work without the pool.
                backoffMs = Math.min(30_000, Math.max(500, backoffMs * 2));
                LOG.log(Level.WARNING, "the pool could not start a sandbox; retrying in " + backoffMs + " ms", e);
                try {
                    Thread.sleep(backoffMs);
                } catch (InterruptedException ie) {
                    return;
                }
            }
        }
    }

    /** Stops refilling and removes every ready sandbox (and the one being started, when it is done). */
    @Override
    public void close() {
        closed = true;
        wake(); // not an interrupt: a sandbox being started finishes starting, then the loop removes it
        try {
            refill.join(java.time.Duration.ofSeconds(60));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (SandboxAssembler.Prepared p; (p = ready.pollFirst()) != null; ) starter.discard(p);
    }
}
