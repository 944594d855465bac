package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.conformance.ApiAssertions;
import dev.stockade.conformance.RawClient;
import dev.stockade.conformance.TestServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.Socket;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The tenant boundary (issue 7) against a real server and real runc sandboxes. Tenants "alpha" and
 * "beta" each get a key from the admin API; alpha holds a live sandbox with a file and a running
 * process. Beta tries every route on it — control plane, envd (Connect RPCs, streams, /files), code
 * interpreter — and must get exactly the answer a never-existing id gets, byte for byte once the id
 * is replaced; after each attempt alpha's sandbox is checked to be untouched (same detail, network
 * policy, files, processes, and nothing reached the running process). Then: listing and paging see
 * only one's own sandboxes; ids of deleted sandboxes stay dead for everyone; the sandbox access token
 * reaches its own sandbox and nothing else; revoked and forged keys get 401 at once; non-admin keys
 * get 403 on the admin API and /metrics.
 */
class TenantsIT {
    static final String FILE = "/home/user/alpha-only.txt";
    static final String FILE_CONTENT = "alpha's private data\n";

    static TestServer ts;
    static RawClient admin;
    static Key alphaKey;
    static Key betaKey;
    static RawClient alpha;
    static RawClient beta;
    /** Alpha's sandbox, the target of every attempt; beta's sandbox, whose token beta holds. */
    static RawClient.Box a;
    static RawClient.Box b;
    static final ExecutorService pool = Executors.newCachedThreadPool();
    /** A cat with stdin open in alpha's sandbox: beta must not be able to feed, signal or attach to it. */
    static Future<RawClient.Streamed> cat;
    static int catPid;
    static final StringBuffer catOut = new StringBuffer();
    static Snapshot baseline;

    /** An API key as the admin API returns it, once. */
    record Key(String id, String tenant, String secret) {}

    @BeforeAll
    static void up() throws Exception {
        ts = new TestServer();
        admin = ts.client;
        createTenant(admin, "alpha", null);
        createTenant(admin, "beta", null);
        alphaKey = createKey(admin, "alpha", false);
        betaKey = createKey(admin, "beta", false);
        alpha = new RawClient(ts.server.url(), alphaKey.secret());
        beta = new RawClient(ts.server.url(), betaKey.secret());
        a = alpha.create(Map.of("templateID", "base", "timeout", 600, "metadata", Map.of("owner", "alpha", "group", "shared")));
        b = beta.create(Map.of("templateID", "base", "timeout", 600, "metadata", Map.of("owner", "beta", "group", "shared")));
        assertEquals(200, alpha.upload(a, FILE, FILE_CONTENT.getBytes(StandardCharsets.UTF_8)).status());
        assertEquals(200, beta.upload(b, "/home/user/beta-only.txt", "beta's data".getBytes(StandardCharsets.UTF_8)).status());
        CompletableFuture<Integer> pid = new CompletableFuture<>();
        cat = pool.submit(() -> alpha.startLive(a, Map.of("process", Map.of("cmd", "/bin/cat"), "stdin", true), null, f -> {
            if ("start".equals(f.kind())) pid.complete(f.message().path("event").path("start").path("pid").asInt());
            JsonNode d = f.message().path("event").path("data");
            if (d.has("stdout")) catOut.append(new String(Base64.getDecoder().decode(d.get("stdout").asText()), StandardCharsets.UTF_8));
        }));
        catPid = pid.get(30, TimeUnit.SECONDS);
        // Alpha uses its code interpreter once, so that whatever that sets up is part of the baseline.
        assertEquals(200, alpha.codeCall(a, "GET", "/contexts", null).status());
        baseline = snapshot();
        assertTrue(baseline.pids().contains(catPid), baseline::toString);
        assertEquals(FILE_CONTENT, baseline.file());
    }

    @AfterAll
    static void down() {
        try {
            if (cat != null) {
                alpha.rpc(a, "process.Process/SendSignal", Map.of("process", Map.of("pid", catPid), "signal", "SIGNAL_SIGKILL"));
                try {
                    cat.get(30, TimeUnit.SECONDS);
                } catch (Exception e) {
                    cat.cancel(true);
                }
            }
            if (a != null) alpha.kill(a);
            if (b != null) beta.kill(b);
        } finally {
            pool.shutdownNow();
            ts.close();
        }
    }

    // ---- admin helpers (also used by QuotasIT and AuditIT) ----

    static JsonNode createTenant(RawClient admin, String name, Map<String, Object> quota) {
        Map<String, Object> body = new LinkedHashMap<>();
        body.put("name", name);
        if (quota != null) body.put("quota", quota);
        RawClient.Response r = admin.call("POST", "/admin/tenants", body);
        assertEquals(201, r.status(), r::body);
        assertEquals(name, r.json().path("name").asText());
        return r.json();
    }

    static Key createKey(RawClient admin, String tenant, boolean isAdmin) {
        RawClient.Response r = admin.call("POST", "/admin/keys", Map.of("tenant", tenant, "admin", isAdmin, "label", "it " + tenant));
        assertEquals(201, r.status(), r::body);
        String secret = r.json().path("key").asText();
        assertTrue(secret.matches("e2b_[0-9a-f]{40}"), secret);
        assertTrue(r.json().path("id").asText().matches("key_[0-9a-f]{12}"), r::body);
        return new Key(r.json().path("id").asText(), tenant, secret);
    }

    /** A sandbox id of the server's shape that was never issued. */
    static String ghostId() {
        String alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        SecureRandom rnd = new SecureRandom();
        StringBuilder s = new StringBuilder();
        for (int i = 0; i < 20; i++) s.append(alphabet.charAt(rnd.nextInt(alphabet.length())));
        return s.toString();
    }

