package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.stockade.conformance.RawClient;
import dev.stockade.conformance.TestServer;
import dev.stockade.server.config.PoolConfig;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;

/**
 * A pool that follows demand (issue 16): it starts several sandboxes at once within its budget,
 * grows towards its ceiling under a burst of creates (each create that finds none ready starts cold
 * at once), and once demand has stayed low for its idle time, removes the surplus down to its floor,
 * leaving nothing of it on the host. Its counts are in GET /runtimes and GET /metrics. Short
 * intervals (PoolConfig.Demand) keep it quick; it asserts states and counts, never speed.
 */
class PoolDemandIT {
    private static final int FLOOR = 2;
    private static final int CEILING = 5;
    private static final int BUDGET = 2;

    @Test
    void thePoolGrowsUnderABurstRefillsSeveralAtOnceAndShrinksBackWhenIdle() throws Exception {
        PoolConfig pool = new PoolConfig(CEILING, FLOOR, List.of(), 0,
                new PoolConfig.Demand(true, BUDGET, Duration.ofSeconds(1), Duration.ofSeconds(15)));
        try (TestServer ts = new TestServer(cfg -> cfg.withPool(pool))) {
            RawClient c = ts.client;
            JsonNode s = await(c, "the floor ready", p -> p.path("ready").asInt() == FLOOR);
            assertEquals(FLOOR, s.path("floor").asInt(), s.toString());
            assertEquals(CEILING, s.path("ceiling").asInt(), s.toString());
            assertEquals(FLOOR, s.path("target").asInt(), "no create yet: the floor: " + s);
            assertEquals(BUDGET, s.path("startingPeak").asInt(), "the floor's sandboxes were started together: " + s);
            // What api/openapi.yaml promises of the pool object is there.
            JsonNode spec = new ObjectMapper(new YAMLFactory()).readTree(Path.of(System.getProperty("stockade.repo", ".."))
                    .resolve("api/openapi.yaml").toFile());
            JsonNode schema = spec.at("/paths/~1runtimes/get/responses/200/content/application~1json/schema/items/properties/pool");
            assertTrue(schema.path("required").size() > 5, schema.toString());
            for (JsonNode field : schema.path("required")) assertTrue(s.has(field.asText()), field + " in " + s);

            // A burst of creates at once: more than the pool holds, so some are served cold, at once.
            int burst = 10;
            List<RawClient.Box> boxes = new ArrayList<>();
            try (var pool10 = Executors.newFixedThreadPool(burst)) {
                List<Future<RawClient.Box>> fs = new ArrayList<>();
                for (int i = 0; i < burst; i++) fs.add(pool10.submit(() -> c.create(Map.of("templateID", "base", "timeout", 60))));
                for (Future<RawClient.Box> f : fs) boxes.add(f.get());
            }
            try {
                s = poolOf(c);
                assertEquals(burst, s.path("hits").asInt() + s.path("misses").asInt(), s.toString());
                assertTrue(s.path("misses").asInt() >= burst - CEILING, "the creates past the pool started cold: " + s);
                assertEquals(CEILING, s.path("target").asInt(), "10 at once within a 1 s window ask for the ceiling: " + s);
            } finally {
                boxes.forEach(c::kill);
            }
            // The pool refills to its ceiling, never more than the budget at once.
            s = await(c, "the pool at its ceiling", p -> p.path("ready").asInt() == CEILING);
            assertEquals(BUDGET, s.path("startingPeak").asInt(), s.toString());
            assertTrue(s.path("refills").asInt() >= CEILING, s.toString());

            String metrics = c.call("GET", "/metrics", null).body();
            assertTrue(metrics.contains("stockade_pool_target{runtime=\"runc\",pool=\"base\"} " + CEILING + "\n"), metrics);
            assertTrue(metrics.contains("stockade_pool_creates_total{runtime=\"runc\",pool=\"base\",result=\"miss\"} " + s.path("misses").asInt() + "\n"), metrics);
            assertTrue(metrics.contains("stockade_pool_refill_seconds_count{runtime=\"runc\",pool=\"base\"} " + s.path("refills").asInt() + "\n"), metrics);

            // No create for the idle time: back to the floor, the surplus removed from the host.
            s = await(c, "the pool back at its floor", p -> p.path("ready").asInt() == FLOOR && p.path("starting").asInt() == 0);
            assertEquals(FLOOR, s.path("target").asInt(), s.toString());
            assertEquals(CEILING - FLOOR, s.path("shrunk").asInt(), s.toString());
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (TestServer.containers(ts.dataDir).size() != FLOOR) {
                assertTrue(System.nanoTime() < deadline, "only the floor's sandboxes stay on the host: " + TestServer.containers(ts.dataDir));
                Thread.sleep(100);
            }
        }
    }

    private static JsonNode poolOf(RawClient c) {
        for (JsonNode r : c.call("GET", "/runtimes", null).json()) {
            if (r.path("name").asText().equals("runc")) return r.path("pool");
        }
        throw new AssertionError("no runc runtime");
    }

    private static JsonNode await(RawClient c, String what, Predicate<JsonNode> condition) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
        while (true) {
            JsonNode s = poolOf(c);
            if (condition.test(s)) return s;
            assertTrue(System.nanoTime() < deadline, what + " not reached within 120 s: " + s);
            Thread.sleep(100);
        }
    }
}
