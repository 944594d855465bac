package dev.stockade.server.core;

import dev.stockade.server.config.PoolConfig;
import java.util.function.LongSupplier;

/**
 * How many sandboxes one pool should hold (ready plus starting), from the creates' arrival rate:
 * the policy alone, no threads and no I/O, read against an injected clock so its tests need no
 * sleeps. {@link SandboxPool} calls it under its own lock; nothing else does.
 *
 * <p>The rate is an exponentially weighted moving average of arrivals (each adds 1/window, the sum
 * decays by e^(-elapsed/window)), so a burst of n creates reads as n/window creates a second and
 * fades over a few windows. The target covers the creates that arrive while the pool refills
 * (Little's law: rate × refill latency are taken before a replacement is ready, and as many again
 * are on their way), at least one second's worth: {@code ceil(rate × max(1 s, 2 × refill latency))},
 * kept between the floor and the ceiling; after {@code idleAfter} without a create, the floor.
 *
 * <p>The target rises at once but falls at most once per {@code idleAfter} (to what the rate then
 * asks for): a ready sandbox above the target is removed, and removing what a burst paid for only
 * for the next burst to start it again would waste the host's CPU; so the pool holds what a burst
 * made it grow to until demand has stayed lower for that long. A fixed pool's target is always the ceiling.
 */
final class PoolSizing {
    /** What the refill latency is taken to be before the first refill has been measured. */
    static final double INITIAL_REFILL_SECONDS = 0.5;
    private static final double MIN_HORIZON_SECONDS = 1.0;

    private final int floor;
    private final int ceiling;
    private final PoolConfig.Demand demand;
    private final LongSupplier nanoClock;
    private final double windowSeconds;
    /** Decayed count of arrivals, as of {@link #decayedAt}. */
    private double arrivals;
    private long decayedAt;
    private long lastArrival;
    private boolean anyArrival;
    private double refillSeconds = INITIAL_REFILL_SECONDS;
    /** The target as last raised (or let fall), and when. */
    private int held;
    private long heldSince;

    PoolSizing(int floor, int ceiling, PoolConfig.Demand demand, LongSupplier nanoClock) {
        if (floor < 0 || floor > ceiling) throw new IllegalArgumentException("floor " + floor + " outside 0.." + ceiling);
        this.floor = floor;
        this.ceiling = ceiling;
        this.demand = demand;
        this.nanoClock = nanoClock;
        this.windowSeconds = demand.window().toNanos() / 1e9;
        this.decayedAt = nanoClock.getAsLong();
        this.held = floor;
        this.heldSince = decayedAt;
    }

    /** A create asked this pool for a sandbox (whether it got one or not). */
    void arrived() {
        long now = nanoClock.getAsLong();
        decay(now);
        arrivals += 1;
        lastArrival = now;
        anyArrival = true;
    }

    /** A refill took {@code seconds}: the average moves a quarter of the way towards it. */
    void refilled(double seconds) {
        refillSeconds += (seconds - refillSeconds) / 4;
    }

    /** Creates a second, as the moving average has it now. */
    double rate() {
        decay(nanoClock.getAsLong());
        return arrivals / windowSeconds;
    }

    double refillSeconds() {
        return refillSeconds;
    }

    /** No create for {@code idleAfter} (or none yet). */
    boolean idle() {
        return !anyArrival || nanoClock.getAsLong() - lastArrival >= demand.idleAfter().toNanos();
    }

    /** Sandboxes the pool should hold now, ready or starting: between the floor and the ceiling. */
    int target() {
        if (!demand.follow()) return ceiling;
        long now = nanoClock.getAsLong();
        int wanted = wanted();
        if (wanted >= held || now - heldSince >= demand.idleAfter().toNanos()) {
            held = wanted;
            heldSince = now;
        }
        return held;
    }

    /** What the rate alone asks for now. */
    private int wanted() {
        if (idle()) return floor;
        double horizon = Math.max(MIN_HORIZON_SECONDS, 2 * refillSeconds);
        long n = (long) Math.ceil(rate() * horizon - 1e-9);
        return (int) Math.max(floor, Math.min(ceiling, n));
    }

    int floor() {
        return floor;
    }

    int ceiling() {
        return ceiling;
    }

    private void decay(long now) {
        long elapsed = now - decayedAt;
        if (elapsed <= 0) return;
        arrivals *= Math.exp(-(elapsed / 1e9) / windowSeconds);
        decayedAt = now;
    }
}
