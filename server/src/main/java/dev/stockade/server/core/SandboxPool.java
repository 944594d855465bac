package dev.stockade.server.core;

import dev.stockade.runtime.SandboxSpec;
import dev.stockade.server.config.PoolConfig;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.IntSupplier;
import java.util.function.LongSupplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Ready sandboxes of the default template on one runtime, started ahead of the creates that will
 * take them, with the server's default limits, no network, no secrets, and (when configured) an
 * interpreter that has already imported the preload modules. A sandbox counts as ready once its
 * interpreter has done its preload.
 *
 * <p>One control thread keeps the pool at its target ({@link PoolSizing}: between the floor and
 * the ceiling, following the creates' arrival rate): it starts up to {@code maxStarting} sandboxes
 * at once, each on a virtual thread of its own, and removes the ready ones above the target once
 * it has fallen (after {@code idleAfter} of lower demand). While creates are in flight it starts
 * nothing unless fewer than the floor are ready or starting; a pooled sandbox warms up in the background (the lowest CPU share, raised at
 * the hand-over), so its interpreter's imports take only CPU that live sandboxes leave. A create
 * never waits for the pool: {@link #take} returns at once, null when none is ready.
 *
 * <p>A pooled sandbox is invisible (not listed, not reachable by id) until a create takes it; it
 * serves exactly one create. The pool starts and removes sandboxes through a {@link Starter} (the
 * {@link SandboxAssembler}); it knows nothing of the manager that takes from it.
 */
final class SandboxPool implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(SandboxPool.class.getName());
    /** How long {@link #close} waits for sandboxes still starting; after it they remove themselves when done. */
    static final Duration CLOSE_WAIT = Duration.ofSeconds(5);
    /** How often the control thread looks again without being woken (the idle time has no event). */
    private static final long TICK_MS = 100;

    /** How the pool gets its sandboxes and gets rid of them. */
    interface Starter {
        /** A sandbox ready to be handed over (its preload and first command done), or an exception. */
        SandboxAssembler.Prepared startForPool(Runtimes.Tier tier, SandboxSpec.Warmup warmup);

        void discard(SandboxAssembler.Prepared p);
    }

    private final Starter starter;
    private final Runtimes.Tier tier;
    private final PoolConfig.Demand demand;
    private final SandboxSpec.Warmup warmup;
    private final IntSupplier creating;
    private final LongSupplier nanoClock;
    private final ConcurrentLinkedDeque<SandboxAssembler.Prepared> ready = new ConcurrentLinkedDeque<>();
    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    /** Guarded by {@link #lock}. */
    private final PoolSizing sizing;
    /** Guarded by {@link #lock}: sandboxes being started now, and the most there have been at once. */
    private int starting;
    private int startingPeak;
    /** Guarded by {@link #lock}: no start before this (after a failed one). */
    private long notBefore;
    private long backoffMs;
    private final LongAdder hits = new LongAdder();
    private final LongAdder misses = new LongAdder();
    private final LongAdder shrunk = new LongAdder();
    private final LongAdder refills = new LongAdder();
    private final LongAdder refillNanos = new LongAdder();
    private final AtomicLongArray refillBuckets = new AtomicLongArray(PoolStatus.REFILL_BUCKETS.size() + 1);
    private final Thread control;
    private volatile boolean closed;

    /**
     * Keeps between {@code floor} and {@code ceiling} sandboxes of {@code tier} ready, as
     * {@code demand} says; {@code creating} tells how many creates are in flight.
     */
    SandboxPool(Starter starter, Runtimes.Tier tier, int floor, int ceiling, List<String> preload, PoolConfig.Demand demand,
                IntSupplier creating, LongSupplier nanoClock) {
        this.starter = starter;
        this.tier = tier;
        this.demand = demand;
        this.warmup = preload.isEmpty() ? SandboxSpec.Warmup.NONE : new SandboxSpec.Warmup(true, preload);
        this.creating = creating;
        this.nanoClock = nanoClock;
        this.sizing = new PoolSizing(Math.min(floor, ceiling), ceiling, demand, nanoClock);
        this.control = Thread.ofVirtual().name("stockade-pool-" + tier.name()).start(this::controlLoop);
    }

    int ready() {
        return ready.size();
    }

    /** A ready sandbox, or null at once when none is ready (the create then starts a fresh one). */
    SandboxAssembler.Prepared take() {
        SandboxAssembler.Prepared p = ready.pollFirst();
        (p == null ? misses : hits).increment();
        lock.lock();
        try {
            sizing.arrived();
            changed.signalAll();
        } finally {
            lock.unlock();
        }
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

    PoolStatus status() {
        long[] buckets = new long[refillBuckets.length()];
        for (int i = 0; i < buckets.length; i++) buckets[i] = refillBuckets.get(i);
        lock.lock();
        try {
            return new PoolStatus(ready.size(), starting, startingPeak, sizing.target(), sizing.floor(), sizing.ceiling(), sizing.rate(),
                    hits.sum(), misses.sum(), shrunk.sum(), refills.sum(), refillNanos.sum() / 1e9, buckets);
        } finally {
            lock.unlock();
        }
    }

    /**
     * Starts what the target asks for (within the budget) or takes one ready sandbox above it out;
     * waits for a change or the next tick. Removal happens outside the lock.
     */
    private void controlLoop() {
        while (!closed) {
            SandboxAssembler.Prepared surplus = null;
            lock.lock();
            try {
                int target = sizing.target();
                int n = ready.size();
                boolean mayStart = nanoClock.getAsLong() >= notBefore;
                while (mayStart && !closed && n + starting < target && starting < demand.maxStarting()
                        && (n + starting < sizing.floor() || creating.getAsInt() == 0)) {
                    startingPeak = Math.max(startingPeak, ++starting);
                    Thread.ofVirtual().name("stockade-pool-start-" + tier.name()).start(this::startOne);
                }
                // Above a target that fell (demand has stayed lower for idleAfter): the surplus goes.
                if (n > target) surplus = ready.pollLast();
                if (surplus != null) shrunk.increment();
                if (surplus == null) changed.await(TICK_MS, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                return;
            } finally {
                lock.unlock();
            }
            if (surplus != null) {
                // The memory it holds is the host's again.
                starter.discard(surplus);
            }
        }
    }

    /** One refill, on its own virtual thread: started, measured, and put in the pool (or removed if it closed meanwhile). */
    private void startOne() {
        long t0 = nanoClock.getAsLong();
        SandboxAssembler.Prepared p = null;
        try {
            p = starter.startForPool(tier, warmup);
        } catch (RuntimeException e) {
            // The host is out of something (memory, uid ranges) or the runtime fails: try again later,
            // creates still work without the pool.
            lock.lock();
            try {
                backoffMs = Math.min(30_000, Math.max(500, backoffMs * 2));
                notBefore = nanoClock.getAsLong() + backoffMs * 1_000_000;
            } finally {
                lock.unlock();
            }
            LOG.log(Level.WARNING, "the pool could not start a sandbox; retrying in " + backoffMs + " ms", e);
        }
        long nanos = nanoClock.getAsLong() - t0;
        lock.lock();
        try {
            starting--;
            if (p != null) {
                backoffMs = 0;
                sizing.refilled(nanos / 1e9);
                recordRefill(nanos);
                // Checked under the lock close() takes too: a sandbox is either in the pool when
                // close() empties it, or removed here.
                if (!closed) {
                    ready.addLast(p);
                    p = null;
                }
            }
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        if (p != null) starter.discard(p);
    }

    private void recordRefill(long nanos) {
        refills.increment();
        refillNanos.add(nanos);
        double s = nanos / 1e9;
        int i = 0;
        while (i < PoolStatus.REFILL_BUCKETS.size() && s > PoolStatus.REFILL_BUCKETS.get(i)) i++;
        refillBuckets.incrementAndGet(i);
    }

    /**
     * Stops refilling and removes every ready sandbox. Sandboxes still starting are waited for at most
     * {@link #CLOSE_WAIT} (a preload under load can take far longer); each removes itself once
     * started, and the manager's close removes whatever of them is still on the host.
     */
    @Override
    public void close() {
        lock.lock();
        try {
            closed = true;
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        try {
            control.join(Duration.ofSeconds(10));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        for (SandboxAssembler.Prepared p; (p = ready.pollFirst()) != null; ) starter.discard(p);
        long deadline = System.nanoTime() + CLOSE_WAIT.toNanos();
        lock.lock();
        try {
            while (starting > 0) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    LOG.info(starting + " pooled sandbox(es) of " + tier.name() + " still starting at close: each is removed once started");
                    break;
                }
                changed.awaitNanos(left);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            lock.unlock();
        }
    }
}