    // ---- what alpha's sandbox looks like, seen by alpha ----

    /** Everything a successful cross-tenant attempt could have changed in alpha's sandbox. */
    record Snapshot(String detail, String network, Set<String> home, String file, Set<Integer> pids, String catOutput) {}

    static Snapshot snapshot() {
        RawClient.Response d = alpha.call("GET", "/sandboxes/" + a.id(), null);
        assertEquals(200, d.status(), d::body);
        assertEquals("running", d.json().path("state").asText(), d::body);
        RawClient.Response n = alpha.call("GET", "/sandboxes/" + a.id() + "/network", null);
        RawClient.Response ls = alpha.rpc(a, "filesystem.Filesystem/ListDir", Map.of("path", "/home/user", "depth", 1));
        assertEquals(200, ls.status(), ls::body);
        Set<String> home = new TreeSet<>();
        ls.json().path("entries").forEach(e -> home.add(e.path("name").asText()));
        var f = alpha.download(a, FILE);
        RawClient.Response ps = alpha.rpc(a, "process.Process/List", Map.of());
        assertEquals(200, ps.status(), ps::body);
        Set<Integer> pids = new TreeSet<>();
        ps.json().path("processes").forEach(p -> pids.add(p.path("pid").asInt()));
        String file = new String(f.body(), StandardCharsets.UTF_8);
        return new Snapshot(d.body(), n.status() + " " + n.body(), home, f.statusCode() == 200 ? file : f.statusCode() + " " + file,
                pids, catOut.toString());
    }

    static void assertUntouched(String after) {
        Snapshot now = snapshot();
        assertEquals(baseline, now, "alpha's sandbox changed after " + after);
        assertFalse(cat.isDone(), "alpha's cat ended after " + after);
    }

    // ---- answers, normalised so that two ids can be compared ----

    /** Status, content type and body of an answer with the sandbox id replaced by "ID". */
    record Answer(int status, String contentType, String body) {}

    static Answer answer(RawClient.Response r, String id) {
        return new Answer(r.status(), r.headers().firstValue("Content-Type").orElse(""), r.body().replace(id, "ID"));
    }

    static Answer answer(RawClient.Streamed s, String id) {
        StringBuilder body = new StringBuilder(String.valueOf(s.errorBody()));
        for (RawClient.Frame f : s.frames()) body.append('\n').append(f.flags()).append(' ').append(f.message());
        return new Answer(s.status(), s.contentType(), body.toString().replace(id, "ID"));
    }

    /** One request, parameterised by the sandbox id it targets. */
    record Attempt(String name, java.util.function.Function<String, Answer> send) {}

    static Attempt cp(RawClient as, String method, String pathTemplate, Object body) {
        return new Attempt(method + " " + pathTemplate + (body == null ? "" : " " + body),
                id -> answer(as.call(method, pathTemplate.replace("{id}", id), body), id));
    }

    /** Headers of an in-sandbox request made with an API key (and optionally a token) instead of the sandbox's token. */
    static Map<String, String> sandboxHeaders(String id, String port, String apiKey, String token, String contentType) {
        Map<String, String> h = new HashMap<>();
        h.put("E2b-Sandbox-Id", id);
        h.put("E2b-Sandbox-Port", port);
        if (apiKey != null) h.put("X-API-Key", apiKey);
        if (token != null) h.put("X-Access-Token", token);
        if (contentType != null) h.put("Content-Type", contentType);
        return h;
    }

    static Attempt envd(String name, String method, String path, Object body, String contentType, String apiKey, String token) {
        return new Attempt("envd " + name + " " + method + " " + path,
                id -> answer(admin.call(method, path, body, sandboxHeaders(id, "49983", apiKey, token, contentType)), id));
    }

    static Attempt rpc(String rpc, Object body, String apiKey, String token) {
        return envd(String.valueOf(body), "POST", "/" + rpc, body, "application/json", apiKey, token);
    }

    static Attempt code(String method, String path, Object body, String apiKey, String token) {
        return new Attempt("code " + method + " " + path + " " + body,
                id -> answer(admin.call(method, path, body, sandboxHeaders(id, "49999", apiKey, token,
                        body == null ? null : "application/json")), id));
    }

