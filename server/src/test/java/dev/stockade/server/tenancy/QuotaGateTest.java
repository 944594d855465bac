package dev.stockade.server.tenancy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.runtime.Limits;
import dev.stockade.server.core.Admission;
import dev.stockade.server.error.StockadeError;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class QuotaGateTest {
    private static final Limits SMALL = new Limits(256, 0.5, 128, 512, 10, 60);
    private final Map<String, Quota> quotas = new ConcurrentHashMap<>();
    private final AtomicLong now = new AtomicLong(1_000_000);
    private final QuotaGate gate = new QuotaGate(quotas::get, now::get);

    @Test
    void aStormOfConcurrentCreatesNeverOvershoots() throws InterruptedException {
        quotas.put("acme", new Quota(5, null, null, null, null, null));
        int threads = 64;
        CountDownLatch go = new CountDownLatch(1);
        AtomicInteger admitted = new AtomicInteger();
        List<StockadeError> refused = java.util.Collections.synchronizedList(new ArrayList<>());
        List<Thread> all = new ArrayList<>();
        for (int i = 0; i < threads; i++) {
            all.add(Thread.ofPlatform().start(() -> {
                try {
                    go.await();
                    gate.admit("acme", SMALL);
                    admitted.incrementAndGet();
                } catch (StockadeError e) {
                    refused.add(e);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }));
        }
        go.countDown();
        for (Thread t : all) t.join();
        assertEquals(5, admitted.get());
        assertEquals(threads - 5, refused.size());
        for (StockadeError e : refused) {
            assertEquals(StockadeError.Code.RESOURCE_EXHAUSTED, e.code());
            assertTrue(e.retryAfterSeconds() >= 1);
            assertTrue(e.getMessage().contains("quota (sandboxes 5)"), e.getMessage());
        }
        assertEquals(5, gate.held("acme").sandboxes());
    }

    @Test
    void leasesGiveBackWhatTheyHeldOnce() {
        quotas.put("acme", new Quota(1, 300L, 0.5, null, null, null));
        Admission.Lease lease = gate.admit("acme", SMALL);
        assertEquals(StockadeError.Code.RESOURCE_EXHAUSTED, assertThrows(StockadeError.class, () -> gate.admit("acme", SMALL)).code());
        lease.close();
        lease.close();
        assertEquals(new QuotaGate.Held(0, 0, 0, 1), gate.held("acme"));
        gate.admit("acme", SMALL);
        assertEquals(1, gate.held("acme").sandboxes());
    }

    @Test
    void memoryAndCpuTotalsAreQuotas() {
        quotas.put("acme", new Quota(null, 600L, 1.2, null, null, null));
        gate.admit("acme", SMALL);
        gate.admit("acme", SMALL);
        StockadeError memory = assertThrows(StockadeError.class, () -> gate.admit("acme", SMALL));
        assertTrue(memory.getMessage().contains("memoryMB 600"), memory.getMessage());
        quotas.put("acme", new Quota(null, null, 1.2, null, null, null));
        StockadeError cpus = assertThrows(StockadeError.class, () -> gate.admit("acme", SMALL));
        assertTrue(cpus.getMessage().contains("cpus 1.2"), cpus.getMessage());
        quotas.put("other", new Quota(null, 600L, 1.2, null, null, null));
        gate.admit("other", SMALL);
        assertEquals(1, gate.held("other").sandboxes(), "tenants are counted apart");
    }

    @Test
    void perSandboxMaximaAreRefusedNotLowered() {
        quotas.put("acme", new Quota(null, null, null, null, 128, 0.25));
        StockadeError memory = assertThrows(StockadeError.class, () -> gate.admit("acme", SMALL));
        assertEquals(StockadeError.Code.INVALID_ARGUMENT, memory.code());
        assertTrue(memory.getMessage().contains("sandboxMemoryMB 128"), memory.getMessage());
        quotas.put("acme", new Quota(null, null, null, null, 256, 0.25));
        StockadeError cpus = assertThrows(StockadeError.class, () -> gate.admit("acme", SMALL));
        assertEquals(StockadeError.Code.INVALID_ARGUMENT, cpus.code());
        assertEquals(0, gate.held("acme").sandboxes(), "a refused create holds nothing");
    }

    @Test
    void createsPerMinuteIsASlidingWindowWithAnHonestRetryAfter() {
        quotas.put("acme", new Quota(null, null, null, 3, null, null));
        for (int i = 0; i < 3; i++) {
            gate.admit("acme", SMALL).close();
            now.addAndGet(10_000);
        }
        StockadeError e = assertThrows(StockadeError.class, () -> gate.admit("acme", SMALL));
        assertEquals(StockadeError.Code.RESOURCE_EXHAUSTED, e.code());
        // The first create was 30 s ago: the window frees in 30 s.
        assertEquals(30, e.retryAfterSeconds());
        assertTrue(e.getMessage().contains("createsPerMinute 3"), e.getMessage());
        now.addAndGet(30_000);
        gate.admit("acme", SMALL);
    }
}
