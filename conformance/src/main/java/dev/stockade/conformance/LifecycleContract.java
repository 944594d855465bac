package dev.stockade.conformance;

import static dev.stockade.conformance.ApiAssertions.assertError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.net.URLEncoder;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The sandbox lifecycle over the raw E2B control-plane wire: create, get, list with paging and
 * metadata filters, timeouts, connect, kill, expiry, persistence of files for a sandbox's life, and
 * concurrent creates. Against a real server, real sandboxes of the runtime under test and the real agent.
 */
public abstract class LifecycleContract extends RuntimeContract {

    @BeforeAll
    void up() {
        startServer();
    }

    Map<String, Object> body(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    /** The metadata list filter encoded exactly as the e2b 2.51.0 JS SDK encodes it (three times). */
    String sdkMetadataQuery(Map<String, String> filter) {
        List<String> pairs = new ArrayList<>();
        filter.forEach((k, v) -> pairs.add(URLEncoder.encode(encodeUriComponent(k), StandardCharsets.UTF_8) + "="
                + URLEncoder.encode(encodeUriComponent(v), StandardCharsets.UTF_8)));
        return "metadata=" + encodeUriComponent(String.join("&", pairs));
    }

    String encodeUriComponent(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20").replace("%21", "!").replace("%27", "'")
                .replace("%28", "(").replace("%29", ")").replace("%7E", "~");
    }

    Set<String> ids(RawClient.Response list) {
        assertEquals(200, list.status(), list::body);
        assertTrue(list.json().isArray(), list::body);
        Set<String> out = new HashSet<>();
        for (JsonNode n : list.json()) out.add(n.get("sandboxID").asText());
        return out;
    }

    @Test
    void createReturnsIdentityAndGetDescribesTheRunningSandbox() {
        Instant before = Instant.now().minusSeconds(2);
        RawClient.Response r = c.call("POST", "/v2/sandboxes", body("templateID", "base", "timeout", 60,
                "metadata", Map.of("purpose", "lifecycle", "owner", "it"),
                "limits", Map.of("memoryMB", 256, "cpus", 2)));
        assertEquals(201, r.status(), r::body);
        String id = r.json().path("sandboxID").asText("");
        try {
            assertFalse(id.isBlank(), r::body);
            assertTrue(r.json().path("envdAccessToken").isTextual() && r.json().get("envdAccessToken").asText().length() >= 16,
                    r::body);
            assertTrue(r.json().path("envdVersion").asText("").matches("\\d+\\.\\d+\\.\\d+"), r::body);
            assertEquals("base", r.json().path("templateID").asText(), r::body);

            RawClient.Response g = c.call("GET", "/sandboxes/" + id, null);
            assertEquals(200, g.status(), g::body);
            JsonNode d = g.json();
            assertEquals(id, d.path("sandboxID").asText());
            assertEquals("running", d.path("state").asText());
            assertEquals("base", d.path("templateID").asText());
            assertEquals(r.json().get("envdVersion").asText(), d.path("envdVersion").asText());
            Instant started = Instant.parse(d.path("startedAt").asText());
            Instant end = Instant.parse(d.path("endAt").asText());
            assertTrue(!started.isBefore(before) && !started.isAfter(Instant.now().plusSeconds(1)), "startedAt " + started);
            long lifetime = Duration.between(started, end).toSeconds();
            assertTrue(lifetime >= 59 && lifetime <= 61, "endAt - startedAt = " + lifetime + " s, asked 60");
            assertEquals(Map.of("purpose", "lifecycle", "owner", "it"),
                    RawClient.JSON.convertValue(d.get("metadata"), Map.class));
            assertTrue(d.path("cpuCount").isIntegralNumber(), g::body);
            assertEquals(2, d.get("cpuCount").asInt());
            assertTrue(d.path("memoryMB").isIntegralNumber(), g::body);
            assertEquals(256, d.get("memoryMB").asInt());
            assertTrue(d.path("diskSizeMB").isIntegralNumber(), g::body);

            // The v1 create path the older SDKs use works too, with the defaults.
            RawClient.Box v1 = c.create(body("templateID", "code-interpreter-v1"));
            try {
                JsonNode dv1 = c.call("GET", "/sandboxes/" + v1.id(), null).json();
                assertEquals("running", dv1.path("state").asText());
                assertEquals(512, dv1.path("memoryMB").asInt());
                assertEquals(Map.of(), RawClient.JSON.convertValue(dv1.get("metadata"), Map.class));
                long dflt = Duration.between(Instant.parse(dv1.get("startedAt").asText()),
                        Instant.parse(dv1.get("endAt").asText())).toSeconds();
                assertTrue(dflt >= 299 && dflt <= 301, "default lifetime " + dflt);
            } finally {
                c.kill(v1);
            }
        } finally {
            c.call("DELETE", "/sandboxes/" + id, null);
        }
    }

    @Test
    void listPagesWithLimitAndNextTokenAndFiltersByMetadata() {
        String group = "g-" + UUID.randomUUID().toString().substring(0, 8);
        List<RawClient.Box> boxes = new ArrayList<>();
        RawClient.Box other = null;
        try {
            for (int i = 0; i < 3; i++) {
                boxes.add(c.create(body("templateID", "base", "timeout", 120,
                        "metadata", Map.of("group", group, "n", Integer.toString(i), "odd", "a b&c=d%e"))));
            }
            other = c.create(body("templateID", "base", "timeout", 120, "metadata", Map.of("group", "other")));
            Set<String> mine = new HashSet<>();
            boxes.forEach(b -> mine.add(b.id()));

            // Without a filter every running sandbox is listed, ours among them.
            Set<String> all = ids(c.call("GET", "/v2/sandboxes", null));
            assertTrue(all.containsAll(mine) && all.contains(other.id()), "list " + all);

            // Paging over the filtered set: 2 + 1, the token only while another page exists.
            String filter = sdkMetadataQuery(Map.of("group", group));
            RawClient.Response p1 = c.call("GET", "/v2/sandboxes?limit=2&" + filter, null);
            Set<String> first = ids(p1);
            assertEquals(2, first.size(), p1::body);
            String token = p1.headers().firstValue("X-Next-Token").orElse("");
            assertFalse(token.isEmpty(), "X-Next-Token on a page with more after it");
            RawClient.Response p2 = c.call("GET", "/v2/sandboxes?limit=2&" + filter + "&nextToken="
                    + URLEncoder.encode(token, StandardCharsets.UTF_8), null);
            Set<String> second = ids(p2);
            assertEquals(1, second.size(), p2::body);
            assertTrue(p2.headers().firstValue("X-Next-Token").orElse("").isEmpty(), "no X-Next-Token on the last page");
            Set<String> union = new HashSet<>(first);
            union.addAll(second);
            assertEquals(mine, union, "the two pages together are exactly the three sandboxes, without repeats");

            // Every listed item carries the fields the SDK reads.
            for (JsonNode n : p1.json()) {
                assertEquals("running", n.path("state").asText());
                assertEquals(group, n.path("metadata").path("group").asText());
                Instant.parse(n.path("startedAt").asText());
                Instant.parse(n.path("endAt").asText());
                assertTrue(n.path("cpuCount").isIntegralNumber() && n.path("memoryMB").isIntegralNumber(), n.toString());
                assertTrue(n.path("envdVersion").asText("").matches("\\d+\\.\\d+\\.\\d+"), n.toString());
            }

            // Metadata filters: AND of pairs, values with reserved characters survive the SDK's encoding.
            assertEquals(Set.of(boxes.get(1).id()),
                    ids(c.call("GET", "/v2/sandboxes?" + sdkMetadataQuery(Map.of("group", group, "n", "1")), null)));
            assertEquals(mine, ids(c.call("GET", "/v2/sandboxes?" + sdkMetadataQuery(Map.of("odd", "a b&c=d%e")), null)));
            assertEquals(Set.of(other.id()), ids(c.call("GET", "/v2/sandboxes?" + sdkMetadataQuery(Map.of("group", "other")), null)));
            assertEquals(Set.of(), ids(c.call("GET", "/v2/sandboxes?" + sdkMetadataQuery(Map.of("group", "nobody")), null)));

            // A killed sandbox is no longer listed.
            c.kill(boxes.get(0));
            Set<String> after = ids(c.call("GET", "/v2/sandboxes?" + filter, null));
            assertEquals(Set.of(boxes.get(1).id(), boxes.get(2).id()), after);
        } finally {
            boxes.forEach(c::kill);
            if (other != null) c.kill(other);
        }
    }

    @Test
    void setTimeoutMovesEndAtAndConnectExtendsAndAnswersLikeCreate() {
        RawClient.Response cr = c.call("POST", "/v2/sandboxes", body("templateID", "base", "timeout", 30));
        assertEquals(201, cr.status(), cr::body);
        RawClient.Box b = new RawClient.Box(cr.json().get("sandboxID").asText(), cr.json().get("envdAccessToken").asText());
        try {
            Instant end0 = Instant.parse(c.call("GET", "/sandboxes/" + b.id(), null).json().get("endAt").asText());

            RawClient.Response t = c.call("POST", "/sandboxes/" + b.id() + "/timeout", body("timeout", 600));
            assertEquals(204, t.status(), t::body);
            Instant end1 = Instant.parse(c.call("GET", "/sandboxes/" + b.id(), null).json().get("endAt").asText());
            long moved = Duration.between(end0, end1).toSeconds();
            assertTrue(moved >= 565 && moved <= 575, "endAt moved by " + moved + " s (30 s → 600 s from now)");
            long fromNow = Duration.between(Instant.now(), end1).toSeconds();
            assertTrue(fromNow >= 595 && fromNow <= 601, "endAt is now + 600 s, got now + " + fromNow);

            // E2B semantics: setTimeout sets endAt = now + timeout, so it can also shorten.
            assertEquals(204, c.call("POST", "/sandboxes/" + b.id() + "/timeout", body("timeout", 100)).status());
            Instant end2 = Instant.parse(c.call("GET", "/sandboxes/" + b.id(), null).json().get("endAt").asText());
            long left = Duration.between(Instant.now(), end2).toSeconds();
            assertTrue(left >= 95 && left <= 101, "endAt after shortening: now + " + left);

            // Connect (v2, as the SDK calls it): same identity and token, lifetime extended.
            RawClient.Response cn = c.call("POST", "/v2/sandboxes/" + b.id() + "/connect", body("timeout", 500));
            assertTrue(cn.status() == 200 || cn.status() == 201, cn::body);
            assertEquals(b.id(), cn.json().path("sandboxID").asText());
            assertEquals(b.token(), cn.json().path("envdAccessToken").asText());
            assertEquals(cr.json().get("envdVersion").asText(), cn.json().path("envdVersion").asText());
            Instant end3 = Instant.parse(c.call("GET", "/sandboxes/" + b.id(), null).json().get("endAt").asText());
            long left3 = Duration.between(Instant.now(), end3).toSeconds();
            assertTrue(left3 >= 495 && left3 <= 501, "endAt after connect(500): now + " + left3);

            // Connect without a timeout keeps the lifetime and still answers.
            RawClient.Response cn2 = c.call("POST", "/v2/sandboxes/" + b.id() + "/connect", body());
            assertTrue(cn2.status() == 200 || cn2.status() == 201, cn2::body);
            assertEquals(b.token(), cn2.json().path("envdAccessToken").asText());

            // The sandbox is still fully usable.
            assertEquals("ok\n", c.run(b, "echo ok").stdout());

            // Unknown ids: E2B's not-found body on timeout and connect.
            assertError(c.call("POST", "/sandboxes/nosuchsandbox0000000/timeout", body("timeout", 10)), 404);
            assertError(c.call("POST", "/v2/sandboxes/nosuchsandbox0000000/connect", body("timeout", 10)), 404);
        } finally {
            c.kill(b);
        }
    }

    /** E2B's metrics: samples read on the host from the sandbox's cgroup and disk quota, whatever the runtime. */
    @Test
    void metricsAreSampledFromTheSandboxsCgroupAndDisk() throws InterruptedException {
        RawClient.Box b = c.create(body("templateID", "base", "timeout", 60, "limits", Map.of("memoryMB", 256, "diskMB", 100)));
        try {
            c.run(b, "head -c 20000000 /dev/zero > /home/user/blob");
            JsonNode samples = c.call("GET", "/sandboxes/" + b.id() + "/metrics", null).json();
            for (int i = 0; i < 40 && samples.isEmpty(); i++) {
                Thread.sleep(250);
                samples = c.call("GET", "/sandboxes/" + b.id() + "/metrics", null).json();
            }
            assertFalse(samples.isEmpty(), "a sample within 10 s of the start");
            Thread.sleep(6000);
            samples = c.call("GET", "/sandboxes/" + b.id() + "/metrics", null).json();
            JsonNode m = samples.get(samples.size() - 1);
            assertTrue(m.path("memUsed").asLong() > 0 && m.path("memUsed").asLong() <= m.path("memTotal").asLong(), m::toString);
            assertTrue(m.path("memTotal").asLong() >= 256L << 20, m::toString);
            assertEquals(100L << 20, m.path("diskTotal").asLong(), m::toString);
            assertTrue(m.path("diskUsed").asLong() >= 20_000_000L, m::toString);
            assertTrue(m.path("cpuUsedPct").asDouble() >= 0 && m.path("cpuCount").asInt() >= 1, m::toString);
        } finally {
            c.kill(b);
        }
    }

    @Test
    void killAnswers204ThenNotFoundEverywhere() {
        RawClient.Box b = c.create();
        boolean killed = false;
        try {
            assertEquals("1\n", c.run(b, "echo 1").stdout());
            RawClient.Response del = c.call("DELETE", "/sandboxes/" + b.id(), null);
            assertEquals(204, del.status(), del::body);
            killed = true;
            assertError(c.call("GET", "/sandboxes/" + b.id(), null), 404);
            assertError(c.call("DELETE", "/sandboxes/" + b.id(), null), 404);
            assertError(c.call("POST", "/sandboxes/" + b.id() + "/timeout", body("timeout", 30)), 404);
            assertError(c.call("POST", "/v2/sandboxes/" + b.id() + "/connect", body()), 404);
            assertFalse(ids(c.call("GET", "/v2/sandboxes", null)).contains(b.id()));
            assertSandboxRoutesGone(b);
        } finally {
            if (!killed) c.kill(b);
        }
    }

    /**
     * In-sandbox calls for a sandbox that ended, with its once-valid token: "not found", never 401.
     * docs/e2b-wire.md §8 fixes the shape: E2B's edge proxy answer, HTTP 502 {"code":502,...}, which
     * the SDK maps to SandboxNotFoundError / isRunning() == false.
     */
    void assertSandboxRoutesGone(RawClient.Box b) {
        assertError(c.rpc(b, "filesystem.Filesystem/Stat", body("path", "/home/user")), 502);
        assertError(c.rpc(b, "process.Process/List", body()), 502);
        RawClient.Streamed s = c.streamLive(b, "process.Process/Start", RawClient.bash("echo hi", Map.of()), null);
        assertNotEquals(200, s.status(), "Start on an ended sandbox must not start anything");
        assertEquals(502, s.status());
        assertEquals(502, s.errorBody().path("code").asInt(), String.valueOf(s.errorBody()));
        HttpResponse<byte[]> dl = c.download(b, "/home/user/x");
        assertEquals(502, dl.statusCode());
        assertError(c.upload(b, "/home/user/x", new byte[] {1}), 502);
        // The SDK's isRunning() sends the token it holds: an ended sandbox's token answers 502 (gone).
        RawClient.Response health = c.call("GET", "/health", null, Map.of("E2b-Sandbox-Id", b.id(), "E2b-Sandbox-Port", "49983",
                "X-Access-Token", b.token()));
        assertError(health, 502);
    }

    @Test
    void aSandboxExpiresAtItsTimeout() throws InterruptedException {
        RawClient.Response cr = c.call("POST", "/v2/sandboxes", body("templateID", "base", "timeout", 2));
        assertEquals(201, cr.status(), cr::body);
        RawClient.Box b = new RawClient.Box(cr.json().get("sandboxID").asText(), cr.json().get("envdAccessToken").asText());
        long t0 = System.nanoTime();
        try {
            assertEquals("running", c.call("GET", "/sandboxes/" + b.id(), null).json().path("state").asText());
            RawClient.Response alive = c.call("GET", "/health", null, Map.of("E2b-Sandbox-Id", b.id(), "E2b-Sandbox-Port", "49983",
                    "X-Access-Token", b.token()));
            assertEquals(204, alive.status());
            long remaining = 4000 - TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            if (remaining > 0) Thread.sleep(remaining);
            assertError(c.call("GET", "/sandboxes/" + b.id(), null), 404);
            assertFalse(ids(c.call("GET", "/v2/sandboxes", null)).contains(b.id()));
            assertSandboxRoutesGone(b);
            assertError(c.call("DELETE", "/sandboxes/" + b.id(), null), 404);
        } finally {
            c.kill(b);
        }
    }

    @Test
    void filesPersistAcrossCommandsAndTheFilesApiForTheSandboxLife() throws InterruptedException {
        RawClient.Box b = c.create();
        try {
            RawClient.Run w = c.run(b, "echo from-command > /home/user/note.txt && mkdir -p /tmp/d/e && printf 'deep' > /tmp/d/e/f"
                    + " && pip_dir=$HOME/.local/lib && mkdir -p $pip_dir && echo lib > $pip_dir/marker");
            assertEquals(0, w.exitCode(), w.stderr());
            // The next command sees what the previous one wrote, in home, /tmp and dot-directories.
            assertEquals("from-command\ndeep lib\n",
                    c.run(b, "cat note.txt; printf '%s ' $(cat /tmp/d/e/f); cat ~/.local/lib/marker").stdout());
            // ...and so does /files.
            HttpResponse<byte[]> dl = c.download(b, "/home/user/note.txt");
            assertEquals(200, dl.statusCode());
            assertEquals("from-command\n", new String(dl.body(), StandardCharsets.UTF_8));
            // The other way: /files writes, commands read.
            assertEquals(200, c.upload(b, "/tmp/d/uploaded.txt", "from-api".getBytes()).status());
            assertEquals("from-api", c.run(b, "cat /tmp/d/uploaded.txt").stdout());
            // A command can delete what the API wrote, and the API sees it gone.
            assertEquals(0, c.run(b, "rm /tmp/d/uploaded.txt").exitCode());
            assertEquals(404, c.download(b, "/tmp/d/uploaded.txt").statusCode());
            // Still there a while later, after other work in between.
            c.run(b, "for i in 1 2 3; do python3 -c 'print(1)' > /dev/null; done");
            Thread.sleep(1500);
            assertEquals("from-command\n", c.run(b, "cat /home/user/note.txt").stdout());
            assertEquals("deep", new String(c.download(b, "/tmp/d/e/f").body(), StandardCharsets.UTF_8));
        } finally {
            c.kill(b);
        }
        // A new sandbox starts clean: nothing of the previous one leaks into it.
        RawClient.Box fresh = c.create();
        try {
            RawClient.Run r = c.run(fresh, "test -e /home/user/note.txt || test -e /tmp/d && echo leaked || echo clean");
            assertEquals("clean\n", r.stdout());
        } finally {
            c.kill(fresh);
        }
    }

    @Test
    void concurrentCreatesAllSucceedAndAreDistinct() throws Exception {
        int n = 8;
        ExecutorService pool = Executors.newFixedThreadPool(n);
        CountDownLatch go = new CountDownLatch(1);
        List<Future<RawClient.Response>> futures = new ArrayList<>();
        List<RawClient.Response> created = new ArrayList<>();
        try {
            for (int i = 0; i < n; i++) {
                int k = i;
                futures.add(pool.submit(() -> {
                    go.await();
                    return c.call("POST", "/v2/sandboxes", body("templateID", "base", "timeout", 120,
                            "metadata", Map.of("k", Integer.toString(k))));
                }));
            }
            go.countDown();
            for (Future<RawClient.Response> f : futures) created.add(f.get(120, TimeUnit.SECONDS));
            Set<String> ids = new HashSet<>(), tokens = new HashSet<>();
            for (RawClient.Response r : created) {
                assertEquals(201, r.status(), r::body);
                ids.add(r.json().get("sandboxID").asText());
                tokens.add(r.json().get("envdAccessToken").asText());
            }
            assertEquals(n, ids.size(), "distinct sandbox ids");
            assertEquals(n, tokens.size(), "distinct access tokens");
            assertTrue(ids(c.call("GET", "/v2/sandboxes", null)).containsAll(ids));
            // Each one is a separate, working sandbox: a file written in one is absent in the others.
            List<Future<String>> checks = new ArrayList<>();
            for (RawClient.Response r : created) {
                RawClient.Box b = new RawClient.Box(r.json().get("sandboxID").asText(), r.json().get("envdAccessToken").asText());
                checks.add(pool.submit(() -> {
                    RawClient.Run run = c.run(b, "ls /tmp/mark-* 2>/dev/null | wc -l; echo " + b.id() + " > /tmp/mark-" + b.id()
                            + "; cat /tmp/mark-*");
                    return run.stdout();
                }));
            }
            for (int i = 0; i < n; i++) {
                String id = created.get(i).json().get("sandboxID").asText();
                assertEquals("0\n" + id + "\n", checks.get(i).get(60, TimeUnit.SECONDS));
            }
        } finally {
            go.countDown();
            for (Future<RawClient.Response> f : futures) {
                try {
                    RawClient.Response r = f.get(120, TimeUnit.SECONDS);
                    if (r.status() == 201) c.call("DELETE", "/sandboxes/" + r.json().get("sandboxID").asText(), null);
                } catch (Exception ignored) {
                    // reported above
                }
            }
            pool.shutdownNow();
        }
    }
}