    /**
     * A streaming Connect call; it must answer within 20 s (a stream that stays open means it reached
     * a live process — that is reported as the answer rather than hanging the suite).
     */
    static Attempt stream(String rpc, Object request, String apiKey, String token) {
        return new Attempt("stream " + rpc + " " + request, id -> {
            Map<String, String> h = new HashMap<>();
            h.put("X-Access-Token", token); // null removes the sandbox's own token
            if (apiKey != null) h.put("X-API-Key", apiKey);
            Future<RawClient.Streamed> f = pool.submit(() -> admin.streamRaw(new RawClient.Box(id, "unused"), rpc,
                    RawClient.envelope(0, RawClient.JSON.writeValueAsBytes(request)), h, null));
            try {
                return answer(f.get(20, TimeUnit.SECONDS), id);
            } catch (TimeoutException e) {
                f.cancel(true);
                return new Answer(-1, "", "the stream stayed open: it reached a live process");
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        });
    }

    /**
     * Sends each attempt to alpha's live sandbox and to a never-existing id and collects every
     * difference (so one run shows all of them); checks alpha's sandbox after each attempt.
     */
    static List<String> differences(String target, List<Attempt> attempts) {
        List<String> diffs = new ArrayList<>();
        for (Attempt at : attempts) {
            String ghost = ghostId();
            Answer forGhost = at.send().apply(ghost);
            Answer forAlpha = at.send().apply(target);
            if (!forGhost.equals(forAlpha)) {
                diffs.add(at.name() + "\n    never-existing id: " + forGhost + "\n    alpha's sandbox:   " + forAlpha);
            }
            if (target.equals(a.id())) assertUntouched(at.name());
        }
        return diffs;
    }

    static void assertNoDifferences(List<String> diffs) {
        assertTrue(diffs.isEmpty(), () -> diffs.size() + " answers tell another tenant's sandbox from a never-existing one:\n"
                + String.join("\n", diffs));
    }

    static String b64(String s) {
        return Base64.getEncoder().encodeToString(s.getBytes(StandardCharsets.UTF_8));
    }

    // ---- 1. cross-tenant on every route ----

    @Test
    void crossTenantControlPlaneAnswersAsNotFound() {
        List<Attempt> attempts = List.of(
                cp(beta, "GET", "/sandboxes/{id}", null),
                cp(beta, "DELETE", "/sandboxes/{id}", null),
                cp(beta, "POST", "/sandboxes/{id}/timeout", Map.of("timeout", 1)),
                cp(beta, "POST", "/sandboxes/{id}/refreshes", Map.of("duration", 1)),
                cp(beta, "POST", "/sandboxes/{id}/refreshes", Map.of()),
                cp(beta, "POST", "/sandboxes/{id}/connect", Map.of("timeout", 1)),
                cp(beta, "POST", "/v2/sandboxes/{id}/connect", Map.of("timeout", 1)),
                cp(beta, "GET", "/sandboxes/{id}/metrics", null),
                cp(beta, "GET", "/sandboxes/{id}/network", null),
                cp(beta, "PUT", "/sandboxes/{id}/network", Map.of("allow_internet_access", true)),
                cp(beta, "GET", "/sandboxes/{id}/network/log", null),
                cp(beta, "POST", "/sandboxes/{id}/packages", Map.of("packages", List.of("requests==2.31.0"))));
        List<String> diffs = differences(a.id(), attempts);
        assertNoDifferences(diffs);
        // And the answer is the documented one.
        RawClient.Response r = beta.call("GET", "/sandboxes/" + a.id(), null);
        ApiAssertions.assertError(r, 404);
        assertEquals("sandbox " + a.id() + " not found", r.json().path("message").asText());
    }

    @Test
    void crossTenantEnvdPlaneAnswersAsNotFound() {
        String k = betaKey.secret();
        List<Attempt> attempts = new ArrayList<>();
        // With beta's key alone, and with beta's key plus the token of beta's own sandbox.
        for (String token : Arrays.asList(null, b.token())) {
            attempts.add(rpc("process.Process/List", Map.of(), k, token));
            attempts.add(rpc("process.Process/SendInput", Map.of("process", Map.of("pid", catPid),
                    "input", Map.of("stdin", b64("beta was here\n"))), k, token));
            attempts.add(rpc("process.Process/SendSignal", Map.of("process", Map.of("pid", catPid), "signal", "SIGNAL_SIGKILL"), k, token));
            attempts.add(rpc("process.Process/CloseStdin", Map.of("process", Map.of("pid", catPid)), k, token));
            attempts.add(rpc("filesystem.Filesystem/Stat", Map.of("path", FILE), k, token));
            attempts.add(rpc("filesystem.Filesystem/ListDir", Map.of("path", "/home/user", "depth", 1), k, token));
            attempts.add(rpc("filesystem.Filesystem/MakeDir", Map.of("path", "/home/user/beta-dir"), k, token));
            attempts.add(rpc("filesystem.Filesystem/Move", Map.of("source", FILE, "destination", "/home/user/stolen.txt"), k, token));
            attempts.add(rpc("filesystem.Filesystem/Remove", Map.of("path", FILE), k, token));
            attempts.add(envd("read", "GET", "/files?path=" + URLEncoder.encode(FILE, StandardCharsets.UTF_8), null, null, k, token));
            attempts.add(envd("write", "POST", "/files?path=" + URLEncoder.encode("/home/user/beta-upload.txt", StandardCharsets.UTF_8),
                    "beta's bytes".getBytes(StandardCharsets.UTF_8), "application/octet-stream", k, token));
            attempts.add(stream("process.Process/Start", Map.of("process", Map.of("cmd", "/bin/touch",
                    "args", List.of("/home/user/beta-touched"))), k, token));
            attempts.add(stream("process.Process/Connect", Map.of("process", Map.of("pid", catPid)), k, token));
        }
        List<String> diffs = differences(a.id(), attempts);
        assertNoDifferences(diffs);
        RawClient.Response r = admin.call("POST", "/filesystem.Filesystem/Stat", Map.of("path", FILE),
                sandboxHeaders(a.id(), "49983", k, null, "application/json"));
        ApiAssertions.assertError(r, 502);
        assertEquals("The sandbox was not found: " + a.id() + " does not exist or has ended", r.json().path("message").asText());
    }

    @Test
    void crossTenantCodeInterpreterAnswersAsNotFound() {
        String k = betaKey.secret();
        List<Attempt> attempts = new ArrayList<>();
        for (String token : Arrays.asList(null, b.token())) {
            attempts.add(code("POST", "/execute", Map.of("code", "open('/home/user/beta-code.txt', 'w').write('x')"), k, token));
            attempts.add(code("GET", "/contexts", null, k, token));
            attempts.add(code("POST", "/contexts", Map.of("language", "python"), k, token));
            attempts.add(code("DELETE", "/contexts/some-context", null, k, token));
            attempts.add(code("POST", "/contexts/some-context/restart", Map.of(), k, token));
        }
        List<String> diffs = differences(a.id(), attempts);
        assertNoDifferences(diffs);
    }

    /**
     * Requests a handler would refuse before looking the sandbox up (a bad body, a method the route
     * does not take, a route that does not exist) and envd's unauthenticated /health: an answer that
     * depends on whether the id exists is an existence oracle for another tenant's sandboxes.
     */
    @Test
    void crossTenantMalformedRequestsAnswerAsNotFound() {
        String k = betaKey.secret();
        List<Attempt> attempts = List.of(
                cp(beta, "POST", "/sandboxes/{id}/timeout", Map.of()),
                cp(beta, "POST", "/sandboxes/{id}/timeout", "{not json"),
                cp(beta, "POST", "/sandboxes/{id}/timeout", Map.of("timeout", -5)),
                cp(beta, "POST", "/sandboxes/{id}/connect", "[1]"),
                cp(beta, "POST", "/v2/sandboxes/{id}/connect", "{not json"),
                cp(beta, "PUT", "/sandboxes/{id}/network", "[1]"),
                cp(beta, "PUT", "/sandboxes/{id}/network", Map.of("allowOut", List.of("*"))),
                cp(beta, "GET", "/sandboxes/{id}/network/log?limit=0", null),
                cp(beta, "POST", "/sandboxes/{id}/packages", Map.of()),
                cp(beta, "PATCH", "/sandboxes/{id}", Map.of()),
                cp(beta, "GET", "/sandboxes/{id}/timeout", null),
                cp(beta, "GET", "/sandboxes/{id}/no-such-route", null),
                rpc("filesystem.Filesystem/Stat", "{not json", k, null),
                rpc("process.Process/NoSuchRpc", Map.of(), k, null),
                envd("health", "GET", "/health", null, null, k, null));
        assertNoDifferences(differences(a.id(), attempts));
    }

    /** The same answer in the same time: a lookup of another tenant's sandbox costs what a miss costs. */
    @Test
    void crossTenantAnswersTakeTheTimeOfNotFound() {
        String ghost = ghostId();
        Map<String, String> statA = sandboxHeaders(a.id(), "49983", betaKey.secret(), null, "application/json");
        Map<String, String> statGhost = sandboxHeaders(ghost, "49983", betaKey.secret(), null, "application/json");
        long[] cpA = new long[41], cpGhost = new long[41], envdA = new long[41], envdGhost = new long[41];
        for (int i = 0; i < 41; i++) {
            cpA[i] = timed(() -> beta.call("GET", "/sandboxes/" + a.id(), null));
            cpGhost[i] = timed(() -> beta.call("GET", "/sandboxes/" + ghost, null));
            envdA[i] = timed(() -> beta.call("POST", "/filesystem.Filesystem/Stat", Map.of("path", FILE), statA));
            envdGhost[i] = timed(() -> beta.call("POST", "/filesystem.Filesystem/Stat", Map.of("path", FILE), statGhost));
        }
        long cp = Math.abs(median(cpA) - median(cpGhost)), envd = Math.abs(median(envdA) - median(envdGhost));
        // Both are a map lookup and an error body; touching the sandbox (its agent) would cost milliseconds.
        assertTrue(cp < 2_000_000, "control plane: median answer times differ by " + cp / 1000 + " µs");
        assertTrue(envd < 2_000_000, "envd: median answer times differ by " + envd / 1000 + " µs");
    }

    static long timed(Runnable r) {
        long t0 = System.nanoTime();
        r.run();
        return System.nanoTime() - t0;
    }

    static long median(long[] xs) {
        long[] s = xs.clone();
        Arrays.sort(s);
        return s[s.length / 2];
    }

    // ---- 2. listing ----

    static List<String> ids(RawClient.Response r) {
        assertEquals(200, r.status(), r::body);
        List<String> ids = new ArrayList<>();
        r.json().forEach(n -> ids.add(n.path("sandboxID").asText()));
        return ids;
    }

    static String metadataQuery(String k, String v) {
        return "metadata=" + URLEncoder.encode(k + "=" + v, StandardCharsets.UTF_8);
    }

    @Test
    void listingShowsOnlyOwnSandboxesWithFiltersAndPaging() {
        RawClient.Box a2 = alpha.create(Map.of("templateID", "base", "timeout", 120, "metadata", Map.of("owner", "alpha", "group", "other")));
        try {
            for (String route : List.of("/sandboxes", "/v2/sandboxes")) {
                assertEquals(Set.of(a.id(), a2.id()), Set.copyOf(ids(alpha.call("GET", route, null))), route);
                assertEquals(List.of(b.id()), ids(beta.call("GET", route, null)), route);
                List<String> adminSees = ids(admin.call("GET", route, null));
                assertTrue(adminSees.stream().noneMatch(Set.of(a.id(), a2.id(), b.id())::contains),
                        "the default tenant's list shows tenants' sandboxes: " + adminSees);
                // Metadata filters match within the caller's sandboxes only: beta's sandbox has group=shared too.
                assertEquals(List.of(a.id()), ids(alpha.call("GET", route + "?" + metadataQuery("group", "shared"), null)));
                assertEquals(List.of(b.id()), ids(beta.call("GET", route + "?" + metadataQuery("group", "shared"), null)));
                assertEquals(List.of(), ids(alpha.call("GET", route + "?" + metadataQuery("owner", "beta"), null)));
                assertEquals(List.of(), ids(beta.call("GET", route + "?" + metadataQuery("owner", "alpha"), null)));
                assertEquals(List.of(), ids(beta.call("GET", route + "?" + metadataQuery("group", "other"), null)));
                assertEquals(List.of(b.id()), ids(beta.call("GET", route + "?state=running", null)));
                // Paging walks alpha's two sandboxes and no one else's.
                RawClient.Response p1 = alpha.call("GET", route + "?limit=1", null);
                List<String> first = ids(p1);
                assertEquals(1, first.size());
                String next = p1.headers().firstValue("X-Next-Token").orElse(null);
                assertNotNull(next, "a next token after the first of two");
                RawClient.Response p2 = alpha.call("GET", route + "?limit=1&nextToken=" + URLEncoder.encode(next, StandardCharsets.UTF_8), null);
                List<String> second = ids(p2);
                assertEquals(1, second.size());
                assertTrue(p2.headers().firstValue("X-Next-Token").isEmpty(), "no page after alpha's last sandbox");
                assertEquals(Set.of(a.id(), a2.id()), Set.of(first.getFirst(), second.getFirst()));
                // Beta's one sandbox fills one page: other tenants' sandboxes do not make a next page appear.
                RawClient.Response bp = beta.call("GET", route + "?limit=1", null);
                assertEquals(List.of(b.id()), ids(bp));
                assertTrue(bp.headers().firstValue("X-Next-Token").isEmpty(), () -> "beta got a next token: " + bp.headers().map());
                // Alpha's cursor in beta's hands shows nothing of alpha's.
                List<String> viaCursor = ids(beta.call("GET", route + "?nextToken=" + URLEncoder.encode(next, StandardCharsets.UTF_8), null));
                assertTrue(viaCursor.stream().noneMatch(Set.of(a.id(), a2.id())::contains), viaCursor::toString);
            }
        } finally {
            alpha.kill(a2);
        }
    }

    // ---- 3. ids of deleted sandboxes ----

    @Test
    void idsOfDeletedSandboxesStayDeadForEveryone() {
        RawClient.Box d = alpha.create(Map.of("templateID", "base", "timeout", 120));
        assertEquals(200, alpha.upload(d, "/home/user/d.txt", "d".getBytes()).status());
        RawClient.Response kill = alpha.call("DELETE", "/sandboxes/" + d.id(), null);
        assertEquals(204, kill.status(), kill::body);
        List<Attempt> attempts = new ArrayList<>();
        for (RawClient who : List.of(alpha, beta)) {
            attempts.add(cp(who, "GET", "/sandboxes/{id}", null));
            attempts.add(cp(who, "DELETE", "/sandboxes/{id}", null));
            attempts.add(cp(who, "POST", "/sandboxes/{id}/timeout", Map.of("timeout", 30)));
            attempts.add(cp(who, "POST", "/sandboxes/{id}/connect", Map.of("timeout", 30)));
            attempts.add(cp(who, "POST", "/v2/sandboxes/{id}/connect", Map.of("timeout", 30)));
            attempts.add(cp(who, "GET", "/sandboxes/{id}/network", null));
            attempts.add(rpc("filesystem.Filesystem/Stat", Map.of("path", "/home/user/d.txt"), who.key, null));
            attempts.add(code("GET", "/contexts", null, who.key, null));
        }
        assertNoDifferences(differences(d.id(), attempts));
        // The old access token: 502, as for a sandbox that has ended, on every plane.
        RawClient.Response stat = alpha.rpc(d, "filesystem.Filesystem/Stat", Map.of("path", "/home/user/d.txt"));
        ApiAssertions.assertError(stat, 502);
        ApiAssertions.assertError(alpha.call("GET", "/files?path=/home/user/d.txt", null, alpha.envd(d)), 502);
        RawClient.Streamed s = alpha.startLive(d, RawClient.bash("echo revived", Map.of()), null, null);
        assertEquals(502, s.status(), () -> String.valueOf(s.errorBody()));
        assertEquals(502, s.errorBody().path("code").asInt());
        ApiAssertions.assertError(alpha.codeCall(d, "GET", "/contexts", null), 502);
        // The same with beta's key alongside the old token.
        Map<String, String> h = sandboxHeaders(d.id(), "49983", betaKey.secret(), d.token(), "application/json");
        ApiAssertions.assertError(admin.call("POST", "/filesystem.Filesystem/Stat", Map.of("path", "/"), h), 502);
        // Gone from every list.
        assertFalse(ids(alpha.call("GET", "/v2/sandboxes", null)).contains(d.id()));
        assertFalse(ids(beta.call("GET", "/v2/sandboxes", null)).contains(d.id()));
    }

    // ---- 4. sandbox access tokens ----

    static Map<String, String> tokenOnly(String id, String port, String token, String contentType) {
        return sandboxHeaders(id, port, null, token, contentType);
    }

    @Test
    void accessTokenReachesItsOwnSandboxWithoutAKey() {
        Map<String, String> h = tokenOnly(a.id(), "49983", a.token(), "application/json");
        RawClient.Response stat = admin.call("POST", "/filesystem.Filesystem/Stat", Map.of("path", FILE), h);
        assertEquals(200, stat.status(), stat::body);
        assertEquals(FILE_CONTENT.length(), stat.json().path("entry").path("size").asInt(), stat::body);
        RawClient.Response read = admin.call("GET", "/files?path=" + URLEncoder.encode(FILE, StandardCharsets.UTF_8), null,
                tokenOnly(a.id(), "49983", a.token(), null));
        assertEquals(200, read.status());
        assertEquals(FILE_CONTENT, read.body());
        // RawClient's streams send exactly the sandbox headers: id, port and token, no key.
        RawClient keyless = new RawClient(ts.server.url(), "unused");
        RawClient.Streamed run = keyless.startLive(a, RawClient.bash("echo token works", Map.of()), null, null);
        assertEquals(200, run.status(), () -> String.valueOf(run.errorBody()));
        assertEquals("token works\n", run.out());
        RawClient.Response contexts = admin.call("GET", "/contexts", null, tokenOnly(a.id(), "49999", a.token(), null));
        assertEquals(200, contexts.status(), contexts::body);
        assertTrue(contexts.json().isArray(), contexts::body);
    }

    @Test
    void accessTokenDoesNotReachAnotherSandbox() {
        // Alpha's token on beta's sandbox: no key, only the wrong sandbox's token.
        List<Map.Entry<String, RawClient.Response>> answers = List.of(
                Map.entry("Stat", admin.call("POST", "/filesystem.Filesystem/Stat", Map.of("path", "/home/user/beta-only.txt"),
                        tokenOnly(b.id(), "49983", a.token(), "application/json"))),
                Map.entry("List", admin.call("POST", "/process.Process/List", Map.of(),
                        tokenOnly(b.id(), "49983", a.token(), "application/json"))),
                Map.entry("read", admin.call("GET", "/files?path=/home/user/beta-only.txt", null, tokenOnly(b.id(), "49983", a.token(), null))),
                Map.entry("write", admin.call("POST", "/files?path=/home/user/alpha-was-here.txt", "x".getBytes(),
                        tokenOnly(b.id(), "49983", a.token(), "application/octet-stream"))),
                Map.entry("execute", admin.call("POST", "/execute", Map.of("code", "open('/home/user/alpha-code.txt','w').write('x')"),
                        tokenOnly(b.id(), "49999", a.token(), "application/json"))),
                Map.entry("contexts", admin.call("GET", "/contexts", null, tokenOnly(b.id(), "49999", a.token(), null))));
        for (var e : answers) {
            RawClient.Response r = e.getValue();
            assertTrue(r.status() == 401 || r.status() == 502, () -> e.getKey() + " with another sandbox's token: " + r.status() + " " + r.body());
            assertNotNull(r.json(), r::body);
            assertFalse(r.json().path("message").asText().isBlank(), r::body);
            assertFalse(r.body().contains("beta's data"), r::body);
        }
        RawClient.Streamed s = admin.streamRaw(new RawClient.Box(b.id(), a.token()), "process.Process/Start",
                RawClient.envelope(0, "{\"process\":{\"cmd\":\"/bin/touch\",\"args\":[\"/home/user/alpha-touched\"]}}".getBytes()), Map.of(), null);
        assertTrue(s.status() == 401 || s.status() == 502, () -> "Start with another sandbox's token: " + s.status() + " " + s.errorBody());
        // Beta's sandbox is as it was.
        RawClient.Response ls = beta.rpc(b, "filesystem.Filesystem/ListDir", Map.of("path", "/home/user", "depth", 1));
        List<String> names = new ArrayList<>();
        ls.json().path("entries").forEach(e -> names.add(e.path("name").asText()));
        assertTrue(names.contains("beta-only.txt"), names::toString);
        assertTrue(names.stream().noneMatch(n -> n.startsWith("alpha")), names::toString);
    }

    /** Holding one sandbox's token must not tell whether an id of another tenant exists. */
    @Test
    void accessTokenOnAnotherTenantsSandboxAnswersAsNotFound() {
        List<Attempt> attempts = List.of(
                rpc("filesystem.Filesystem/Stat", Map.of("path", "/home/user/beta-only.txt"), null, a.token()),
                envd("read", "GET", "/files?path=/home/user/beta-only.txt", null, null, null, a.token()),
                code("GET", "/contexts", null, null, a.token()),
                stream("process.Process/Start", Map.of("process", Map.of("cmd", "/bin/true")), null, a.token()));
        assertNoDifferences(differences(b.id(), attempts));
    }

    @Test
    void accessTokenDoesNotOpenTheControlPlane() {
        for (Map<String, String> h : List.of(Map.of("X-API-Key", a.token()), Map.of("X-Access-Token", a.token()),
                Map.of("X-API-Key", "e2b_" + a.token()), Map.of("Authorization", "Bearer " + a.token()))) {
            ApiAssertions.assertError(admin.call("GET", "/sandboxes/" + a.id(), null, h), 401);
            ApiAssertions.assertError(admin.call("DELETE", "/sandboxes/" + a.id(), null, h), 401);
            ApiAssertions.assertError(admin.call("POST", "/sandboxes/" + a.id() + "/timeout", Map.of("timeout", 1), h), 401);
            ApiAssertions.assertError(admin.call("PUT", "/sandboxes/" + a.id() + "/network", Map.of("allow_internet_access", true), h), 401);
            ApiAssertions.assertError(admin.call("GET", "/v2/sandboxes", null, h), 401);
            ApiAssertions.assertError(admin.call("POST", "/sandboxes", Map.of("templateID", "base"), h), 401);
            ApiAssertions.assertError(admin.call("GET", "/admin/tenants", null, h), 401);
        }
        assertUntouched("control-plane calls with the sandbox's token");
    }

    // ---- 5. keys ----

    @Test
    void aRevokedKeyIsRefusedOnTheNextRequest() {
        Key temp = createKey(admin, "alpha", false);
        RawClient t = new RawClient(ts.server.url(), temp.secret());
        Map<String, String> envdWithKey = sandboxHeaders(a.id(), "49983", temp.secret(), null, "application/json");
        Map<String, String> codeWithKey = sandboxHeaders(a.id(), "49999", temp.secret(), null, null);
        assertEquals(200, t.call("GET", "/v2/sandboxes", null).status());
        assertEquals(200, t.call("POST", "/filesystem.Filesystem/Stat", Map.of("path", FILE), envdWithKey).status());
        assertEquals(200, t.call("GET", "/contexts", null, codeWithKey).status());
        RawClient.Response revoked = admin.call("DELETE", "/admin/keys/" + temp.id(), null);
        assertEquals(200, revoked.status(), revoked::body);
        assertFalse(revoked.json().path("revoked").isNull(), revoked::body);
        assertFalse(revoked.body().contains(temp.secret()));
        ApiAssertions.assertError(t.call("GET", "/v2/sandboxes", null), 401);
        ApiAssertions.assertError(t.call("GET", "/sandboxes/" + a.id(), null), 401);
        ApiAssertions.assertError(t.call("POST", "/sandboxes", Map.of("templateID", "base")), 401);
        RawClient.Response stat = t.call("POST", "/filesystem.Filesystem/Stat", Map.of("path", FILE), envdWithKey);
        assertEquals(401, stat.status(), stat::body);
        assertEquals("unauthenticated", stat.json().path("code").asText(), stat::body);
        ApiAssertions.assertError(t.call("GET", "/files?path=" + URLEncoder.encode(FILE, StandardCharsets.UTF_8), null,
                sandboxHeaders(a.id(), "49983", temp.secret(), null, null)), 401);
        ApiAssertions.assertError(t.call("GET", "/contexts", null, codeWithKey), 401);
        // Revoking twice, or a key that does not exist.
        RawClient.Response again = admin.call("DELETE", "/admin/keys/" + temp.id(), null);
        assertTrue(again.status() == 200 || again.status() == 409, again::body);
        ApiAssertions.assertError(admin.call("DELETE", "/admin/keys/key_000000000000", null), 404);
        // The list shows it revoked; alpha's other key still works.
        RawClient.Response keys = admin.call("GET", "/admin/keys?tenant=alpha", null);
        boolean found = false;
        for (JsonNode k : keys.json()) {
            assertFalse(k.toString().contains("e2b_"), () -> "a key listing shows a secret: " + k);
            if (k.path("id").asText().equals(temp.id())) {
                found = true;
                assertFalse(k.path("revoked").isNull());
            }
        }
        assertTrue(found, keys::body);
        assertEquals(200, alpha.call("GET", "/v2/sandboxes", null).status());
        assertUntouched("revoking a key");
    }

    /** A forged key: what an attacker who saw part of a key, its hash, or nothing at all might send. */
    static List<byte[]> forgedKeys() throws Exception {
        String real = alphaKey.secret();
        byte[] rnd = new byte[20];
        new SecureRandom().nextBytes(rnd);
        char last = real.charAt(real.length() - 1);
        String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(real.getBytes(StandardCharsets.UTF_8)));
        List<String> keys = List.of(
                "e2b_" + HexFormat.of().formatHex(rnd),
                real.substring(0, real.length() - 1),
                real.substring(0, 20),
                real.substring(0, real.length() - 1) + (last == '0' ? '1' : '0'),
                real.toUpperCase(java.util.Locale.ROOT),
                real + "0",
                sha,
                "e2b_" + sha,
                "",
                " ",
                // oversized, yet within one header's 8 KiB bound (past it: 431, RequestShapeIT)
                "e2b_" + "ab".repeat(3 * 1024),
                "e2b_ключ-" + real.substring(4),
                alphaKey.id());
        List<byte[]> out = new ArrayList<>();
        for (String k : keys) out.add(k.getBytes(StandardCharsets.UTF_8));
        return out;
    }

