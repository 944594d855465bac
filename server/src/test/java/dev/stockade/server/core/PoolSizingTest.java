package dev.stockade.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.server.config.PoolConfig;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The pool's sizing policy against a clock the test moves: the target follows the arrival rate between floor and ceiling. */
class PoolSizingTest {
    private final AtomicLong now = new AtomicLong(1_000_000_000L);
    private static final PoolConfig.Demand DEMAND = new PoolConfig.Demand(true, 2, Duration.ofSeconds(10), Duration.ofSeconds(30));

    private void advance(double seconds) {
        now.addAndGet((long) (seconds * 1e9));
    }

    @Test
    void withoutCreatesThePoolHoldsItsFloor() {
        PoolSizing s = new PoolSizing(2, 8, DEMAND, now::get);
        assertTrue(s.idle());
        assertEquals(2, s.target());
        advance(3600);
        assertEquals(2, s.target());
    }

    @Test
    void aStreamOfCreatesRaisesTheTargetUpToTheCeiling() {
        PoolSizing s = new PoolSizing(2, 8, DEMAND, now::get);
        // 2 creates a second for 30 s: the average approaches 2/s (1 - e^-3 of it), the horizon is 1 s
        // (refills measured at 0.2 s: 2 × 0.2 < 1): a target of 2.
        for (int i = 0; i < 60; i++) {
            s.arrived();
            s.refilled(0.2);
            advance(0.5);
        }
        assertEquals(1.9, s.rate(), 0.1);
        assertEquals(2, s.target());
        // 10 a second: ~10/s, target 10 × 1 s, capped at the ceiling.
        for (int i = 0; i < 300; i++) {
            s.arrived();
            advance(0.1);
        }
        assertEquals(8, s.target());
    }

    @Test
    void slowRefillsWidenTheHorizon() {
        PoolSizing s = new PoolSizing(1, 20, DEMAND, now::get);
        for (int i = 0; i < 100; i++) s.refilled(1.5);
        assertEquals(1.5, s.refillSeconds(), 0.01);
        // A burst of 20 creates at once reads as 2/s; over 2 × 1.5 s, 6 are needed.
        for (int i = 0; i < 20; i++) s.arrived();
        assertEquals(2.0, s.rate(), 1e-9);
        assertEquals(6, s.target());
    }

    @Test
    void aBurstsTargetIsHeldUntilIdleThenTheFloor() {
        PoolSizing s = new PoolSizing(0, 50, DEMAND, now::get);
        for (int i = 0; i < 100; i++) s.arrived();
        assertEquals(10, s.target());
        advance(10); // one window: the rate falls to 1/e, the target holds
        assertEquals(10 / Math.E, s.rate(), 1e-6);
        assertEquals(10, s.target());
        advance(19.9);
        assertFalse(s.idle());
        assertEquals(10, s.target());
        advance(0.1); // 30 s without a create: the floor
        assertTrue(s.idle());
        assertEquals(0, s.target());
        s.arrived();
        assertFalse(s.idle());
        assertEquals(1, s.target());
    }

    @Test
    void underATrickleTheTargetFallsOncePerIdleTimeToWhatTheRateAsks() {
        PoolSizing s = new PoolSizing(0, 50, DEMAND, now::get);
        for (int i = 0; i < 100; i++) s.arrived();
        assertEquals(10, s.target());
        // One create every 5 s: never idle, but ~0.7/s asks for one.
        for (int t = 5; t < 30; t += 5) {
            advance(5);
            s.arrived();
            assertEquals(10, s.target(), "held at " + t + " s");
        }
        advance(5);
        s.arrived();
        assertFalse(s.idle());
        assertEquals(1, s.target());
    }

    @Test
    void aFixedPoolAlwaysAimsAtItsCeiling() {
        PoolSizing s = new PoolSizing(1, 3, PoolConfig.Demand.fixed(), now::get);
        assertEquals(3, s.target());
        for (int i = 0; i < 100; i++) s.arrived();
        advance(3600);
        assertEquals(3, s.target());
    }
}
