package dev.stockade.server.core;

import java.util.concurrent.locks.LockSupport;
import java.util.function.LongSupplier;

/**
 * The rate at which the server relays one sandbox's output (every command and cell stream of it
 * together): a token bucket of {@code burst} bytes refilled at {@code bytesPerSecond}.
 *
 * <p>Why: relaying output is the server's work, done outside every sandbox's CPU quota — read from
 * the agent, encoded and framed on the JVM that answers everyone else. Unpaced, two sandboxes running
 * {@code yes} pushed ~60 MiB/s through it and multiplied a neighbour's p99 by 3 (loaded 2-core host)
 * to 7 (quiet) (docs/BENCHMARKS.md, "Ten sandboxes at their limits"). Paced, the stream that is over the rate waits before it forwards its next
 * chunk; its reader then stops reading the agent, the agent stops reading the pipe, and the writing
 * process blocks — on its own CPU quota. Nothing is dropped: the output limit still ends a run, the
 * pace only spreads it out. The burst is one output limit's worth, so a single run's whole output goes
 * at full speed and only sustained output is paced.
 *
 * <p>Thread-safe. Debt is allowed: a chunk larger than what the bucket holds is forwarded after a wait
 * that pays it off, and concurrent streams queue behind each other's debt.
 */
public final class OutputPace {
    /** A pace that never waits. */
    public static final OutputPace UNPACED = new OutputPace(0, 0, System::nanoTime);

    private final long bytesPerSecond;
    private final long burst;
    private final LongSupplier clock;
    private double tokens;
    private long lastNanos;

    /**
     * @param bytesPerSecond the sustained rate; 0: unpaced
     * @param burst what may go at full speed after a quiet spell (at least one byte when paced)
     * @param clock nanoseconds, monotonic (System::nanoTime outside tests)
     */
    OutputPace(long bytesPerSecond, long burst, LongSupplier clock) {
        if (bytesPerSecond < 0 || burst < 0) throw new IllegalArgumentException("a pace is not negative");
        this.bytesPerSecond = bytesPerSecond;
        this.burst = Math.max(1, burst);
        this.clock = clock;
        this.tokens = this.burst;
        this.lastNanos = clock.getAsLong();
    }

    /** A pace of {@code bytesPerSecond} (0: unpaced) with a burst of {@code burst} bytes. */
    public static OutputPace of(long bytesPerSecond, long burst) {
        return bytesPerSecond == 0 ? UNPACED : new OutputPace(bytesPerSecond, burst, System::nanoTime);
    }

    /**
     * Charges {@code bytes} about to be forwarded; returns the nanoseconds the caller must wait first
     * (0: none).
     */
    synchronized long charge(long bytes) {
        if (bytesPerSecond == 0 || bytes <= 0) return 0;
        long now = clock.getAsLong();
        tokens = Math.min(burst, tokens + (now - lastNanos) * (bytesPerSecond / 1e9));
        lastNanos = now;
        tokens -= bytes;
        return tokens >= 0 ? 0 : (long) Math.ceil(-tokens * 1e9 / bytesPerSecond);
    }

    /**
     * Charges {@code bytes} and waits until they may be forwarded. An interrupt (the server stopping)
     * ends the wait early, the flag kept for the caller's next blocking call to see.
     */
    public void pass(long bytes) {
        long deadline = System.nanoTime() + charge(bytes);
        long left;
        while ((left = deadline - System.nanoTime()) > 0 && !Thread.currentThread().isInterrupted()) {
            LockSupport.parkNanos(left);
        }
    }
}
