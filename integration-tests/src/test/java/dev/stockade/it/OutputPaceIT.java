package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.conformance.RawClient;
import dev.stockade.conformance.TestServer;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The server relays one sandbox's output at a sustained rate (SPECIFICATION.md S3.13k; {@code
 * OutputPace}, {@code --output-rate}): past a burst of one output limit's worth, a sandbox's streams
 * together go at the rate, the writer waiting on its pipe; nothing is dropped; another sandbox's
 * output is not held behind it. Timing is asserted only as lower bounds (the pace's own arithmetic)
 * and as an order between a paced and an unpaced stream, never as a speed.
 */
class OutputPaceIT {
    static final long RATE = 256 * 1024;          // bytes a second, per sandbox
    static final int BYTES = 1_500_000;           // one command's output: under the 2 MiB burst
    static final String WRITE = "head -c " + BYTES + " /dev/zero | tr '\\0' a";

    static TestServer ts;
    static RawClient c;

    @BeforeAll
    static void start() {
        ts = new TestServer(cfg -> cfg.withOutputBytesPerSecond(RATE));
        c = ts.client;
    }

    @AfterAll
    static void stop() {
        ts.close();
    }

    @Test
    void sustainedOutputIsPacedPerSandboxAndNothingIsDropped() throws Exception {
        RawClient.Box paced = c.create(Map.of("limits", Map.of("outputMB", 2)));
        RawClient.Box other = c.create(Map.of("limits", Map.of("outputMB", 2)));
        try (var pool = Executors.newVirtualThreadPerTaskExecutor()) {
            // A first run spends most of the burst at full speed.
            RawClient.Run first = c.run(paced, WRITE);
            assertWhole(first);
            // Two more at once: 3 MB against the ~0.6 MB left of the burst (plus what refills),
            // so together they take at least (3 MB - 2 MiB) / 256 KiB/s ≈ 3.4 s whatever the machine.
            long t0 = System.nanoTime();
            CompletableFuture<RawClient.Run> a = CompletableFuture.supplyAsync(() -> c.run(paced, WRITE), pool);
            CompletableFuture<RawClient.Run> b = CompletableFuture.supplyAsync(() -> c.run(paced, WRITE), pool);
            // Another sandbox meanwhile has its own, full burst: it is not queued behind the first's debt.
            Thread.sleep(200);
            RawClient.Run neighbour = c.run(other, WRITE);
            boolean neighbourFirst = !a.isDone() || !b.isDone();
            RawClient.Run ra = a.get(120, TimeUnit.SECONDS);
            RawClient.Run rb = b.get(120, TimeUnit.SECONDS);
            double both = (System.nanoTime() - t0) / 1e9;
            assertWhole(ra);
            assertWhole(rb);
            assertWhole(neighbour);
            double floor = (2.0 * BYTES - 2 * 1024 * 1024) / RATE;
            assertTrue(both >= floor, "two streams of one sandbox shared its rate: " + both + " s, at least " + floor + " s expected");
            assertTrue(neighbourFirst, "the other sandbox's output waited behind the paced one's");
        } finally {
            c.kill(paced);
            c.kill(other);
        }
    }

    private static void assertWhole(RawClient.Run r) {
        assertEquals(0, r.exitCode(), "exit: " + r.end() + " " + r.error());
        assertEquals(BYTES, r.stdout().length(), "every byte arrives: paced output is delayed, never dropped");
        assertTrue(r.stdout().chars().allMatch(ch -> ch == 'a'), "the output is intact");
        assertEquals("", r.stderr(), "no stderr");
    }
}
