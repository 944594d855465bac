package dev.stockade.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The token bucket behind the output relay's pace, on a clock the test moves. */
class OutputPaceTest {
    private static final long MIB = 1024 * 1024;
    private static final long SECOND = 1_000_000_000L;

    private final AtomicLong now = new AtomicLong(5 * SECOND);

    private OutputPace pace(long rate, long burst) {
        return new OutputPace(rate, burst, now::get);
    }

    @Test
    void aBurstGoesAtFullSpeedAndWhatFollowsWaitsAtTheRate() {
        OutputPace p = pace(4 * MIB, 16 * MIB);
        for (int i = 0; i < 16; i++) {
            assertEquals(0, p.charge(MIB), "chunk " + i + " of the burst");
        }
        // Past the burst: each MiB is a quarter of a second behind the one before.
        assertEquals(SECOND / 4, p.charge(MIB));
        assertEquals(SECOND / 2, p.charge(MIB));
        now.addAndGet(SECOND / 2); // the caller waited what it was told
        assertEquals(SECOND / 4, p.charge(MIB));
    }

    @Test
    void aQuietSpellRefillsTheBucketButNeverBeyondTheBurst() {
        OutputPace p = pace(MIB, 2 * MIB);
        assertEquals(0, p.charge(2 * MIB));
        now.addAndGet(3600 * SECOND);
        assertEquals(0, p.charge(2 * MIB));
        assertEquals(SECOND, p.charge(MIB), "an hour of quiet buys one burst, not an hour's worth");
    }

    @Test
    void aChunkLargerThanTheBurstWaitsOffItsDebt() {
        OutputPace p = pace(MIB, MIB / 2);
        assertEquals(SECOND / 2, p.charge(MIB));
        now.addAndGet(SECOND / 2);
        assertEquals(SECOND / 4, p.charge(MIB / 4));
    }

    @Test
    void concurrentStreamsQueueBehindEachOthersDebt() {
        OutputPace p = pace(MIB, MIB);
        assertEquals(0, p.charge(MIB));
        long first = p.charge(MIB);
        long second = p.charge(MIB);
        assertEquals(SECOND, first);
        assertEquals(2 * SECOND, second, "the sandbox's streams share one rate");
    }

    @Test
    void unpacedNeverWaitsAndNothingIsChargedForEmptyEvents() {
        assertSame(OutputPace.UNPACED, OutputPace.of(0, 16 * MIB));
        assertEquals(0, OutputPace.UNPACED.charge(Long.MAX_VALUE / 2));
        OutputPace p = pace(MIB, 1);
        assertEquals(0, p.charge(0));
        assertEquals(0, p.charge(-5));
        assertThrows(IllegalArgumentException.class, () -> pace(-1, 1));
    }

    @Test
    void passReturnsEarlyWhenTheThreadIsInterrupted() throws Exception {
        OutputPace p = OutputPace.of(1, 1); // one byte a second: a MiB would take twelve days
        Thread t = Thread.ofVirtual().start(() -> p.pass(MIB));
        t.interrupt();
        t.join(10_000);
        assertTrue(!t.isAlive(), "an interrupted pass ends its wait");
    }
}
