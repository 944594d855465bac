package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.conformance.RawClient;
import dev.stockade.conformance.TestServer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Another tenant's sandbox is indistinguishable from a missing one in timing too: the same check
 * answers both before any handler or agent call. Requests alternate between the two cases so that
 * machine noise hits both alike; the medians must agree within a fraction of a millisecond, far
 * below what any look at the sandbox itself (an agent round trip: milliseconds) would add.
 */
class TenantTimingIT {
    static TestServer ts;
    static RawClient alpha;
    static RawClient beta;

    @BeforeAll
    static void up() {
        ts = new TestServer();
        alpha = new RawClient(ts.server.url(), key("alpha"));
        beta = new RawClient(ts.server.url(), key("beta"));
    }

    private static String key(String tenant) {
        assertEquals(201, ts.client.call("POST", "/admin/tenants", Map.of("name", tenant)).status());
        RawClient.Response k = ts.client.call("POST", "/admin/keys", Map.of("tenant", tenant));
        assertEquals(201, k.status(), k.body());
        return k.json().get("key").asText();
    }

    @AfterAll
    static void down() {
        ts.close();
    }

    @Test
    void anotherTenantsSandboxAnswersAsFastAsAMissingOne() {
        RawClient.Box box = alpha.create();
        try {
            String missing = "zz" + box.id().substring(2);
            // Warm up both paths (JIT, connection).
            for (int i = 0; i < 100; i++) {
                beta.call("GET", "/sandboxes/" + box.id(), null);
                beta.call("GET", "/sandboxes/" + missing, null);
            }
            int n = 400;
            List<Long> other = new ArrayList<>();
            List<Long> none = new ArrayList<>();
            for (int i = 0; i < n; i++) {
                boolean otherFirst = i % 2 == 0;
                for (int j = 0; j < 2; j++) {
                    boolean asOther = (j == 0) == otherFirst;
                    String id = asOther ? box.id() : missing;
                    long t = System.nanoTime();
                    RawClient.Response r = beta.call("GET", "/sandboxes/" + id, null);
                    long took = System.nanoTime() - t;
                    assertEquals(404, r.status());
                    assertEquals("{\"code\":404,\"message\":\"sandbox " + id + " not found\"}", r.body());
                    (asOther ? other : none).add(took);
                }
            }
            double a = median(other) / 1e6;
            double b = median(none) / 1e6;
            System.out.printf("another tenant's sandbox: median %.3f ms; a missing one: median %.3f ms%n", a, b);
            assertTrue(Math.abs(a - b) < 0.25, "medians differ: " + a + " ms vs " + b + " ms");
            assertEquals(200, alpha.call("GET", "/sandboxes/" + box.id(), null).status(), "alpha still has it");
        } finally {
            alpha.kill(box);
        }
    }

    private static double median(List<Long> xs) {
        long[] a = xs.stream().mapToLong(Long::longValue).toArray();
        Arrays.sort(a);
        return a[a.length / 2];
    }
}
