package dev.stockade.server.core;

import dev.stockade.server.error.StockadeError;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The sandboxes this server serves and what outlives them: ids and tokens handed out, the user-namespace
 * slots in use, the tokens of ended sandboxes (tombstones: a call with one hears "not found", not
 * "unauthenticated") and the sandboxes of an earlier run that were lost, with why (their owner is told).
 * Thread-safe: request threads, the reaper and the pool's refill thread use it at once.
 */
final class SandboxTable {
    private static final int FIRST_SLOT = 32;
    private static final int LAST_SLOT = 65000;

    private final ConcurrentHashMap<String, Sandbox> sandboxes = new ConcurrentHashMap<>();
    private final Set<Integer> slots = ConcurrentHashMap.newKeySet();
    private final SecureRandom random = new SecureRandom();
    /** Sandboxes of an earlier run that could not be taken over, or vanished, and why (bounded, oldest dropped). */
    private final Map<String, Lost> lost = bounded();
    /** Ended sandboxes' tokens (bounded, oldest dropped). */
    private final Map<String, String> tombstones = bounded();

    private record Lost(String tenant, String why) {}

    private static <V> Map<String, V> bounded() {
        return new LinkedHashMap<>(16, 0.75f, false) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, V> eldest) {
                return size() > 10_000;
            }
        };
    }

    String newId() {
        String alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        StringBuilder b = new StringBuilder(20);
        for (int i = 0; i < 20; i++) b.append(alphabet.charAt(random.nextInt(alphabet.length())));
        return b.toString();
    }

    /** A new access token (E2B's envdAccessToken). */
    String newToken() {
        byte[] t = new byte[24];
        random.nextBytes(t);
        return HexFormat.of().formatHex(t);
    }

    /** A free user-namespace slot (host uids slot × 65536 onwards), now taken. */
    int claimSlot() {
        for (int i = 0; i < 1000; i++) {
            int slot = FIRST_SLOT + random.nextInt(LAST_SLOT - FIRST_SLOT);
            if (slots.add(slot)) return slot;
        }
        throw new StockadeError(StockadeError.Code.RESOURCE_EXHAUSTED, "no free user-namespace range for a new sandbox");
    }

    /** Keeps a slot an earlier server's sandbox holds (taken over, or left for a later server). */
    void reserveSlot(int slot) {
        slots.add(slot);
    }

    void releaseSlot(int slot) {
        slots.remove(slot);
    }

    void put(Sandbox sb) {
        sandboxes.put(sb.id(), sb);
    }

    /** Forgets an ended sandbox: its token becomes a tombstone, its slot free. */
    void remove(Sandbox sb) {
        tombstone(sb.id(), sb.accessToken());
        sandboxes.remove(sb.id());
        slots.remove(sb.facts().slot());
    }

    void tombstone(String id, String token) {
        synchronized (tombstones) {
            tombstones.put(id, token);
        }
    }

    /** Remembers why a sandbox of {@code tenant} is lost, for its owner's next look. */
    void lost(String id, String tenant, String why) {
        synchronized (lost) {
            lost.put(id, new Lost(tenant, why));
        }
    }

    /** The sandbox with this id whatever its state, or null. */
    Sandbox find(String id) {
        return id == null ? null : sandboxes.get(id);
    }

    Collection<Sandbox> all() {
        return sandboxes.values();
    }

    int size() {
        return sandboxes.size();
    }

    /** Running and paused sandboxes, oldest first (the order of lists and paging cursors). */
    List<Sandbox> live() {
        List<Sandbox> out = new ArrayList<>();
        for (Sandbox sb : sandboxes.values()) if (sb.isLive()) out.add(sb);
        out.sort(Comparator.comparing(Sandbox::startedAt).thenComparing(Sandbox::id));
        return out;
    }

    /** Checks an in-sandbox call's access token (constant-time). */
    SandboxManager.Access access(String id, String token) {
        if (token == null || id == null) return new SandboxManager.Access.Denied();
        byte[] given = token.getBytes(StandardCharsets.UTF_8);
        Sandbox sb = sandboxes.get(id);
        if (sb != null) {
            if (!MessageDigest.isEqual(given, sb.accessToken().getBytes(StandardCharsets.UTF_8))) {
                return new SandboxManager.Access.Denied();
            }
            return sb.isRunning() ? new SandboxManager.Access.Granted(sb) : new SandboxManager.Access.Gone();
        }
        String old;
        synchronized (tombstones) {
            old = tombstones.get(id);
        }
        if (old != null && MessageDigest.isEqual(given, old.getBytes(StandardCharsets.UTF_8))) {
            return new SandboxManager.Access.Gone();
        }
        return new SandboxManager.Access.Denied();
    }

    /** For its own sandbox that was lost, why; for everything else the one not-found answer. */
    StockadeError notFoundFor(String tenant, String id) {
        Lost l;
        synchronized (lost) {
            l = id == null ? null : lost.get(id);
        }
        if (l != null && l.tenant().equals(tenant)) {
            return StockadeError.notFound("sandbox " + id + " was lost: " + l.why());
        }
        return SandboxManager.notFound(id);
    }
}
