package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.conformance.ApiAssertions;
import dev.stockade.conformance.RawClient;
import dev.stockade.conformance.TestServer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The audit log (issue 7) against a real server: alpha creates a sandbox, runs a command holding a
 * secret-looking string, writes a file, runs a code cell and kills the sandbox; an outsider and
 * beta try their luck on the way. The admin API then shows who did what, in order, through which
 * credential and with which outcome — and nowhere the command, the file's content, the code, an
 * API key or a sandbox token. Only admin keys read it, and the API has no way to change it.
 */
class AuditIT {
    static final String SECRET = "sk-live-SECRET123";
    static final String COMMAND = "echo " + SECRET;
    static final String CONTENT = "CONTENT-XYZ";
    static final String CODE = "code_marker = 'CODE-TEXT-42'\nprint(len(code_marker))";
    static final String FORGED = "e2b_" + "f00d".repeat(10);

    static TestServer ts;
    static RawClient admin;
    static TenantsIT.Key alphaKey;
    static TenantsIT.Key betaKey;
    static RawClient alpha;
    static RawClient beta;
    static RawClient.Box box;
    static Instant before;

    @BeforeAll
    static void up() {
        ts = new TestServer();
        admin = ts.client;
        TenantsIT.createTenant(admin, "alpha", null);
        TenantsIT.createTenant(admin, "beta", null);
        alphaKey = TenantsIT.createKey(admin, "alpha", false);
        betaKey = TenantsIT.createKey(admin, "beta", false);
        alpha = new RawClient(ts.server.url(), alphaKey.secret());
        beta = new RawClient(ts.server.url(), betaKey.secret());
        before = Instant.now();
        // Alpha's session: create (key), command, file write, code cell (the sandbox's token), kill (key).
        box = alpha.create(Map.of("templateID", "base", "timeout", 120));
        RawClient.Streamed run = alpha.startLive(box, RawClient.bash(COMMAND, Map.of()), null, null);
        assertEquals(SECRET + "\n", run.out());
        assertEquals(200, alpha.upload(box, "/home/user/notes.txt", CONTENT.getBytes(StandardCharsets.UTF_8)).status());
        RawClient.Cell cell = alpha.execute(box, CODE);
        assertEquals(200, cell.status(), () -> String.valueOf(cell.errorBody()));
        assertEquals("12\n", cell.stdout());
        // An outsider without credentials, one with a forged key, and beta on alpha's sandbox.
        RawClient.Response anon = admin.call("POST", "/filesystem.Filesystem/Stat", Map.of("path", "/home/user/notes.txt"),
                Map.of("E2b-Sandbox-Id", box.id(), "E2b-Sandbox-Port", "49983", "Content-Type", "application/json"));
        assertEquals(401, anon.status(), anon::body);
        ApiAssertions.assertError(admin.call("GET", "/v2/sandboxes", null, Map.of("X-API-Key", FORGED)), 401);
        RawClient.Response cross = admin.call("POST", "/filesystem.Filesystem/Stat", Map.of("path", "/home/user/notes.txt"),
                TenantsIT.sandboxHeaders(box.id(), "49983", betaKey.secret(), null, "application/json"));
        ApiAssertions.assertError(cross, 502);
        RawClient.Response kill = alpha.call("DELETE", "/sandboxes/" + box.id(), null);
        assertEquals(204, kill.status(), kill::body);
    }

    @AfterAll
    static void down() {
        ts.close();
    }

