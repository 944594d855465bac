package dev.stockade.it;

import static dev.stockade.conformance.ApiAssertions.assertError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.conformance.RawClient;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * E2B's control plane as its current SDKs use it, on the raw wire: {@code GET /v2/sandboxes} with
 * its filters ({@code state}, {@code startedAfter}, {@code template}, metadata), {@code order} by
 * start time across pages, bad values refused; connect never shortening a running sandbox's
 * timeout; {@code GET /sandboxes/{id}/metrics} with real readings and a time range.
 */
class ControlPlaneIT extends OneServerPerClass {

    private static RawClient.Box create(String group) {
        return c.create(Map.of("templateID", "base", "timeout", 120, "metadata", Map.of("group", group)));
    }

    /** The metadata filter as the SDK sends it: the pairs form-encoded into one parameter. */
    private static String filter(String group) {
        return "metadata=" + URLEncoder.encode("group=" + group, StandardCharsets.UTF_8);
    }

    private static List<String> ids(RawClient.Response r) {
        assertEquals(200, r.status(), r::body);
        List<String> out = new ArrayList<>();
        for (JsonNode n : r.json()) out.add(n.get("sandboxID").asText());
        return out;
    }

    /** Every page of a list, following X-Next-Token with {@code limit=1}. */
    private static List<String> walk(String query) {
        List<String> out = new ArrayList<>();
        String token = null;
        for (int page = 0; page < 10; page++) {
            RawClient.Response r = c.call("GET", "/v2/sandboxes?limit=1&" + query
                    + (token == null ? "" : "&nextToken=" + URLEncoder.encode(token, StandardCharsets.UTF_8)), null);
            List<String> ids = ids(r);
            assertTrue(ids.size() <= 1, r::body);
            out.addAll(ids);
            token = r.headers().firstValue("X-Next-Token").orElse(null);
            if (token == null) return out;
            assertEquals(1, ids.size(), "a next token after a full page only");
        }
        throw new AssertionError("more than 10 pages for " + query);
    }

    @Test
    void listOrdersByStartTimeFiltersAndPagesOverRunningAndPaused() throws Exception {
        String group = "cp-" + UUID.randomUUID().toString().substring(0, 8);
        RawClient.Box first = create(group);
        Thread.sleep(20);
        RawClient.Box second = create(group);
        Thread.sleep(20);
        RawClient.Box third = create(group);
        try {
            assertEquals(200, c.call("POST", "/sandboxes/" + second.id() + "/pause", Map.of()).status());
            String f = filter(group);
            // Newest first by default, across pages; asc is the reverse; both states by default.
            assertEquals(List.of(third.id(), second.id(), first.id()), walk(f));
            assertEquals(List.of(third.id(), second.id(), first.id()), walk(f + "&order=desc"));
            assertEquals(List.of(first.id(), second.id(), third.id()), walk(f + "&order=asc"));
            assertEquals(List.of(third.id(), first.id()), walk(f + "&state=running"));
            assertEquals(List.of(second.id()), walk(f + "&state=paused"));
            assertEquals(List.of(first.id(), second.id(), third.id()), walk(f + "&state=running,paused&order=asc"));
            RawClient.Response paused = c.call("GET", "/v2/sandboxes?state=paused&" + f, null);
            assertEquals("paused", paused.json().path(0).path("state").asText(), paused::body);
            // The v1 path answers the same.
            assertEquals(List.of(third.id(), second.id(), first.id()), ids(c.call("GET", "/sandboxes?" + f, null)));

            // startedAfter: inclusive, at millisecond precision.
            Instant secondStarted = Instant.parse(c.call("GET", "/sandboxes/" + second.id(), null).json().get("startedAt").asText());
            String after = "&startedAfter=" + URLEncoder.encode(secondStarted.toString(), StandardCharsets.UTF_8);
            assertEquals(List.of(third.id(), second.id()), walk(f + after));
            String later = "&startedAfter=" + URLEncoder.encode(secondStarted.plusMillis(1).toString(), StandardCharsets.UTF_8);
            assertEquals(List.of(third.id()), walk(f + later));
            String offset = "&startedAfter=" + URLEncoder.encode("2000-01-01T01:00:00+01:00", StandardCharsets.UTF_8);
            assertEquals(3, walk(f + offset).size(), "an RFC 3339 offset is understood");

            // template: the id the sandbox reports, or its alias; an unknown one matches nothing.
            String template = c.call("GET", "/sandboxes/" + first.id(), null).json().get("templateID").asText();
            assertEquals(3, walk(f + "&template=" + URLEncoder.encode(template, StandardCharsets.UTF_8)).size());
            assertEquals(List.of(), walk(f + "&template=unknown-template"));

            // Bad values: 400 with a message that names the parameter.
            for (String[] bad : new String[][] {{"order=up", "order"}, {"startedAfter=yesterday", "startedAfter"},
                    {"nextToken=garbage", "nextToken"}, {"state=gone", "state"}, {"limit=0", "limit"}}) {
                RawClient.Response r = c.call("GET", "/v2/sandboxes?" + bad[0], null);
                assertError(r, 400);
                assertTrue(r.json().path("message").asText().contains(bad[1]), r::body);
            }
        } finally {
            for (RawClient.Box b : List.of(first, second, third)) c.kill(b);
        }
    }

