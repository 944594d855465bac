package dev.stockade.server.core;

import java.util.List;

/**
 * What one warm pool is doing, read by {@code GET /metrics} and {@code GET /runtimes}. The counters
 * count since the server started.
 *
 * @param ready sandboxes ready to be taken
 * @param starting sandboxes being started for the pool now
 * @param startingPeak the most started at once (at most the budget, {@code maxStarting})
 * @param target what the pool aims to hold, ready or starting (between floor and ceiling)
 * @param arrivalRate creates a second that asked the pool, as its moving average has it
 * @param hits creates served by a ready sandbox
 * @param misses creates that found none ready and started a fresh sandbox (the cold fallback)
 * @param shrunk ready sandboxes removed because the pool was idle above its target
 * @param refills sandboxes the pool started; {@code refillSecondsSum} their start times in total
 * @param refillBuckets how many refills took at most each of {@link #REFILL_BUCKETS} seconds (not
 *     cumulative), the last entry those above them
 */
public record PoolStatus(int ready, int starting, int startingPeak, int target, int floor, int ceiling, double arrivalRate,
                         long hits, long misses, long shrunk, long refills, double refillSecondsSum, long[] refillBuckets) {
    /** Upper bounds (seconds) of the refill latency histogram's buckets (then +Inf). */
    public static final List<Double> REFILL_BUCKETS = List.of(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0);

    public PoolStatus {
        refillBuckets = refillBuckets.clone();
    }

    /** hits / (hits + misses), or NaN before any create asked. */
    public double hitRate() {
        long asked = hits + misses;
        return asked == 0 ? Double.NaN : (double) hits / asked;
    }

    @Override
    public long[] refillBuckets() {
        return refillBuckets.clone();
    }
}