    @Test
    void forgedKeysGet401WithAJsonBody() throws Exception {
        for (byte[] key : forgedKeys()) {
            String shown = new String(key, StandardCharsets.UTF_8);
            String label = shown.length() > 60 ? shown.substring(0, 60) + "... (" + key.length + " bytes)" : "'" + shown + "'";
            RawResp list = raw("GET", "/v2/sandboxes", key, Map.of(), null);
            assertEquals(401, list.status(), () -> label + " → " + list.status() + " " + list.body());
            assertEquals(401, list.json().path("code").asInt(), () -> label + " → " + list.body());
            assertTrue(list.contentType().startsWith("application/json"), label);
            RawResp del = raw("DELETE", "/sandboxes/" + a.id(), key, Map.of(), null);
            assertEquals(401, del.status(), () -> label + " → " + del.body());
            RawResp create = raw("POST", "/sandboxes", key, Map.of("Content-Type", "application/json"),
                    "{\"templateID\":\"base\"}".getBytes());
            assertEquals(401, create.status(), () -> label + " → " + create.body());
            RawResp adminRoute = raw("GET", "/admin/tenants", key, Map.of(), null);
            assertEquals(401, adminRoute.status(), () -> label + " → " + adminRoute.body());
            // envd with the forged key instead of the token: unauthenticated, as a Connect error.
            RawResp stat = raw("POST", "/filesystem.Filesystem/Stat", key, Map.of("E2b-Sandbox-Id", a.id(), "E2b-Sandbox-Port", "49983",
                    "Content-Type", "application/json"), ("{\"path\":\"" + FILE + "\"}").getBytes());
            assertEquals(401, stat.status(), () -> label + " → " + stat.body());
            assertEquals("unauthenticated", stat.json().path("code").asText(), () -> label + " → " + stat.body());
            RawResp read = raw("GET", "/files?path=" + URLEncoder.encode(FILE, StandardCharsets.UTF_8), key,
                    Map.of("E2b-Sandbox-Id", a.id(), "E2b-Sandbox-Port", "49983"), null);
            assertEquals(401, read.status(), () -> label + " → " + read.body());
            assertEquals(401, read.json().path("code").asInt(), () -> label + " → " + read.body());
        }
        assertUntouched("forged keys");
    }

