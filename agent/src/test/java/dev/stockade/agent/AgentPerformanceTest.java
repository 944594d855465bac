package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.protocol.ExecRequest;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Start-up and spawn latency, measured and printed for the record (docs/agent-protocol.md quotes
 * them); asserted only loosely, because CI machines are noisy.
 */
class AgentPerformanceTest {

    @Test
    void startupAndExecRoundTrip() throws IOException {
        List<Long> startups = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            try (AgentProcess agent = AgentProcess.start()) {
                startups.add(agent.startup.toNanos() / 1000);
            }
        }
        try (AgentProcess agent = AgentProcess.start()) {
            ExecRequest trueCmd = new ExecRequest(List.of("/bin/true"), Map.of(), null, "user", false, 0, 0, null);
            for (int i = 0; i < 20; i++) {
                Events.collect(agent.client.exec(trueCmd), Duration.ofSeconds(5)); // warm up both sides
            }
            List<Long> execs = new ArrayList<>();
            for (int i = 0; i < 100; i++) {
                long start = System.nanoTime();
                Events events = Events.collect(agent.client.exec(trueCmd), Duration.ofSeconds(5));
                execs.add((System.nanoTime() - start) / 1000);
                assertEquals(0, events.ended().exitCode());
            }
            List<Long> hellos = new ArrayList<>();
            for (int i = 0; i < 100; i++) {
                long start = System.nanoTime();
                agent.client.hello(Duration.ofSeconds(1));
                hellos.add((System.nanoTime() - start) / 1000);
            }
            System.out.printf("agent start-up to first hello: median %.1f ms %s%n", median(startups) / 1000.0, startups);
            System.out.printf("exec /bin/true round trip: median %.2f ms, p90 %.2f ms%n",
                    median(execs) / 1000.0, percentile(execs, 90) / 1000.0);
            System.out.printf("hello round trip: median %.2f ms%n", median(hellos) / 1000.0);
            assertTrue(median(execs) < 200_000, "exec round trip median " + median(execs) + " us");
        }
        assertTrue(median(startups) < 2_000_000, "start-up median " + median(startups) + " us");
    }

    private static long median(List<Long> values) {
        return percentile(values, 50);
    }

    private static long percentile(List<Long> values, int p) {
        List<Long> sorted = values.stream().sorted().toList();
        return sorted.get(Math.min(sorted.size() - 1, sorted.size() * p / 100));
    }
}
