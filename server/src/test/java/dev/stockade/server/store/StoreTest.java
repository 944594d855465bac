package dev.stockade.server.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.sql.PreparedStatement;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The store's group commit (issue 16): batches, per-work failures, durability per batch, the read connection. */
class StoreTest {
    @TempDir
    Path dir;
    Store store;
    ExecutorService pool;

    @BeforeEach
    void open() {
        store = Store.open(dir);
        pool = Executors.newVirtualThreadPerTaskExecutor();
    }

    @AfterEach
    void close() {
        pool.shutdownNow();
        store.close();
    }

    private Void insertTenant(java.sql.Connection c, String name) throws java.sql.SQLException {
        try (PreparedStatement s = c.prepareStatement("INSERT INTO tenants(name, created_ms, quota) VALUES (?, 0, '{}')")) {
            s.setString(1, name);
            s.executeUpdate();
        }
        return null;
    }

    private List<String> tenants() {
        return store.read(c -> {
            List<String> out = new ArrayList<>();
            try (Statement s = c.createStatement(); var rs = s.executeQuery("SELECT name FROM tenants ORDER BY name")) {
                while (rs.next()) out.add(rs.getString(1));
            }
            return out;
        });
    }

    @Test
    void worksQueuedBehindABatchCommitTogetherAndAFailingOneRollsBackAlone() throws Exception {
        store.critical(c -> insertTenant(c, "taken"));
        long before = store.batches();
        CountDownLatch inside = new CountDownLatch(1);
        CountDownLatch release = new CountDownLatch(1);
        // The first work holds its batch (and the write lock) open until the others have queued.
        Future<?> holder = pool.submit(() -> store.critical(c -> {
            insertTenant(c, "first");
            inside.countDown();
            try {
                release.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return null;
        }));
        assertTrue(inside.await(10, TimeUnit.SECONDS));
        Future<?> good = pool.submit(() -> store.critical(c -> insertTenant(c, "good")));
        Future<?> duplicate = pool.submit(() -> store.critical(c -> insertTenant(c, "taken")));
        Future<?> thrown = pool.submit(() -> store.log(c -> {
            insertTenant(c, "half-done");
            throw new IllegalStateException("the work's own failure");
        }));
        Future<?> good2 = pool.submit(() -> store.log(c -> insertTenant(c, "good2")));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (store.queued() < 4 && System.nanoTime() < deadline) Thread.sleep(1); // all four queued behind the held batch
        assertEquals(4, store.queued());
        release.countDown();
        holder.get(10, TimeUnit.SECONDS);
        good.get(10, TimeUnit.SECONDS);
        good2.get(10, TimeUnit.SECONDS);
        var dup = assertThrows(java.util.concurrent.ExecutionException.class, () -> duplicate.get(10, TimeUnit.SECONDS));
        assertInstanceOf(StoreException.class, dup.getCause(), "a constraint failure is the store's error, for that caller only");
        var own = assertThrows(java.util.concurrent.ExecutionException.class, () -> thrown.get(10, TimeUnit.SECONDS));
        assertInstanceOf(IllegalStateException.class, own.getCause(), "a work's own exception reaches its caller as it is");
        assertEquals(List.of("first", "good", "good2", "taken"), tenants(), "the failed works' writes are rolled back, no one else's");
        assertEquals(2, store.batches() - before, "the held batch, then one batch (one commit) for the four queued behind it");
    }

    @Test
    void aBatchWithCriticalWorkFlushesAndOneOfAuditEntriesOnlyDoesNot() {
        String pragma = "PRAGMA synchronous";
        Store.Work<Integer> sync = c -> {
            try (Statement s = c.createStatement(); var rs = s.executeQuery(pragma)) {
                return rs.next() ? rs.getInt(1) : -1;
            }
        };
        assertEquals(1, store.log(sync), "NORMAL for the audit log");
        assertEquals(2, store.critical(sync), "FULL for tenants, keys and acknowledged sandboxes");
        assertEquals(2, store.transaction(sync));
        assertEquals(1, store.log(sync));
    }

    @Test
    void manyWritersAllLandAndEachGetsItsOwnResult() throws Exception {
        List<Future<String>> all = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            String name = "t" + i;
            boolean durable = i % 3 == 0;
            all.add(pool.submit(() -> {
                Store.Work<String> w = c -> {
                    insertTenant(c, name);
                    return name;
                };
                return durable ? store.critical(w) : store.log(w);
            }));
        }
        for (int i = 0; i < all.size(); i++) assertEquals("t" + i, all.get(i).get(30, TimeUnit.SECONDS));
        assertEquals(200, tenants().size());
    }

    @Test
    void theReadConnectionRefusesWrites() {
        assertThrows(StoreException.class, () -> store.read(c -> insertTenant(c, "sneaky")));
        assertEquals(List.of(), tenants());
    }

    @Test
    void aWriteFromInsideAWorkJoinsItsBatch() {
        store.critical(c -> {
            insertTenant(c, "outer");
            return store.log(inner -> insertTenant(inner, "inner"));
        });
        assertEquals(List.of("inner", "outer"), tenants());
    }
}