    @Test
    void nonAdminKeysGet403OnTheAdminApiAndMetrics() {
        RawClient.Response quotaBefore = admin.call("GET", "/admin/tenants/alpha", null);
        int keysBefore = admin.call("GET", "/admin/keys", null).json().size();
        List<Object[]> routes = List.of(
                new Object[] {"GET", "/admin/tenants", null},
                new Object[] {"POST", "/admin/tenants", Map.of("name", "evil")},
                new Object[] {"GET", "/admin/tenants/alpha", null},
                new Object[] {"GET", "/admin/tenants/beta", null},
                new Object[] {"PUT", "/admin/tenants/alpha/quota", Map.of("sandboxes", 1000)},
                new Object[] {"PUT", "/admin/tenants/beta/quota", Map.of("sandboxes", 0)},
                new Object[] {"GET", "/admin/keys", null},
                new Object[] {"GET", "/admin/keys?tenant=beta", null},
                new Object[] {"POST", "/admin/keys", Map.of("tenant", "alpha", "admin", true)},
                new Object[] {"POST", "/admin/keys", Map.of("tenant", "default", "admin", true)},
                new Object[] {"DELETE", "/admin/keys/" + betaKey.id(), null},
                new Object[] {"DELETE", "/admin/keys/" + alphaKey.id(), null},
                new Object[] {"GET", "/admin/audit", null},
                new Object[] {"GET", "/admin/audit?tenant=beta", null},
                new Object[] {"GET", "/admin", null},
                new Object[] {"GET", "/admin/no-such-route", null},
                new Object[] {"GET", "/metrics", null});
        for (RawClient who : List.of(alpha, beta)) {
            for (Object[] route : routes) {
                RawClient.Response r = who.call((String) route[0], (String) route[1], route[2]);
                assertEquals(403, r.status(), () -> route[0] + " " + route[1] + " → " + r.status() + " " + r.body());
                ApiAssertions.assertError(r, 403);
            }
        }
        // Nothing of it happened.
        RawClient.Response tenants = admin.call("GET", "/admin/tenants", null);
        assertFalse(tenants.body().contains("\"evil\""), tenants::body);
        assertEquals(quotaBefore.json().path("quota"), admin.call("GET", "/admin/tenants/alpha", null).json().path("quota"));
        assertEquals(keysBefore, admin.call("GET", "/admin/keys", null).json().size());
        assertEquals(200, beta.call("GET", "/v2/sandboxes", null).status(), "beta's key still works");
        assertEquals(200, alpha.call("GET", "/v2/sandboxes", null).status(), "alpha's key still works");
        // The admin key reaches them all.
        assertEquals(200, admin.call("GET", "/metrics", null).status());
        assertEquals(200, admin.call("GET", "/admin/audit?limit=1", null).status());
        // An admin key of another tenant is an admin key too.
        Key alphaAdmin = createKey(admin, "alpha", true);
        RawClient aa = new RawClient(ts.server.url(), alphaAdmin.secret());
        assertEquals(200, aa.call("GET", "/admin/tenants", null).status());
        assertEquals(200, admin.call("DELETE", "/admin/keys/" + alphaAdmin.id(), null).status());
        ApiAssertions.assertError(aa.call("GET", "/admin/tenants", null), 401);
    }

