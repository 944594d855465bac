package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.conformance.ApiAssertions;
import dev.stockade.conformance.RawClient;
import dev.stockade.conformance.TestServer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Tenants' quotas (issue 7) against a real server: a storm of concurrent creates cannot overshoot
 * the sandboxes quota; the rate quota answers 429 with a Retry-After that says when to come back;
 * per-sandbox maxima refuse (400) rather than lower; total memory is counted; quota changes through
 * the admin API hold on the next create; one tenant's full quota does not stop another tenant.
 * Every refusal names the quota it hit.
 */
class QuotasIT {
    static TestServer ts;
    static RawClient admin;

    @BeforeAll
    static void up() {
        ts = new TestServer();
        admin = ts.client;
    }

    @AfterAll
    static void down() {
        ts.close();
    }

    static RawClient tenant(String name, Map<String, Object> quota) {
        TenantsIT.createTenant(admin, name, quota);
        return new RawClient(ts.server.url(), TenantsIT.createKey(admin, name, false).secret());
    }

    static RawClient.Response create(RawClient as, Map<String, Object> limits) {
        Map<String, Object> body = new HashMap<>(Map.of("templateID", "base", "timeout", 120));
        if (limits != null) body.put("limits", limits);
        return as.call("POST", "/sandboxes", body);
    }

    static String created(RawClient.Response r) {
        assertEquals(201, r.status(), r::body);
        return r.json().path("sandboxID").asText();
    }

    static void kill(RawClient as, String id) {
        RawClient.Response r = as.call("DELETE", "/sandboxes/" + id, null);
        assertEquals(204, r.status(), r::body);
    }

    /** A 429 with a Retry-After in [min, max] seconds and a message naming {@code quota}. */
    static long assertExhausted(RawClient.Response r, String quota, long min, long max) {
        ApiAssertions.assertError(r, 429);
        String retry = r.headers().firstValue("Retry-After").orElse(null);
        assertNotNull(retry, () -> "429 without Retry-After: " + r.headers().map());
        long seconds = Long.parseLong(retry);
        assertTrue(seconds >= min && seconds <= max, () -> "Retry-After " + seconds + " not in [" + min + ", " + max + "]");
        String msg = r.json().path("message").asText();
        assertTrue(msg.contains("quota") && msg.contains(quota), () -> "the message does not name quota " + quota + ": " + msg);
        return seconds;
    }

    static JsonNode usage(String tenant) {
        RawClient.Response r = admin.call("GET", "/admin/tenants/" + tenant, null);
        assertEquals(200, r.status(), r::body);
        return r.json().path("usage");
    }