    @Test
    void connectExtendsButNeverShortensARunningSandboxsTimeout() {
        RawClient.Box b = c.create(Map.of("templateID", "base", "timeout", 300));
        try {
            Instant end0 = endAt(b);
            for (String path : List.of("/sandboxes/", "/v2/sandboxes/")) {
                RawClient.Response r = c.call("POST", path + b.id() + "/connect", Map.of("timeout", 10));
                assertEquals(200, r.status(), r::body);
                assertEquals(end0, endAt(b), path + "connect with a shorter timeout kept the deadline");
            }
            assertEquals(200, c.call("POST", "/v2/sandboxes/" + b.id() + "/connect", Map.of("timeout", 600)).status());
            long left = Duration.between(Instant.now(), endAt(b)).toSeconds();
            assertTrue(left >= 595 && left <= 601, "a longer timeout extends it to now + 600 s, got now + " + left);
            // setTimeout may still shorten (E2B's setTimeout sets, connect only extends).
            assertEquals(204, c.call("POST", "/sandboxes/" + b.id() + "/timeout", Map.of("timeout", 60)).status());
            assertTrue(Duration.between(Instant.now(), endAt(b)).toSeconds() <= 61);
        } finally {
            c.kill(b);
        }
    }

    /** E2B's API takes a timeout of 0 or less as "now" (the Python SDK's tests force a timeout with setTimeout(0)). */
    @Test
    void setTimeoutOfZeroOrLessEndsARunningSandboxNow() throws InterruptedException {
        for (int timeout : new int[] {0, -5}) {
            RawClient.Box b = c.create(Map.of("templateID", "base", "timeout", 300));
            try {
                RawClient.Response r = c.call("POST", "/sandboxes/" + b.id() + "/timeout", Map.of("timeout", timeout));
                assertEquals(204, r.status(), r::body);
                int status = 200;
                for (int i = 0; i < 50 && status == 200; i++) {
                    Thread.sleep(100);
                    status = c.call("GET", "/sandboxes/" + b.id(), null).status();
                }
                assertEquals(404, status, "timeout " + timeout + ": the sandbox should have ended within 5 s");
            } finally {
                c.call("DELETE", "/sandboxes/" + b.id(), null);
            }
        }
    }

    private static Instant endAt(RawClient.Box b) {
        return Instant.parse(c.call("GET", "/sandboxes/" + b.id(), null).json().get("endAt").asText());
    }

    @Test
    void metricsAreReadFromTheSandboxsCgroupAndDiskWithinTheAskedRange() throws Exception {
        RawClient.Box b = c.create(Map.of("templateID", "base", "timeout", 120, "limits", Map.of("memoryMB", 256, "cpus", 1, "diskMB", 200)));
        try {
            Instant start = Instant.now();
            // Busy CPU, 64 MiB held in memory and 50 MB on disk while the samples are taken.
            c.run(b, "head -c 50000000 /dev/urandom > /home/user/blob");
            c.run(b, "nohup python3 -c \"b = bytearray(64 << 20)\nimport time\nt = time.time()\nwhile time.time() - t < 12: pass\" > /dev/null 2>&1 &");
            Thread.sleep(8000);
            RawClient.Response r = c.call("GET", "/sandboxes/" + b.id() + "/metrics", null);
            assertEquals(200, r.status(), r::body);
            JsonNode all = r.json();
            assertTrue(all.size() >= 1, r::body);
            JsonNode last = all.get(all.size() - 1);
            assertEquals(1, last.path("cpuCount").asInt(), last::toString);
            assertTrue(last.path("memTotal").asLong() >= 256L << 20, last::toString);
            assertTrue(last.path("memUsed").asLong() >= 64L << 20 && last.path("memUsed").asLong() <= last.path("memTotal").asLong(),
                    last::toString);
            assertTrue(last.path("memCache").asLong() <= last.path("memUsed").asLong(), last::toString);
            assertEquals(200L << 20, last.path("diskTotal").asLong(), last::toString);
            assertTrue(last.path("diskUsed").asLong() >= 50_000_000L, last::toString);
            double maxCpu = 0;
            for (JsonNode m : all) {
                maxCpu = Math.max(maxCpu, m.path("cpuUsedPct").asDouble());
                assertEquals(Instant.parse(m.path("timestamp").asText()).getEpochSecond(), m.path("timestampUnix").asLong());
            }
            assertTrue(maxCpu > 50, "a busy loop on one core shows: " + all);

            // A range: unix seconds; before the sandbox existed there is nothing.
            long s = start.getEpochSecond();
            JsonNode ranged = c.call("GET", "/sandboxes/" + b.id() + "/metrics?start=" + s + "&end=" + Instant.now().getEpochSecond(), null).json();
            assertFalse(ranged.isEmpty());
            for (JsonNode m : ranged) assertTrue(m.path("timestampUnix").asLong() >= s, m::toString);
            assertEquals(0, c.call("GET", "/sandboxes/" + b.id() + "/metrics?start=" + (s - 3600) + "&end=" + (s - 1800), null).json().size());
            assertError(c.call("GET", "/sandboxes/" + b.id() + "/metrics?start=soon", null), 400);
            assertError(c.call("GET", "/sandboxes/" + b.id() + "/metrics?start=" + s + "&end=" + (s - 10), null), 400);

            // A paused sandbox keeps its history; an ended or unknown one is not found.
            assertEquals(200, c.call("POST", "/sandboxes/" + b.id() + "/pause", Map.of()).status());
            assertEquals(200, c.call("GET", "/sandboxes/" + b.id() + "/metrics", null).status());
        } finally {
            c.kill(b);
        }
        assertError(c.call("GET", "/sandboxes/" + b.id() + "/metrics", null), 404);
        assertError(c.call("GET", "/sandboxes/nosuchsandbox0000000/metrics", null), 404);
    }
}
