package dev.stockade.server.tenancy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.server.audit.AuditEntry;
import dev.stockade.server.audit.AuditLog;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.store.Store;
import dev.stockade.server.store.StoreException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Statement;
import java.time.Instant;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class TenancyTest {
    private Path dir;
    private Store store;
    private Tenancy tenancy;

    @BeforeEach
    void open() throws IOException {
        dir = Files.createTempDirectory("stockade-tenancy");
        store = Store.open(dir);
        tenancy = new Tenancy(store, new ObjectMapper());
    }

    @AfterEach
    void close() throws IOException {
        store.close();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }

    @Test
    void keysAreShownOnceAndStoredOnlyAsHashes() throws IOException {
        tenancy.createTenant(new TenantAdmin.TenantRequest("acme", null));
        Tenancy.NewKey k = tenancy.createKey(new TenantAdmin.KeyRequest("acme", false, "ci"));
        assertTrue(k.secret().matches("e2b_[0-9a-f]{40}"), k.secret());
        assertTrue(k.key().id().matches("key_[0-9a-f]{12}"), k.key().id());
        assertFalse(k.toString().contains(k.secret()));
        assertEquals(k.key(), tenancy.authenticate(k.secret()));
        assertEquals(k.key(), tenancy.authenticate("  " + k.secret() + "\n"), "surrounding blanks are ignored");
        store.close();
        byte[] everything = concat(dir);
        assertFalse(contains(everything, k.secret().getBytes(StandardCharsets.US_ASCII)), "the key itself is nowhere in the data directory");
        assertTrue(contains(everything, Tenancy.hash(k.secret()).getBytes(StandardCharsets.US_ASCII)), "its SHA-256 is");
        store = Store.open(dir);
        tenancy = new Tenancy(store, new ObjectMapper());
        assertEquals(k.key(), tenancy.authenticate(k.secret()), "keys survive a restart");
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve(Store.FILE))));
    }

    @Test
    void forgedAndRevokedKeysAreRefused() {
        tenancy.createTenant(new TenantAdmin.TenantRequest("acme", null));
        Tenancy.NewKey k = tenancy.createKey(new TenantAdmin.KeyRequest("acme", false, null));
        String s = k.secret();
        for (String forged : List.of("", " ", s.substring(0, s.length() - 1), s + "0", s.toUpperCase(),
                s.substring(0, s.length() - 1) + (s.endsWith("0") ? "1" : "0"), Tenancy.hash(s), "e2b_" + "0".repeat(40),
                "x".repeat(10_000), s + "\u00e9")) {
            assertNull(tenancy.authenticate(forged), forged.length() > 60 ? forged.substring(0, 60) : forged);
        }
        assertNull(tenancy.authenticate(null));
        ApiKey revoked = tenancy.revoke(k.key().id());
        assertNotNull(revoked.revoked());
        assertNull(tenancy.authenticate(s), "a revoked key fails at the next call");
        assertEquals(revoked.revoked(), tenancy.revoke(k.key().id()).revoked(), "revoking again keeps the first time");
        assertEquals(StockadeError.Code.NOT_FOUND, assertThrows(StockadeError.class, () -> tenancy.revoke("key_000000000000")).code());
        assertEquals(StockadeError.Code.NOT_FOUND, assertThrows(StockadeError.class, () -> tenancy.revoke("'; DROP TABLE api_keys; --")).code());
    }

    @Test
    void aRevocationByAnotherProcessHoldsAtOnce() {
        tenancy.createTenant(new TenantAdmin.TenantRequest("acme", null));
        Tenancy.NewKey k = tenancy.createKey(new TenantAdmin.KeyRequest("acme", false, null));
        // The CLI opens the same file while the server runs.
        try (Store other = Store.open(dir)) {
            new Tenancy(other, new ObjectMapper()).revoke(k.key().id());
        }
        assertNull(tenancy.authenticate(k.secret()));
    }

    @Test
    void quotaFieldsAreChecked() {
        ObjectMapper json = new ObjectMapper();
        assertThrows(StockadeError.class, () -> Quota.UNLIMITED.merge(json.createObjectNode().put("sandboxes", 0)));
        assertThrows(StockadeError.class, () -> Quota.UNLIMITED.merge(json.createObjectNode().put("sandboxes", 1.5)));
        assertThrows(StockadeError.class, () -> Quota.UNLIMITED.merge(json.createObjectNode().put("cpus", -1)));
        assertThrows(StockadeError.class, () -> Quota.UNLIMITED.merge(json.createObjectNode().put("memoryMB", "lots")));
        assertThrows(StockadeError.class, () -> Quota.UNLIMITED.merge(json.createObjectNode().put("unknown", 1)));
        assertThrows(StockadeError.class, () -> Quota.UNLIMITED.merge(json.createArrayNode()));
        Quota q = new Quota(3, 4096L, 2.5, 60, 1024, 2.0);
        assertEquals(q, Quota.UNLIMITED.merge(q.toJson(json)), "the JSON form round-trips");
    }

    @Test
    void theFirstStartMakesAnAdminKeyAndSaysWhere() throws IOException {
        Path file = dir.resolve("api-key");
        String first = tenancy.bootstrap(null, file);
        assertTrue(first.matches("e2b_[0-9a-f]{40}"));
        assertEquals(first, Files.readString(file).trim());
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(file)));
        ApiKey admin = tenancy.authenticate(first);
        assertTrue(admin.admin());
        assertEquals(Tenancy.DEFAULT_TENANT, admin.tenant());
        assertEquals(first, tenancy.bootstrap(null, file), "later starts keep it");
        assertEquals(1, tenancy.keys(null).size());

        tenancy.revoke(admin.id());
        String second = tenancy.bootstrap(null, file);
        assertFalse(second.equals(first), "a revoked admin key in the file is replaced");
        assertEquals(second, Files.readString(file).trim());
        assertNull(tenancy.authenticate(first));
    }

    @Test
    void aConfiguredKeyBecomesAnAdminKeyButARevokedOneStaysRevoked() throws IOException {
        Path file = dir.resolve("api-key");
        String configured = "e2b_" + "ab".repeat(20);
        assertEquals(configured, tenancy.bootstrap(configured, file));
        assertFalse(Files.exists(file), "a configured key is not written anywhere");
        ApiKey k = tenancy.authenticate(configured);
        assertTrue(k.admin());
        tenancy.revoke(k.id());
        tenancy.bootstrap(configured, file);
        assertNull(tenancy.authenticate(configured), "restarting with a revoked key does not revive it");
    }

    @Test
    void anEarlierVersionsKeyFileIsTakenOver() throws IOException {
        Path file = dir.resolve("api-key");
        String old = "e2b_" + "cd".repeat(20);
        Files.writeString(file, old + "\n");
        assertEquals(old, tenancy.bootstrap(null, file));
        assertTrue(tenancy.authenticate(old).admin());
    }

    /**
     * Admin writes (key creation, quota changes, revocation) while the audit log writes on its own
     * connection, back to back: none fails. A transaction that read first and wrote second used to
     * lose the race for the write lock with SQLITE_BUSY_SNAPSHOT (a 503) on a few of 60 (issue 15,
     * finding 5): revocation must never fail.
     */
    @Test
    void adminWritesNeverFailBesideAuditTraffic() throws Exception {
        tenancy.createTenant(new TenantAdmin.TenantRequest("acme", null));
        AuditLog log = new AuditLog(store);
        java.util.concurrent.atomic.AtomicBoolean done = new java.util.concurrent.atomic.AtomicBoolean();
        java.util.concurrent.atomic.AtomicInteger appended = new java.util.concurrent.atomic.AtomicInteger();
        List<Thread> auditors = new java.util.ArrayList<>();
        for (int t = 0; t < 3; t++) {
            auditors.add(Thread.ofVirtual().start(() -> {
                while (!done.get()) {
                    log.append(new AuditEntry(0, Instant.now(), "acme", "key_0123456789ab", "api-key", "127.0.0.1",
                            "sandbox.create", "sb", null, 201, "ok", null, 1));
                    appended.incrementAndGet();
                }
            }));
        }
        try {
            for (int i = 0; i < 60; i++) {
                Tenancy.NewKey k = tenancy.createKey(new TenantAdmin.KeyRequest("acme", false, "k" + i));
                tenancy.setQuota("acme", new Quota(i + 1, null, null, null, null, null));
                assertNotNull(tenancy.revoke(k.key().id()).revoked());
                assertNull(tenancy.authenticate(k.secret()));
            }
        } finally {
            done.set(true);
            for (Thread t : auditors) t.join();
        }
        assertTrue(appended.get() > 0, "the audit log wrote meanwhile");
        long rows = store.log(c -> {
            try (Statement s = c.createStatement(); var rs = s.executeQuery("SELECT count(*) FROM audit")) {
                return rs.next() ? rs.getLong(1) : -1L;
            }
        });
        assertEquals(appended.get(), rows, "no audit entry lost");
    }

    @Test
    void theAuditLogIsAppendOnly() {
        AuditLog log = new AuditLog(store);
        for (int i = 0; i < 3; i++) {
            log.append(new AuditEntry(0, Instant.ofEpochMilli(1000 + i), "acme", "key_0123456789ab", "api-key", "127.0.0.1",
                    "sandbox.create", "sb" + i, null, 201, "ok", null, 5));
        }
        List<AuditEntry> all = log.read(new AuditLog.Query("acme", null, null, 0, 10));
        assertEquals(3, all.size());
        assertEquals(List.of("sb0", "sb1", "sb2"), all.stream().map(AuditEntry::sandbox).toList());
        assertEquals(List.of("sb2"), log.read(new AuditLog.Query(null, null, null, all.get(1).seq(), 10)).stream()
                .map(AuditEntry::sandbox).toList());
        assertEquals(List.of(), log.read(new AuditLog.Query("other", null, null, 0, 10)));
        StoreException update = assertThrows(StoreException.class, () -> store.log(c -> {
            try (Statement s = c.createStatement()) {
                return s.executeUpdate("UPDATE audit SET outcome='changed'");
            }
        }));
        assertTrue(update.getMessage().contains("append-only"), update.getMessage());
        assertThrows(StoreException.class, () -> store.log(c -> {
            try (Statement s = c.createStatement()) {
                return s.executeUpdate("DELETE FROM audit");
            }
        }));
        assertEquals(3, log.read(new AuditLog.Query(null, null, null, 0, 10)).size());
    }

    private static byte[] concat(Path dir) throws IOException {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.filter(Files::isRegularFile).toList()) out.write(Files.readAllBytes(p));
        }
        return out.toByteArray();
    }

    private static boolean contains(byte[] hay, byte[] needle) {
        return HexFormat.of().formatHex(hay).contains(HexFormat.of().formatHex(needle));
    }
}
