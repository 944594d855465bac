package dev.stockade.server.tenancy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.store.Store;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The admin service's rules, on a real store: the admin API and the CLI both go through them. */
class TenantAdminTest {
    private Path dir;
    private Store store;
    private TenantAdmin admin;

    @BeforeEach
    void open() throws IOException {
        dir = Files.createTempDirectory("stockade-admin");
        store = Store.open(dir);
        admin = TenantAdmin.on(store);
    }

    @AfterEach
    void close() throws IOException {
        store.close();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }

    private static StockadeError.Code refusal(Runnable r) {
        return assertThrows(StockadeError.class, r::run).code();
    }

    @Test
    void tenantsAreValidatedAndUnique() {
        for (String bad : new String[] {"", "A", "-x", "a b", "a/b", "x".repeat(64), "é", "../etc"}) {
            assertEquals(StockadeError.Code.INVALID_ARGUMENT, refusal(() -> new TenantAdmin.TenantRequest(bad, null)), bad);
        }
        assertEquals("a tenant name is 1 to 63 characters of a-z, 0-9, _ and -, starting with a letter or digit; got none",
                assertThrows(StockadeError.class, () -> new TenantAdmin.TenantRequest(null, null)).getMessage());
        assertEquals(Quota.UNLIMITED, new TenantAdmin.TenantRequest("a", null).quota(), "no quota is no limit");
        admin.createTenant(new TenantAdmin.TenantRequest("a-1_b", new Quota(2, 1024L, 1.5, 10, 512, 1.0)));
        assertEquals(StockadeError.Code.CONFLICT,
                refusal(() -> admin.createTenant(new TenantAdmin.TenantRequest("a-1_b", Quota.UNLIMITED))));
        assertEquals(new Quota(2, 1024L, 1.5, 10, 512, 1.0), admin.tenant("a-1_b").quota());
        Tenant t = admin.setQuota("a-1_b", admin.tenant("a-1_b").quota().merge(new ObjectMapper().createObjectNode()
                .putNull("sandboxes").put("cpus", 4)));
        assertEquals(new Quota(null, 1024L, 4.0, 10, 512, 1.0), t.quota());
        assertEquals(t, admin.tenant("a-1_b"));
        assertEquals(StockadeError.Code.NOT_FOUND, refusal(() -> admin.setQuota("nope", Quota.UNLIMITED)));
        assertEquals(StockadeError.Code.NOT_FOUND, refusal(() -> admin.tenant("nope")));
    }

    @Test
    void keysAreCheckedBeforeAnythingIsWritten() {
        admin.createTenant(new TenantAdmin.TenantRequest("acme", null));
        assertEquals("tenant is required",
                assertThrows(StockadeError.class, () -> new TenantAdmin.KeyRequest(null, false, null)).getMessage());
        for (String label : new String[] {"bad\nlabel", "tab\there", "del\u007f", "x".repeat(TenantAdmin.MAX_LABEL + 1)}) {
            assertEquals(StockadeError.Code.INVALID_ARGUMENT, refusal(() -> new TenantAdmin.KeyRequest("acme", false, label)));
        }
        assertEquals(StockadeError.Code.NOT_FOUND, refusal(() -> admin.createKey(new TenantAdmin.KeyRequest("nope", false, null))));
        assertEquals(0, admin.keys(null).size(), "refused keys left nothing behind");

        Tenancy.NewKey k = admin.createKey(new TenantAdmin.KeyRequest("acme", true, "ci"));
        assertEquals("", admin.createKey(new TenantAdmin.KeyRequest("acme", false, null)).key().label(), "no label is an empty one");
        assertTrue(k.key().admin());
        assertEquals("ci", k.key().label());
        assertEquals(Map.of("acme", 2), admin.activeKeys());
        ApiKey revoked = admin.revoke(k.key().id());
        assertNotNull(revoked.revoked());
        assertEquals(revoked.revoked(), admin.revoke(k.key().id()).revoked(), "revoking again keeps the first time");
        assertEquals(Map.of("acme", 1), admin.activeKeys());
        for (String id : new String[] {"key_000000000000", "'; DROP TABLE api_keys; --", null, "KEY_" + "0".repeat(12)}) {
            assertEquals(StockadeError.Code.NOT_FOUND, refusal(() -> admin.revoke(id)), id);
        }
        assertEquals(2, admin.keys("acme").size());
        assertEquals(0, admin.keys("nope").size());
    }
}
