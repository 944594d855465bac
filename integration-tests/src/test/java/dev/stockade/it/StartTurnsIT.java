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
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * Sandbox starts take turns (issue 16, S9.11t): a server that starts one sandbox at a time, given
 * six creates at once, runs their starts one after the other: every create succeeds, never two
 * starts at once, and those that waited are counted in GET /runtimes and GET /metrics. Asserts
 * counts and outcomes, never speed (the burst figures are bench/pool-bench.mjs's).
 */
class StartTurnsIT {
    private static final int CREATES = 6;

    @Test
    void createsBeyondTheConcurrentStartsWaitTheirTurnAndAllSucceed() throws Exception {
        try (TestServer ts = new TestServer(cfg -> cfg.withPool(PoolConfig.off()).withConcurrentStarts(1))) {
            RawClient c = ts.client;
            JsonNode s = startsOf(c);
            assertEquals(1, s.path("concurrent").asInt(), s.toString());
            assertEquals(0, s.path("peak").asInt(), "nothing started yet: " + s);

            List<RawClient.Box> boxes = new ArrayList<>();
            try (var clients = Executors.newFixedThreadPool(CREATES)) {
                List<Future<RawClient.Box>> fs = new ArrayList<>();
                for (int i = 0; i < CREATES; i++) fs.add(clients.submit(() -> c.create(Map.of("templateID", "base", "timeout", 60))));
                for (Future<RawClient.Box> f : fs) boxes.add(f.get());
            }
            try {
                for (RawClient.Box b : boxes) assertEquals("ok\n", c.run(b, "echo ok").stdout(), "every create got a working sandbox");
                s = startsOf(c);
                assertEquals(1, s.path("peak").asInt(), "never two starts at once: " + s);
                assertTrue(s.path("waited").asInt() >= 1, "six creates at once, one start at a time: some waited: " + s);
                assertEquals(0, s.path("running").asInt(), s.toString());
                assertEquals(0, s.path("waiting").asInt(), s.toString());

                String metrics = c.call("GET", "/metrics", null).body();
                assertTrue(metrics.contains("stockade_sandbox_starts_concurrent{runtime=\"runc\"} 1\n"), metrics);
                assertTrue(metrics.contains("stockade_sandbox_start_waits_total{runtime=\"runc\"} " + s.path("waited").asInt() + "\n"), metrics);
                assertTrue(metrics.contains("stockade_sandbox_starts{runtime=\"runc\",state=\"waiting\"} 0\n"), metrics);

                // What api/openapi.yaml promises of the starts object is there.
                JsonNode spec = new ObjectMapper(new YAMLFactory()).readTree(Path.of(System.getProperty("stockade.repo", ".."))
                        .resolve("api/openapi.yaml").toFile());
                JsonNode schema = spec.at("/paths/~1runtimes/get/responses/200/content/application~1json/schema/items/properties/starts");
                assertEquals(5, schema.path("required").size(), schema.toString());
                for (JsonNode field : schema.path("required")) assertTrue(s.has(field.asText()), field + " in " + s);
            } finally {
                boxes.forEach(c::kill);
            }
        }
    }

    private static JsonNode startsOf(RawClient c) {
        for (JsonNode r : c.call("GET", "/runtimes", null).json()) {
            if (r.path("name").asText().equals("runc")) return r.path("starts");
        }
        throw new AssertionError("no runc runtime");
    }
}