    /** Entries for a query, waiting up to 5 s for at least {@code atLeast} (an entry is written as its request ends). */
    static List<JsonNode> entries(String query, int atLeast) {
        List<JsonNode> out = new ArrayList<>();
        for (int i = 0; i < 50; i++) {
            RawClient.Response r = admin.call("GET", "/admin/audit?" + query, null);
            assertEquals(200, r.status(), r::body);
            out.clear();
            r.json().path("entries").forEach(out::add);
            if (out.size() >= atLeast) return out;
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
        return out;
    }

    static String digest(String text) throws Exception {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        byte[] d = MessageDigest.getInstance("SHA-256").digest(b);
        return "sha256:" + HexFormat.of().formatHex(d, 0, 8) + " " + b.length + " bytes";
    }

    static void assertEntry(JsonNode e, String action, String tenant, String keyId, String via, String sandbox, int status) {
        String s = e.toString();
        assertEquals(action, e.path("action").asText(), s);
        assertEquals(tenant, e.path("tenant").asText(null), s);
        assertEquals(keyId, e.path("keyId").asText(null), s);
        assertEquals(via, e.path("via").asText(), s);
        assertEquals(sandbox, e.path("sandbox").asText(null), s);
        assertEquals(status, e.path("status").asInt(), s);
        assertEquals(status < 400 ? "ok" : e.path("outcome").asText(), e.path("outcome").asText(), s);
        assertEquals("127.0.0.1", e.path("remote").asText(), s);
        Instant t = Instant.parse(e.path("time").asText());
        assertFalse(t.isBefore(before.minusSeconds(1)) || t.isAfter(Instant.now().plusSeconds(1)), s);
        assertTrue(e.path("durationMs").asLong() >= 0, s);
    }

    @Test
    void alphasActionsAreListedInOrderWithWhoHowAndOutcome() throws Exception {
        List<JsonNode> log = entries("tenant=alpha", 5);
        assertEquals(List.of("sandbox.create", "process.Start", "file.write", "code.execute", "sandbox.kill"),
                log.stream().map(e -> e.path("action").asText()).toList(), log::toString);
        String id = box.id();
        assertEntry(log.get(0), "sandbox.create", "alpha", alphaKey.id(), "api-key", id, 201);
        assertEntry(log.get(1), "process.Start", "alpha", null, "sandbox-token", id, 200);
        assertEquals("command " + digest(String.join("\0", "/bin/bash", "-l", "-c", COMMAND)), log.get(1).path("detail").asText());
        assertEntry(log.get(2), "file.write", "alpha", null, "sandbox-token", id, 200);
        assertEquals("/home/user/notes.txt", log.get(2).path("target").asText());
        assertEntry(log.get(3), "code.execute", "alpha", null, "sandbox-token", id, 200);
        assertEquals("default context", log.get(3).path("target").asText());
        assertEquals("code " + digest(CODE), log.get(3).path("detail").asText());
        assertEntry(log.get(4), "sandbox.kill", "alpha", alphaKey.id(), "api-key", id, 204);
        for (int i = 1; i < log.size(); i++) {
            assertTrue(log.get(i).path("seq").asLong() > log.get(i - 1).path("seq").asLong(), log::toString);
            assertFalse(Instant.parse(log.get(i).path("time").asText()).isBefore(Instant.parse(log.get(i - 1).path("time").asText())));
        }
        // Filters: one action; one sandbox, across tenants and credentials.
        List<JsonNode> creates = entries("tenant=alpha&action=sandbox.create", 1);
        assertEquals(1, creates.size());
        assertEquals(log.get(0), creates.getFirst());
        List<JsonNode> onBox = entries("sandbox=" + id, 7);
        assertTrue(onBox.stream().allMatch(e -> e.path("sandbox").asText().equals(id)), onBox::toString);
    }

    @Test
    void refusedAttemptsAreRecordedToo() {
        List<JsonNode> onBox = entries("sandbox=" + box.id(), 7);
        // The outsider: 401, no tenant, no key, via "none".
        JsonNode anon = onBox.stream().filter(e -> e.path("status").asInt() == 401).findFirst()
                .orElseThrow(() -> new AssertionError("no 401 entry for the sandbox: " + onBox));
        assertEntry(anon, "filesystem.Stat", null, null, "none", box.id(), 401);
        assertEquals("unauthenticated", anon.path("outcome").asText(), anon::toString);
        // Beta on alpha's sandbox: recorded under beta, with the not-found answer it got.
        JsonNode cross = onBox.stream().filter(e -> "beta".equals(e.path("tenant").asText(null))).findFirst()
                .orElseThrow(() -> new AssertionError("no entry for beta's attempt: " + onBox));
        assertEntry(cross, "filesystem.Stat", "beta", betaKey.id(), "api-key", box.id(), 502);
        // The forged key on the control plane: a GET, yet recorded because it was refused.
        List<JsonNode> all = entries("limit=1000", 1);
        assertTrue(all.stream().anyMatch(e -> e.path("status").asInt() == 401 && e.path("via").asText().equals("none")
                        && e.path("action").asText().equals("sandbox.list") && e.path("tenant").isNull() && e.path("keyId").isNull()),
                all::toString);
        // Admin actions: who created which tenant and key.
        assertTrue(all.stream().anyMatch(e -> e.path("action").asText().equals("admin.tenants.create")
                && e.path("target").asText().equals("alpha") && e.path("tenant").asText().equals("default")
                && e.path("via").asText().equals("api-key") && e.path("status").asInt() == 201), all::toString);
        assertTrue(all.stream().anyMatch(e -> e.path("action").asText().equals("admin.keys.create")
                && e.path("target").asText().equals(alphaKey.id()) && e.path("status").asInt() == 201), all::toString);
    }

    @Test
    void theLogHoldsNoSecretsContentsCodeKeysOrTokens() {
        entries("tenant=alpha", 5);
        String whole = admin.call("GET", "/admin/audit?limit=1000", null).body();
        for (String needle : List.of(SECRET, "SECRET123", CONTENT, "CODE-TEXT-42", "code_marker", TestServer.KEY, alphaKey.secret(),
                betaKey.secret(), FORGED, box.token(), "e2b_")) {
            assertFalse(whole.contains(needle), () -> "the audit log contains " + needle + ": " + whole);
        }
    }

    @Test
    void onlyAdminsReadTheLogAndNobodyChangesIt() {
        for (RawClient who : List.of(alpha, beta)) {
            for (String q : List.of("", "?tenant=alpha", "?tenant=beta", "?sandbox=" + box.id(), "?limit=1000")) {
                ApiAssertions.assertError(who.call("GET", "/admin/audit" + q, null), 403);
            }
        }
        ApiAssertions.assertError(admin.call("GET", "/admin/audit", null, Map.of()), 401);
        List<JsonNode> first = entries("limit=1000", 1);
        // No route deletes or rewrites entries.
        for (String method : List.of("DELETE", "PUT", "POST", "PATCH")) {
            RawClient.Response r = admin.call(method, "/admin/audit", method.equals("DELETE") ? null : Map.of("entries", List.of()));
            assertTrue(r.status() >= 400 && r.status() < 500, () -> method + " /admin/audit → " + r.status() + " " + r.body());
        }
        ApiAssertions.assertError(admin.call("DELETE", "/admin/audit/1", null), 404);
        List<JsonNode> after = entries("limit=1000", first.size());
        assertEquals(first, after.subList(0, first.size()), "earlier entries changed");
        // Paging with limit and after walks the same entries.
        List<JsonNode> paged = new ArrayList<>();
        String next = "0";
        for (int i = 0; i < 100 && next != null; i++) {
            RawClient.Response page = admin.call("GET", "/admin/audit?limit=3&after=" + next, null);
            assertEquals(200, page.status(), page::body);
            page.json().path("entries").forEach(paged::add);
            next = page.json().path("next").isNull() ? null : page.json().path("next").asText();
        }
        assertEquals(after, paged.subList(0, after.size()));
        ApiAssertions.assertError(admin.call("GET", "/admin/audit?limit=0", null), 400);
        ApiAssertions.assertError(admin.call("GET", "/admin/audit?limit=abc", null), 400);
        ApiAssertions.assertError(admin.call("GET", "/admin/audit?after=-1", null), 400);
    }
}
