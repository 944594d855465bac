package dev.stockade.server.core;

import dev.stockade.server.error.StockadeError;
import java.time.Duration;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.LongAdder;

/**
 * Turns to start a sandbox on one tier: at most {@code limit} starts run at once, the others wait
 * first come, first served (issue 16). A start is CPU-bound (runc, the agent's interpreter, the
 * server's share: ~80 ms of CPU here with its first command), so more starts than cores only share
 * the cores: a burst of 100 creates then ends all together near its end (median 3.3–4.5 s of a
 * 4.2–4.7 s burst on 2 cores, docs/BENCHMARKS.md), where in turns the first are done first (median
 * 2.3–2.7 s) and each one's first command no longer waits behind the other starts (28–50 ms median
 * against 0.4–1.1 s).
 *
 * <p>Creates, the pools' refills and forks all take turns ({@link SandboxAssembler#start}); the
 * turn ends when the agent has answered, before a pool's warm-up (which runs in the background).
 * Thread-safe.
 */
public final class StartTurns {
    /**
     * What {@code GET /runtimes} and the metrics show of a tier's starts: the limit, starts running
     * and waiting now, starts that have had to wait since the server started, and the most at once.
     */
    public record Status(int limit, int running, int waiting, long waited, int peak) {}

    private final int limit;
    private final Duration maxWait;
    private final Semaphore turns;
    private final AtomicInteger waiting = new AtomicInteger();
    private final AtomicInteger running = new AtomicInteger();
    private final AtomicInteger peak = new AtomicInteger();
    private final LongAdder waited = new LongAdder();

    StartTurns(int limit, Duration maxWait) {
        if (limit < 1) throw new IllegalArgumentException("at least one start at a time, not " + limit);
        this.limit = limit;
        this.maxWait = maxWait;
        this.turns = new Semaphore(limit, true);
    }

    /**
     * Waits for a turn; the caller must {@link #end} it. UNAVAILABLE (503) when none came within the
     * wait (the starts ahead are stuck) or the thread was interrupted.
     */
    void begin() {
        if (!turns.tryAcquire()) {
            waited.increment();
            waiting.incrementAndGet();
            try {
                if (!turns.tryAcquire(maxWait.toMillis(), TimeUnit.MILLISECONDS)) {
                    throw new StockadeError(StockadeError.Code.UNAVAILABLE, "the host is busy starting other sandboxes"
                            + " (none of them ended within " + maxWait.toSeconds() + " s); try again");
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new StockadeError(StockadeError.Code.UNAVAILABLE, "the start was interrupted before its turn");
            } finally {
                waiting.decrementAndGet();
            }
        }
        peak.accumulateAndGet(running.incrementAndGet(), Math::max);
    }

    /** Ends a turn {@link #begin} gave. */
    void end() {
        running.decrementAndGet();
        turns.release();
    }

    Status status() {
        return new Status(limit, running.get(), waiting.get(), waited.sum(), peak.get());
    }
}