    // ---- a raw HTTP/1.1 request, for header values java.net.http refuses (empty, non-ASCII) ----

    record RawResp(int status, String contentType, String body) {
        JsonNode json() {
            try {
                return RawClient.JSON.readTree(body);
            } catch (IOException e) {
                throw new AssertionError("not JSON: " + body, e);
            }
        }
    }

    static RawResp raw(String method, String path, byte[] apiKey, Map<String, String> headers, byte[] body) {
        try (Socket s = new Socket(ts.server.url().getHost(), ts.server.url().getPort())) {
            s.setSoTimeout(20_000);
            ByteArrayOutputStream req = new ByteArrayOutputStream();
            StringBuilder head = new StringBuilder(method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
            headers.forEach((k, v) -> head.append(k).append(": ").append(v).append("\r\n"));
            head.append("Content-Length: ").append(body == null ? 0 : body.length).append("\r\n");
            req.writeBytes(head.toString().getBytes(StandardCharsets.UTF_8));
            req.writeBytes("X-API-Key: ".getBytes(StandardCharsets.US_ASCII));
            req.writeBytes(apiKey);
            req.writeBytes("\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            if (body != null) req.writeBytes(body);
            OutputStream o = s.getOutputStream();
            o.write(req.toByteArray());
            o.flush();
            InputStream in = s.getInputStream();
            byte[] all = in.readAllBytes();
            String text = new String(all, StandardCharsets.UTF_8);
            int split = text.indexOf("\r\n\r\n");
            assertTrue(split > 0, () -> "no HTTP answer: " + text);
            String[] lines = text.substring(0, split).split("\r\n");
            int status = Integer.parseInt(lines[0].split(" ")[1]);
            String ct = "";
            boolean chunked = false;
            for (String l : lines) {
                String lower = l.toLowerCase(java.util.Locale.ROOT);
                if (lower.startsWith("content-type:")) ct = l.substring(13).trim();
                if (lower.startsWith("transfer-encoding:") && lower.contains("chunked")) chunked = true;
            }
            String rest = text.substring(split + 4);
            if (chunked) {
                StringBuilder dechunked = new StringBuilder();
                int i = 0;
                while (true) {
                    int eol = rest.indexOf("\r\n", i);
                    int n = Integer.parseInt(rest.substring(i, eol).split(";")[0].trim(), 16);
                    if (n == 0) break;
                    dechunked.append(rest, eol + 2, eol + 2 + n);
                    i = eol + 2 + n + 2;
                }
                rest = dechunked.toString();
            }
            return new RawResp(status, ct, rest);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
