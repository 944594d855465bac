package dev.stockade.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.runtime.SandboxRuntime;
import dev.stockade.runtime.SandboxSpec;
import dev.stockade.server.config.PoolConfig;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * The pool's control loop against a starter that starts nothing (each start waits for the test to
 * let it finish) and a clock the test moves: several refills at once within the budget, a create
 * that never waits, the idle shrink, and a close that leaves nothing. States are awaited, never timed.
 */
class SandboxPoolTest {
    private final AtomicLong now = new AtomicLong(1_000_000_000L);
    private final Semaphore gate = new Semaphore(0);
    private final AtomicInteger inFlight = new AtomicInteger();
    private final AtomicInteger maxInFlight = new AtomicInteger();
    private final AtomicInteger started = new AtomicInteger();
    private final Set<String> discarded = ConcurrentHashMap.newKeySet();
    private final Set<String> abandoned = ConcurrentHashMap.newKeySet();
    private final Runtimes.Tier tier = new Runtimes.Tier((SandboxRuntime) java.lang.reflect.Proxy.newProxyInstance(
            SandboxRuntime.class.getClassLoader(), new Class<?>[] {SandboxRuntime.class}, (proxy, method, args) -> {
                if (method.getName().equals("name")) return "runc";
                throw new UnsupportedOperationException(method.getName());
            }), null, null);

    private final SandboxPool.Starter starter = new SandboxPool.Starter() {
        @Override
        public SandboxAssembler.Prepared startForPool(Runtimes.Tier t, SandboxSpec.Warmup warmup, Consumer<String> onId) {
            String id = "pooled-" + started.incrementAndGet();
            onId.accept(id);
            int n = inFlight.incrementAndGet();
            maxInFlight.accumulateAndGet(n, Math::max);
            try {
                gate.acquireUninterruptibly();
                // A start whose container was removed under it fails, as SandboxAssembler's does.
                if (abandoned.contains(id)) throw new IllegalStateException("the container of " + id + " is gone");
                return new SandboxAssembler.Prepared(id, t, 0, 0, null, null, null, 0);
            } finally {
                inFlight.decrementAndGet();
            }
        }

        @Override
        public void abandon(Runtimes.Tier t, String id) {
            abandoned.add(id);
            gate.release();
        }

        @Override
        public void discard(SandboxAssembler.Prepared p) {
            discarded.add(p.id());
        }
    };

    private final AtomicLong availableMb = new AtomicLong(64 * 1024);
    /** Creates in flight, as the manager would count them. */
    private final AtomicInteger creating = new AtomicInteger();

    private SandboxPool pool(int floor, int ceiling, int maxStarting) {
        return new SandboxPool(starter, tier, floor, ceiling, List.of(),
                new PoolConfig.Demand(true, maxStarting, Duration.ofSeconds(10), Duration.ofSeconds(30), 1024), creating::get,
                now::get, availableMb::get);
    }

    private static void await(String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "not reached within 30 s: " + what);
            Thread.onSpinWait();
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    @Test
    void aBurstIsRefilledSeveralAtOnceWithinTheBudgetAndCreatesNeverWait() {
        try (SandboxPool pool = pool(1, 10, 3)) {
            await("the floor's one start", () -> inFlight.get() == 1);
            // 100 creates at once: none ready, each returns at once (a cold start is the caller's).
            for (int i = 0; i < 100; i++) assertNull(pool.take());
            PoolStatus s = pool.status();
            assertEquals(100, s.misses());
            assertEquals(0, s.hits());
            assertEquals(10, s.target(), "100 at once read as 10/s over a 1 s horizon");
            await("three starts at once", () -> inFlight.get() == 3);
            gate.release(10);
            await("the pool full at its target", () -> pool.ready() == 10);
            assertEquals(3, maxInFlight.get(), "never more than the budget at once");
            assertEquals(10, pool.status().refills());
            assertEquals(0, pool.status().starting());
            // The next create is a hit: one of the ten (which one depends on which start finished first).
            var taken = pool.take();
            assertTrue(taken != null && taken.id().startsWith("pooled-"), () -> "a hit, got " + (taken == null ? "none" : taken.id()));
            assertEquals(1, pool.status().hits());
        }
    }