    @Test
    void aStormOfConcurrentCreatesCannotPassTheSandboxesQuota() throws Exception {
        RawClient storm = tenant("storm", Map.of("sandboxes", 2));
        ExecutorService threads = Executors.newFixedThreadPool(10);
        List<String> ids = new ArrayList<>();
        try {
            CountDownLatch ready = new CountDownLatch(10);
            CountDownLatch go = new CountDownLatch(1);
            List<Future<RawClient.Response>> futures = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                futures.add(threads.submit(() -> {
                    ready.countDown();
                    go.await();
                    return create(storm, null);
                }));
            }
            assertTrue(ready.await(10, TimeUnit.SECONDS));
            go.countDown();
            List<RawClient.Response> refused = new ArrayList<>();
            for (Future<RawClient.Response> f : futures) {
                RawClient.Response r = f.get(60, TimeUnit.SECONDS);
                if (r.status() == 201) ids.add(r.json().path("sandboxID").asText());
                else refused.add(r);
            }
            assertEquals(2, ids.size(), () -> "successes: " + ids + "; refusals: " + refused.stream().map(RawClient.Response::body).toList());
            assertEquals(8, refused.size());
            for (RawClient.Response r : refused) assertExhausted(r, "sandboxes", 1, 60);
            assertEquals(2, usage("storm").path("sandboxes").asInt());
            assertEquals(2, TenantsIT.ids(storm.call("GET", "/v2/sandboxes", null)).size());
            // Another tenant is not affected by storm's full quota.
            String other = created(create(admin, null));
            kill(admin, other);
            // After a kill there is room for exactly one more.
            kill(storm, ids.removeFirst());
            ids.add(created(create(storm, null)));
            assertExhausted(create(storm, null), "sandboxes", 1, 60);
        } finally {
            threads.shutdownNow();
            for (String id : ids) kill(storm, id);
        }
        assertEquals(0, usage("storm").path("sandboxes").asInt());
    }

    @Test
    void theCreateRateQuotaAnswers429WithRetryAfter() {
        RawClient rate = tenant("rate", Map.of("createsPerMinute", 3));
        for (int i = 0; i < 3; i++) kill(rate, created(create(rate, null)));
        long retry = assertExhausted(create(rate, null), "createsPerMinute", 1, 60);
        assertTrue(retry >= 50, "the first create was a moment ago: retry in about a minute, not " + retry);
        assertExhausted(create(rate, null), "createsPerMinute", 1, 60);
        assertEquals(3, usage("rate").path("createsLastMinute").asInt(), "refused creates do not count as creates");
        // Raising the quota holds on the next create.
        RawClient.Response put = admin.call("PUT", "/admin/tenants/rate/quota", Map.of("createsPerMinute", 4));
        assertEquals(200, put.status(), put::body);
        assertEquals(4, put.json().path("quota").path("createsPerMinute").asInt(), put::body);
        kill(rate, created(create(rate, null)));
        assertExhausted(create(rate, null), "createsPerMinute", 1, 60);
    }

    @Test
    void perSandboxMaximaAreRefusedNeverLowered() {
        RawClient small = tenant("small", Map.of("sandboxMemoryMB", 256, "sandboxCpus", 0.5));
        RawClient.Response mem = create(small, Map.of("memoryMB", 512, "cpus", 0.5));
        ApiAssertions.assertError(mem, 400);
        assertTrue(mem.json().path("message").asText().contains("sandboxMemoryMB"), mem::body);
        RawClient.Response cpu = create(small, Map.of("memoryMB", 256, "cpus", 1.0));
        ApiAssertions.assertError(cpu, 400);
        assertTrue(cpu.json().path("message").asText().contains("sandboxCpus"), cpu::body);
        assertEquals(0, usage("small").path("sandboxes").asInt(), "a refused create holds nothing");
        // At the maxima: created with exactly what was asked.
        String id = created(create(small, Map.of("memoryMB", 256, "cpus", 0.5)));
        try {
            JsonNode detail = small.call("GET", "/sandboxes/" + id, null).json();
            assertEquals(256, detail.path("limits").path("memoryMB").asInt(), detail::toString);
            assertEquals(0.5, detail.path("limits").path("cpus").asDouble(), detail::toString);
            // Lowering the maximum holds on the next create; the running sandbox is left alone.
            assertEquals(200, admin.call("PUT", "/admin/tenants/small/quota", Map.of("sandboxMemoryMB", 128)).status());
            RawClient.Response lower = create(small, Map.of("memoryMB", 256, "cpus", 0.5));
            ApiAssertions.assertError(lower, 400);
            assertTrue(lower.json().path("message").asText().contains("sandboxMemoryMB 128"), lower::body);
            assertEquals(200, small.call("GET", "/sandboxes/" + id, null).status());
        } finally {
            kill(small, id);
        }
    }

    @Test
    void totalMemoryIsCounted() {
        RawClient mem = tenant("mem", Map.of("memoryMB", 600));
        List<String> ids = new ArrayList<>();
        try {
            ids.add(created(create(mem, Map.of("memoryMB", 256))));
            ids.add(created(create(mem, Map.of("memoryMB", 256))));
            assertExhausted(create(mem, Map.of("memoryMB", 256)), "memoryMB", 1, 60);
            assertEquals(512, usage("mem").path("memoryMB").asInt());
            // What still fits is admitted.
            ids.add(created(create(mem, Map.of("memoryMB", 64))));
        } finally {
            for (String id : ids) kill(mem, id);
        }
        assertEquals(0, usage("mem").path("memoryMB").asInt());
    }

    @Test
    void quotaChangesHoldOnTheNextCreate() {
        RawClient live = tenant("live", Map.of("sandboxes", 1));
        List<String> ids = new ArrayList<>();
        try {
            ids.add(created(create(live, null)));
            assertExhausted(create(live, null), "sandboxes", 1, 60);
            RawClient.Response up = admin.call("PUT", "/admin/tenants/live/quota", Map.of("sandboxes", 2));
            assertEquals(200, up.status(), up::body);
            assertEquals(2, up.json().path("quota").path("sandboxes").asInt());
            ids.add(created(create(live, null)));
            assertExhausted(create(live, null), "sandboxes", 1, 60);
            // Lowered below what it holds: nothing is killed, but nothing new starts.
            assertEquals(200, admin.call("PUT", "/admin/tenants/live/quota", Map.of("sandboxes", 1)).status());
            assertEquals(2, TenantsIT.ids(live.call("GET", "/v2/sandboxes", null)).size());
            kill(live, ids.removeLast());
            assertExhausted(create(live, null), "sandboxes", 1, 60);
            // null lifts the limit.
            RawClient.Response lifted = admin.call("PUT", "/admin/tenants/live/quota", java.util.Collections.singletonMap("sandboxes", null));
            assertEquals(200, lifted.status(), lifted::body);
            assertTrue(lifted.json().path("quota").path("sandboxes").isNull(), lifted::body);
            ids.add(created(create(live, null)));
            ids.add(created(create(live, null)));
            // Bad quota updates are refused and change nothing.
            ApiAssertions.assertError(admin.call("PUT", "/admin/tenants/live/quota", Map.of("sandboxes", -1)), 400);
            ApiAssertions.assertError(admin.call("PUT", "/admin/tenants/live/quota", Map.of("nonsense", 1)), 400);
            ApiAssertions.assertError(admin.call("PUT", "/admin/tenants/nobody/quota", Map.of("sandboxes", 1)), 404);
            assertTrue(admin.call("GET", "/admin/tenants/live", null).json().path("quota").path("sandboxes").isNull());
        } finally {
            for (String id : ids) kill(live, id);
        }
    }
}
