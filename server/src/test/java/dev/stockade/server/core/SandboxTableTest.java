package dev.stockade.server.core;

import dev.stockade.server.error.StockadeError;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.runtime.Limits;
import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Ids, slots, tokens and what outlives a sandbox (tombstones, lost), without a runtime. */
class SandboxTableTest {
    private final SandboxTable table = new SandboxTable();

    private Sandbox sandbox(String tenant, Instant started) {
        int slot = table.claimSlot();
        var facts = new Sandbox.Facts(table.newId(), "base", "base", "runc", Map.of(), Map.of(), List.of(),
                new Limits(512, 1.0, 256, 1024, 16, 300), started, table.newToken(), slot * 65536L, false, 0, null, null);
        return new Sandbox(facts, new Sandbox.Owner(tenant, () -> {}), started.plusSeconds(60), null, 0, s -> Optional.empty(), OutputPace.UNPACED);
    }

    @Test
    void idsTokensAndSlotsAreNeverHandedOutTwice() {
        Set<String> ids = new HashSet<>();
        Set<Integer> slots = new HashSet<>();
        for (int i = 0; i < 500; i++) {
            String id = table.newId();
            assertTrue(id.matches("[a-z0-9]{20}"), id);
            assertTrue(ids.add(id));
            int slot = table.claimSlot();
            assertTrue(slot >= 32 && slot < 65000, "slot " + slot);
            assertTrue(slots.add(slot), "slot " + slot + " twice");
        }
        assertTrue(table.newToken().matches("[0-9a-f]{48}"));
        assertNotEquals(table.newToken(), table.newToken());
    }

    @Test
    void aTokenIsGrantedWhileRunningAndGoneAfterTheEnd() {
        Sandbox sb = sandbox("acme", Instant.now());
        sb.running(null);
        table.put(sb);
        assertSame(sb, ((SandboxManager.Access.Granted) table.access(sb.id(), sb.accessToken())).sandbox());
        assertInstanceOf(SandboxManager.Access.Denied.class, table.access(sb.id(), "wrong"));
        assertInstanceOf(SandboxManager.Access.Denied.class, table.access(sb.id(), null));
        sb.paused(Duration.ofSeconds(5));
        assertInstanceOf(SandboxManager.Access.Gone.class, table.access(sb.id(), sb.accessToken()));
        sb.ended("killed by a client");
        table.remove(sb);
        assertNull(table.find(sb.id()));
        assertInstanceOf(SandboxManager.Access.Gone.class, table.access(sb.id(), sb.accessToken()));
        assertInstanceOf(SandboxManager.Access.Denied.class, table.access(sb.id(), "wrong"));
        assertInstanceOf(SandboxManager.Access.Denied.class, table.access("unknown", sb.accessToken()));
    }

    @Test
    void aLostSandboxIsExplainedToItsOwnerOnly() {
        table.lost("sb1", "acme", "its container was gone");
        assertEquals("sandbox sb1 was lost: its container was gone", table.notFoundFor("acme", "sb1").getMessage());
        assertEquals("sandbox sb1 not found", table.notFoundFor("other", "sb1").getMessage());
        assertEquals(StockadeError.Code.NOT_FOUND, table.notFoundFor("acme", "sb1").code());
        assertEquals("sandbox null not found", table.notFoundFor("acme", null).getMessage());
    }

    @Test
    void theListHoldsLiveSandboxesOldestFirst() {
        Instant t = Instant.parse("2026-01-01T00:00:00Z");
        Sandbox later = sandbox("acme", t.plusSeconds(1));
        Sandbox first = sandbox("acme", t);
        Sandbox starting = sandbox("acme", t);
        later.running(null);
        first.running(null);
        first.paused(Duration.ofSeconds(5));
        table.put(later);
        table.put(first);
        table.put(starting);
        assertEquals(List.of(first, later), table.live());
        assertEquals(3, table.size());
    }
}
