package dev.stockade.server.core;

import dev.stockade.runtime.SandboxSpec;
import dev.stockade.server.config.PoolConfig;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLongArray;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Consumer;
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
 * nothing unless fewer than the floor are ready or starting, nor above the floor while the host has
 * less memory available than the reserve. A pooled sandbox warms up in the background (the lowest
 * CPU share, raised at the hand-over), so its interpreter's imports take only CPU that live
 * sandboxes leave. A create never waits for the pool: {@link #take} returns at once, null when
 * none is ready. Pools per template are issue 17's: today every pool holds the default template.
 *
 * <p>A pooled sandbox is invisible (not listed, not reachable by id) until a create takes it; it
 * serves exactly one create. The pool starts and removes sandboxes through a {@link Starter} (the
 * {@link SandboxAssembler}); it knows nothing of the manager that takes from it.
 */
final class SandboxPool implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(SandboxPool.class.getName());
    /** How long {@link #close} waits for sandboxes still starting before it removes them. */
    static final Duration CLOSE_WAIT = Duration.ofSeconds(2);
    /** How long it then waits for their starts to clean up after themselves. */
    static final Duration ABANDON_WAIT = Duration.ofSeconds(10);
    /** How often the control thread looks again without being woken (the idle time has no event). */
    static final long TICK_MS = 100;

    /** How the pool gets its sandboxes and gets rid of them. */
    interface Starter {
        /**
         * A sandbox ready to be handed over (its preload and first command done), or an exception;
         * {@code onId} learns its id before anything of it exists.
         */
        SandboxAssembler.Prepared startForPool(Runtimes.Tier tier, SandboxSpec.Warmup warmup, Consumer<String> onId);

        void discard(SandboxAssembler.Prepared p);

        /** Removes what there is of the sandbox {@code id} while its start is still under way. */
        void abandon(Runtimes.Tier tier, String id);
    }

    private final Starter starter;
    private final Runtimes.Tier tier;
    private final PoolConfig.Demand demand;
    private final SandboxSpec.Warmup warmup;
    private final IntSupplier creating;
    private final LongSupplier nanoClock;
    /** The host's available memory in MiB now. */
    private final LongSupplier availableMb;
    private final ConcurrentLinkedDeque<SandboxAssembler.Prepared> ready = new ConcurrentLinkedDeque<>();
    /** Ids of the sandboxes being started, for {@link #close} to remove if they take too long. */
    private final Set<String> startingIds = ConcurrentHashMap.newKeySet();
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
                IntSupplier creating, LongSupplier nanoClock, LongSupplier availableMb) {
        this.starter = starter;
        this.tier = tier;
        this.demand = demand;
        this.warmup = preload.isEmpty() ? SandboxSpec.Warmup.NONE : new SandboxSpec.Warmup(true, preload);
        this.creating = creating;
        this.nanoClock = nanoClock;
        this.availableMb = availableMb;
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
                while (mayStart && !closed && n + starting < target && starting < demand.maxStarting() && mayRefill(n)) {
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

    /**
     * Whether one more start may begin now, with {@code n} ready (under the lock). Above the floor
     * only when no create is in flight and the host has its memory reserve. Up to the floor always,
     * except while creates are in flight and ready sandboxes remain: those creates are hand-overs,
     * and a start (a container and an interpreter, tens of milliseconds of CPU) would take the cores
     * they need (issue 16: a burst of 100 creates through a full pool of 100 spent its time
     * competing with the refills of what it took). The refills go on when the creates end (each end
     * wakes this loop) or the pool is empty.
     */
    private boolean mayRefill(int n) {
        int inFlight = creating.getAsInt();
        if (n + starting < sizing.floor()) return inFlight == 0 || n == 0;
        return inFlight == 0 && availableMb.getAsLong() >= demand.reserveMb();
    }

    /** One refill, on its own virtual thread: started, measured, and put in the pool (or removed if it closed meanwhile). */
    private void startOne() {
        long t0 = nanoClock.getAsLong();
        SandboxAssembler.Prepared p = null;
        String[] id = new String[1];
        try {
            p = starter.startForPool(tier, warmup, i -> {
                id[0] = i;
                startingIds.add(i);
            });
        } catch (RuntimeException e) {
            if (closed) {
                // Abandoned by close(): its start has cleaned up after itself.
                LOG.log(Level.FINE, "a pooled sandbox's start ended by the server stopping", e);
            } else {
                backOff(e);
            }
        } finally {
            if (id[0] != null) startingIds.remove(id[0]);
        }
        long nanos = nanoClock.getAsLong() - t0;
        lock.lock();
        try {
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
        } finally {
            lock.unlock();
        }
        try {
            if (p != null) starter.discard(p);
        } finally {
            // Only now: close() waits for this count, and the JVM may exit right after it returns.
            lock.lock();
            try {
                starting--;
                changed.signalAll();
            } finally {
                lock.unlock();
            }
        }
    }

    /**
     * The host is out of something (memory, uid ranges) or the runtime fails: try again later,
     * creates still work without the pool.
     */
    private void backOff(RuntimeException e) {
        long ms;
        lock.lock();
        try {
            backoffMs = Math.min(30_000, Math.max(500, backoffMs * 2));
            notBefore = nanoClock.getAsLong() + backoffMs * 1_000_000;
            ms = backoffMs;
        } finally {
            lock.unlock();
        }
        LOG.log(Level.WARNING, "the pool could not start a sandbox; retrying in " + ms + " ms", e);
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
     * Stops refilling and removes every ready sandbox. Sandboxes still starting get {@link #CLOSE_WAIT}
     * to finish (then they are removed); after it their containers are removed under them (a
     * preload under load can take many seconds, and serve's orderly stop exits right after), and
     * their starts get {@link #ABANDON_WAIT} to clean up the rest (egress, slot) as a failed start does.
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
        if (awaitStarts(CLOSE_WAIT)) return;
        for (String id : Set.copyOf(startingIds)) starter.abandon(tier, id);
        if (!awaitStarts(ABANDON_WAIT)) {
            LOG.warning("pooled sandbox(es) of " + tier.name() + " still starting after their removal: " + startingIds);
        }
    }

    /** Waits until no sandbox is starting, at most {@code limit}; true if none is. */
    private boolean awaitStarts(Duration limit) {
        long deadline = System.nanoTime() + limit.toNanos();
        lock.lock();
        try {
            while (starting > 0) {
                long left = deadline - System.nanoTime();
                if (left <= 0) return false;
                changed.awaitNanos(left);
            }
            return true;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        } finally {
            lock.unlock();
        }
    }
}