    @Test
    void refillsWaitWhileHandOversAreInFlightUnlessThePoolIsEmpty() throws InterruptedException {
        try (SandboxPool pool = pool(3, 3, 3)) {
            gate.release(3);
            await("the floor ready", () -> pool.ready() == 3 && pool.status().starting() == 0);
            // Two creates in flight take two: the one left covers what comes, so nothing starts.
            creating.set(2);
            assertTrue(pool.take() != null && pool.take() != null);
            Thread.sleep(3 * SandboxPool.TICK_MS); // the loop has looked several times (a slower host only looks fewer)
            assertEquals(0, pool.status().starting(), "no start competes with the hand-overs");
            assertEquals(3, started.get());
            // The creates end: the refills go.
            creating.set(0);
            pool.wake();
            await("two refills", () -> started.get() == 5);
            gate.release(2);
            await("the floor ready again", () -> pool.ready() == 3 && pool.status().starting() == 0);
            // Creates still in flight but the pool empty: the refills start at once.
            creating.set(3);
            for (int i = 0; i < 3; i++) assertTrue(pool.take() != null);
            await("refills of an empty pool beside creates", () -> started.get() == 8);
            gate.release(3);
            await("full", () -> pool.ready() == 3 && pool.status().starting() == 0);
        }
    }

    @Test
    void anIdlePoolShrinksToItsFloorAndRemovesTheSurplus() {
        try (SandboxPool pool = pool(2, 8, 8)) {
            gate.release(100);
            await("the floor ready", () -> pool.ready() == 2);
            // 80 creates at once: those served from the pool are taken, not removed (the starts here
            // are instant, so refills serve some of them too).
            for (int i = 0; i < 80; i++) pool.take();
            assertEquals(80, pool.status().hits() + pool.status().misses());
            assertTrue(pool.status().hits() >= 2);
            await("the pool at its ceiling", () -> pool.ready() == 8);
            assertEquals(Set.of(), discarded, "nothing removed while creates come");
            now.addAndGet(Duration.ofSeconds(31).toNanos());
            // A surplus leaves the ready set under the lock and is removed just after, outside it:
            // await both, then check that nothing more went.
            await("the pool back at its floor, the surplus removed", () -> pool.ready() == 2 && discarded.size() >= 6);
            assertEquals(6, discarded.size());
            assertEquals(6, pool.status().shrunk());
            assertEquals(2, pool.status().target());
        }
        assertEquals(8, discarded.size(), "close removes the two left");
    }

    @Test
    void belowTheMemoryReserveThePoolKeepsItsFloorOnly() {
        availableMb.set(512);
        try (SandboxPool pool = pool(2, 8, 8)) {
            gate.release(100);
            for (int i = 0; i < 80; i++) pool.take();
            await("the floor refilled", () -> pool.ready() == 2 && pool.status().starting() == 0);
            assertEquals(8, pool.status().target());
            pool.wake();
            assertEquals(2, pool.ready() + pool.status().starting(), "nothing above the floor while memory is short");
            availableMb.set(4096);
            await("the pool grown to its target once memory is there", () -> pool.ready() == 8);
        }
    }

    @Test
    void aSandboxStillStartingAtCloseIsRemovedOnceStarted() throws Exception {
        SandboxPool pool = pool(1, 1, 1);
        await("the start under way", () -> inFlight.get() == 1);
        Thread closing = Thread.ofVirtual().start(pool::close);
        gate.release();
        closing.join();
        // Removed before close returns (serve's JVM exits right after it).
        assertEquals(Set.of("pooled-1"), discarded);
        assertEquals(Set.of(), abandoned);
        assertEquals(0, pool.ready());
    }

    @Test
    void aStartThatOutlastsTheCloseWaitIsRemovedUnderIt() {
        SandboxPool pool = pool(1, 1, 1);
        await("the start under way", () -> inFlight.get() == 1);
        // The start never finishes by itself: close removes its container and its start ends.
        pool.close();
        assertEquals(Set.of("pooled-1"), abandoned);
        assertEquals(0, inFlight.get());
        assertEquals(0, pool.status().starting());
        assertEquals(Set.of(), discarded, "a failed start is its own cleanup");
    }
}
