package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.conformance.ApiAssertions;
import dev.stockade.conformance.RawClient;
import dev.stockade.conformance.TestServer;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Hostile input at every layer — auth headers, JSON bodies, field types, limits, sizes, paths, routes,
 * methods, Connect envelopes, RPC fields, oversized headers, slow clients — answered with the right
 * 4xx and the E2B/Connect error body, never a 500, never a hang, and never at the cost of other clients.
 */
class BadInputIT {
    static TestServer ts;
    static RawClient c;
    static RawClient.Box box;
    static final Set<String> CONNECT_CODES = Set.of("canceled", "unknown", "invalid_argument", "deadline_exceeded", "not_found",
            "already_exists", "permission_denied", "resource_exhausted", "failed_precondition", "aborted", "out_of_range",
            "unimplemented", "internal", "unavailable", "data_loss", "unauthenticated");

    @BeforeAll
    static void up() {
        ts = new TestServer();
        c = ts.client;
        box = c.create(Map.of("templateID", "base", "timeout", 300));
    }

    @AfterAll
    static void down() {
        try {
            if (box != null) c.kill(box);
        } finally {
            ts.close();
        }
    }

    // ---- assertions on error shapes ----

    /** E2B REST error: the status, JSON {code: status (a number), message}. */
    static void err(RawClient.Response r, int status) {
        ApiAssertions.assertError(r, status);
    }

    /** A REST error whose status is one of {@code allowed}; never 5xx. */
    static void errIn(RawClient.Response r, int... allowed) {
        assertTrue(Arrays.stream(allowed).anyMatch(s -> s == r.status()), () -> "status " + r.status() + " not in "
                + Arrays.toString(allowed) + ": " + r.body());
        err(r, r.status());
    }

    /** A unary Connect error: non-200, JSON {code: "<connect code>", message}. */
    static void connectErr(RawClient.Response r, int status, String code) {
        assertEquals(status, r.status(), r::body);
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"), () -> r.headers().map().toString());
        assertNotNull(r.json(), r::body);
        assertEquals(code, r.json().path("code").asText(), r::body);
        assertFalse(r.json().path("message").asText("").isBlank(), r::body);
    }

    /**
     * A failed server-streaming call: either a non-200 answer with a JSON error body, or a 200 stream
     * that ends with an end-stream error. Either way no event was produced and nothing hung.
     */
    static JsonNode streamErr(RawClient.Streamed s) {
        assertTrue(s.status() < 500, () -> "5xx for a bad stream request: " + s.status() + " " + s.errorBody());
        if (s.status() != 200) {
            assertNotNull(s.errorBody(), "an error body");
            assertTrue(s.errorBody().isObject(), s.errorBody()::toString);
            assertTrue(s.contentType().startsWith("application/json"), s.contentType());
            String code = s.errorBody().path("code").asText();
            assertTrue(CONNECT_CODES.contains(code) || s.errorBody().path("code").asInt() == s.status(), s.errorBody()::toString);
            assertFalse(s.errorBody().path("message").asText("").isBlank(), s.errorBody()::toString);
            return s.errorBody();
        }
        assertTrue(s.endedCleanly(), "the stream must end with an end-stream frame");
        assertNotNull(s.error(), "the end-stream frame must carry an error");
        assertTrue(CONNECT_CODES.contains(s.error().path("code").asText()), s.error()::toString);
        assertFalse(s.error().path("message").asText("").isBlank());
        assertEquals(-1, s.pid(), "no process may start from a bad request");
        return s.error();
    }

    static String streamCode(RawClient.Streamed s) {
        JsonNode e = streamErr(s);
        return e.path("code").isTextual() ? e.path("code").asText() : Integer.toString(e.path("code").asInt());
    }

    static Map<String, Object> body(Object... kv) {
        Map<String, Object> m = new LinkedHashMap<>();
        for (int i = 0; i < kv.length; i += 2) m.put((String) kv[i], kv[i + 1]);
        return m;
    }

    static Map<String, String> noKey(Map<String, String> h) {
        Map<String, String> m = new HashMap<>(h);
        m.remove("X-API-Key");
        return m;
    }

    /** Creates and kills at once if a bad create unexpectedly succeeded, then fails. */
    static RawClient.Response create(Object bodyOrBytes) {
        RawClient.Response r = c.call("POST", "/sandboxes", bodyOrBytes);
        if (r.status() == 201) {
            c.call("DELETE", "/sandboxes/" + r.json().path("sandboxID").asText(), null);
        }
        return r;
    }

    // ---- a raw HTTP/1.1 client, for what java.net.http refuses to send ----

    record RawResp(int status, Map<String, String> headers, byte[] body) {
        boolean closed() {
            return status < 0;
        }

        JsonNode json() {
            try {
                return RawClient.JSON.readTree(body);
            } catch (IOException e) {
                return null;
            }
        }

        String text() {
            return new String(body, StandardCharsets.ISO_8859_1);
        }
    }

    static InetSocketAddress addr() {
        return new InetSocketAddress(ts.server.url().getHost(), ts.server.url().getPort());
    }

    /** Sends {@code request} as is and reads one response; a closed connection is status -1; silence is a hang. */
    static RawResp raw(byte[] request, Duration timeout) {
        try (Socket s = new Socket()) {
            s.connect(addr(), 5000);
            s.setSoTimeout((int) timeout.toMillis());
            Thread writer = Thread.ofVirtual().start(() -> {
                try {
                    OutputStream o = s.getOutputStream();
                    for (int off = 0; off < request.length; off += 65536) {
                        o.write(request, off, Math.min(65536, request.length - off));
                    }
                    o.flush();
                } catch (IOException ignored) {
                    // the server may stop reading and answer (or close) early
                }
            });
            try {
                InputStream in = new BufferedInputStream(s.getInputStream());
                String status;
                try {
                    status = line(in);
                } catch (SocketTimeoutException e) {
                    fail("no answer within " + timeout + ": the server hangs");
                    return null;
                } catch (IOException e) {
                    return new RawResp(-1, Map.of(), new byte[0]);
                }
                if (status == null) return new RawResp(-1, Map.of(), new byte[0]);
                String[] parts = status.split(" ", 3);
                int code = Integer.parseInt(parts[1]);
                Map<String, String> headers = new LinkedHashMap<>();
                for (String h; (h = line(in)) != null && !h.isEmpty(); ) {
                    int colon = h.indexOf(':');
                    if (colon > 0) headers.put(h.substring(0, colon).trim().toLowerCase(Locale.ROOT), h.substring(colon + 1).trim());
                }
                ByteArrayOutputStream body = new ByteArrayOutputStream();
                try {
                    if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
                        for (String size; (size = line(in)) != null; ) {
                            int n = Integer.parseInt(size.split(";")[0].trim(), 16);
                            if (n == 0) break;
                            body.write(in.readNBytes(n));
                            line(in);
                        }
                    } else if (headers.containsKey("content-length")) {
                        body.write(in.readNBytes(Integer.parseInt(headers.get("content-length"))));
                    } else if (code != 204 && code != 304) {
                        body.write(in.readAllBytes());
                    }
                } catch (SocketTimeoutException e) {
                    fail("the response body did not finish within " + timeout);
                } catch (IOException e) {
                    // closed after the answer: fine
                }
                return new RawResp(code, headers, body.toByteArray());
            } finally {
                writer.interrupt();
            }
        } catch (IOException e) {
            return new RawResp(-1, Map.of(), new byte[0]);
        }
    }

    static String line(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int ch;
        while ((ch = in.read()) >= 0) {
            if (ch == '\n') break;
            if (ch != '\r') b.write(ch);
        }
        if (ch < 0 && b.size() == 0) return null;
        return b.toString(StandardCharsets.UTF_8);
    }

    static byte[] request(String method, String target, Map<String, String> headers, byte[] body) {
        StringBuilder sb = new StringBuilder(method).append(' ').append(target).append(" HTTP/1.1\r\n")
                .append("Host: 127.0.0.1\r\nConnection: close\r\n");
        headers.forEach((k, v) -> sb.append(k).append(": ").append(v).append("\r\n"));
        if (body != null && !headers.containsKey("Content-Length") && !headers.containsKey("Transfer-Encoding")) {
            sb.append("Content-Length: ").append(body.length).append("\r\n");
        }
        sb.append("\r\n");
        byte[] head = sb.toString().getBytes(StandardCharsets.UTF_8);
        if (body == null) return head;
        byte[] all = Arrays.copyOf(head, head.length + body.length);
        System.arraycopy(body, 0, all, head.length, body.length);
        return all;
    }

    /** A raw control-plane request with the API key. */
    static RawResp rawCp(String method, String target) {
        return raw(request(method, target, Map.of("X-API-Key", TestServer.KEY), null), Duration.ofSeconds(20));
    }

    /** A raw answer that is an E2B error (status from {@code allowed}), or — only where said — a closed connection. */
    static void rawErr(RawResp r, boolean mayClose, int... allowed) {
        if (r.closed()) {
            assertTrue(mayClose, "the server closed the connection without an answer");
            return;
        }
        assertTrue(Arrays.stream(allowed).anyMatch(s -> s == r.status()), () -> "status " + r.status() + " not in "
                + Arrays.toString(allowed) + ": " + r.text());
        JsonNode j = r.json();
        assertNotNull(j, () -> "not JSON: " + r.text());
        assertEquals(r.status(), j.path("code").asInt(), r::text);
        assertFalse(j.path("message").asText("").isBlank(), r::text);
        assertTrue(r.headers().getOrDefault("content-type", "").startsWith("application/json"), r.headers()::toString);
    }

    static void serverStillAnswers() {
        RawClient.Response r = c.call("GET", "/v2/sandboxes", null);
        assertEquals(200, r.status(), r::body);
        assertEquals("alive\n", c.run(box, "echo alive").stdout());
    }

    // ---- authentication ----

    @Test
    void controlPlaneWithoutOrWithAWrongKeyIs401() {
        Map<String, String> none = Map.of();
        err(c.call("POST", "/sandboxes", body("templateID", "base"), none), 401);
        err(c.call("POST", "/v2/sandboxes", body("templateID", "base"), none), 401);
        err(c.call("GET", "/v2/sandboxes", null, none), 401);
        err(c.call("GET", "/sandboxes/" + box.id(), null, none), 401);
        err(c.call("DELETE", "/sandboxes/" + box.id(), null, none), 401);
        err(c.call("POST", "/sandboxes/" + box.id() + "/timeout", body("timeout", 10), none), 401);
        for (String wrong : List.of("e2b_0000000000000000000000000000000000000000", TestServer.KEY.toUpperCase(Locale.ROOT),
                TestServer.KEY + "0", TestServer.KEY.substring(0, 10), "", box.token())) {
            err(c.call("GET", "/v2/sandboxes", null, Map.of("X-API-Key", wrong.isEmpty() ? " " : wrong)), 401);
            err(c.call("DELETE", "/sandboxes/" + box.id(), null, Map.of("X-API-Key", wrong.isEmpty() ? " " : wrong)), 401);
        }
        // The envd token does not open the control plane; the key in another header does not either.
        err(c.call("GET", "/v2/sandboxes", null, Map.of("X-Access-Token", box.token())), 401);
        err(c.call("GET", "/v2/sandboxes", null, Map.of("Authorization", "Bearer " + TestServer.KEY)), 401);
        // A 401 is the same for an unknown sandbox: no existence oracle without the key.
        err(c.call("GET", "/sandboxes/nosuchsandbox0000000", null, none), 401);
        assertEquals(200, c.call("GET", "/sandboxes/" + box.id(), null).status(), "the box survived all that");
    }

    @Test
    void envdWithoutOrWithAWrongTokenIs401() {
        RawClient.Box other = c.create();
        try {
            Map<String, String> noToken = Map.of("E2b-Sandbox-Id", box.id(), "E2b-Sandbox-Port", "49983", "Content-Type", "application/json");
            for (Map<String, String> h : List.of(noToken,
                    withHeader(noToken, "X-Access-Token", "wrong"),
                    withHeader(noToken, "X-Access-Token", other.token()),
                    withHeader(noToken, "X-Access-Token", ""),
                    withHeader(noToken, "X-Access-Token", box.token().toUpperCase(Locale.ROOT)))) {
                connectErr(c.call("POST", "/filesystem.Filesystem/Stat", body("path", "/home/user"), h), 401, "unauthenticated");
                connectErr(c.call("POST", "/process.Process/List", body(), h), 401, "unauthenticated");
                err(c.call("GET", "/files?path=/etc/passwd", null, h), 401);
                err(c.call("POST", "/files?path=/home/user/intruder.txt", "x".getBytes(),
                        withHeader(h, "Content-Type", "application/octet-stream")), 401);
                Map<String, String> streamHeaders = new HashMap<>(h);
                streamHeaders.remove("Content-Type");
                streamHeaders.putIfAbsent("X-Access-Token", null); // null: sent without the token
                RawClient.Streamed s = c.streamRaw(box, "process.Process/Start",
                        RawClient.envelope(0, "{\"process\":{\"cmd\":\"/bin/touch\",\"args\":[\"/tmp/pwned\"]}}".getBytes()),
                        streamHeaders, null);
                assertEquals(401, s.status(), "Start without the right token: " + s.errorBody());
                assertEquals("unauthenticated", s.errorBody().path("code").asText(), String.valueOf(s.errorBody()));
            }
            // Nothing of it happened.
            assertEquals("none\n", c.run(box, "ls /home/user/intruder.txt /tmp/pwned 2>/dev/null || echo none").stdout());
            // /health needs the token too (the SDKs send it): without it, it would tell anyone whether an id exists.
            err(c.call("GET", "/health", null, Map.of("E2b-Sandbox-Id", box.id(), "E2b-Sandbox-Port", "49983")), 401);
            assertEquals(204, c.call("GET", "/health", null, Map.of("E2b-Sandbox-Id", box.id(), "E2b-Sandbox-Port", "49983",
                    "X-Access-Token", box.token())).status());
            // A user that does not exist in the sandbox: unauthenticated, as in envd.
            connectErr(c.rpc(box, "filesystem.Filesystem/Stat", body("path", "/"),
                    Map.of("Authorization", "Basic " + Base64.getEncoder().encodeToString("nobody:".getBytes()))), 401, "unauthenticated");
            err(c.call("GET", "/files?path=/etc/hostname&username=nobody", null, c.envd(box)), 401);
            // Garbage in Authorization: a client error, not a 500.
            RawClient.Response garbage = c.rpc(box, "filesystem.Filesystem/Stat", body("path", "/"), Map.of("Authorization", "Basic !!!"));
            assertTrue(garbage.status() == 400 || garbage.status() == 401, garbage.body());
            assertTrue(CONNECT_CODES.contains(garbage.json().path("code").asText()), garbage.body());
        } finally {
            c.kill(other);
        }
    }

    static Map<String, String> withHeader(Map<String, String> h, String k, String v) {
        Map<String, String> m = new HashMap<>(h);
        if (v == null) m.remove(k);
        else m.put(k, v);
        return m;
    }

    // ---- JSON bodies on create ----

    @Test
    void malformedJsonIs400() {
        for (String bad : List.of("{\"templateID\":", "{templateID: base}", "[]", "[{\"templateID\":\"base\"}]", "\"base\"", "42", "null",
                "true", "{\"templateID\":\"base\",}", "\u0000\u0001", "{\"a\":" + "[".repeat(5000) + "]".repeat(5000) + "}")) {
            err(create(bad), 400);
        }
        err(create(new byte[] {'{', '"', (byte) 0xff, (byte) 0xfe, '"', ':', '1', '}'}), 400);
        RawClient.Response r = create("[1,2,3]");
        err(r, 400);
        assertTrue(r.json().get("message").asText().toLowerCase(Locale.ROOT).contains("object"), r.body());
        // The same on the other JSON routes.
        err(c.call("POST", "/sandboxes/" + box.id() + "/timeout", "{\"timeout\":"), 400);
        err(c.call("POST", "/sandboxes/" + box.id() + "/timeout", "[30]"), 400);
        err(c.call("POST", "/v2/sandboxes/" + box.id() + "/connect", "{oops"), 400);
        connectErr(c.rpc(box, "filesystem.Filesystem/Stat", "{\"path\":"), 400, "invalid_argument");
        connectErr(c.rpc(box, "process.Process/List", "[]"), 400, "invalid_argument");
    }

    @Test
    void wrongFieldTypesAre400() {
        List<Map<String, Object>> bad = List.of(
                body("templateID", "base", "timeout", "abc"),
                body("templateID", "base", "timeout", "30"),
                body("templateID", "base", "timeout", 1.5),
                body("templateID", "base", "timeout", true),
                body("templateID", "base", "timeout", List.of(30)),
                body("templateID", "base", "metadata", 5),
                body("templateID", "base", "metadata", "k=v"),
                body("templateID", "base", "metadata", List.of("a")),
                body("templateID", "base", "metadata", Map.of("k", 1)),
                body("templateID", "base", "metadata", Map.of("k", Map.of("x", "y"))),
                body("templateID", "base", "envVars", Map.of("A", 1)),
                body("templateID", "base", "envVars", Map.of("A", true)),
                body("templateID", "base", "envVars", "A=1"),
                body("templateID", "base", "envVars", Map.of("BAD=NAME", "x")),
                body("templateID", "base", "envVars", Map.of("", "x")),
                body("templateID", "base", "envVars", Map.of("A", "nul\u0000byte")),
                body("templateID", 5),
                body("templateID", Map.of("name", "base")),
                body("templateID", "base", "limits", "big"),
                body("templateID", "base", "limits", Map.of("memoryMB", "512")),
                body("templateID", "base", "limits", Map.of("cpus", "2")),
                body("templateID", "base", "network", "none"),
                body("templateID", "base", "runtime", 7));
        for (Map<String, Object> b : bad) {
            RawClient.Response r = create(b);
            assertEquals(400, r.status(), () -> b + " → " + r.body());
            err(r, 400);
        }
    }

    @Test
    void outOfRangeTimeoutsTemplatesAndLimitsAre400() {
        for (Object t : List.of(0, -1, 1_000_000_000, 86_401, 1L << 40, Long.MAX_VALUE)) {
            RawClient.Response r = create(body("templateID", "base", "timeout", t));
            assertEquals(400, r.status(), () -> "timeout " + t + " → " + r.body());
            err(r, 400);
            // 0 or less ends a running sandbox at once, as E2B's API does (ControlPlaneIT): not bad input there.
            if (((Number) t).longValue() > 0) err(c.call("POST", "/sandboxes/" + box.id() + "/timeout", body("timeout", t)), 400);
        }
        err(c.call("POST", "/sandboxes/" + box.id() + "/timeout", body()), 400);
        for (String tpl : List.of("no-such-template", "../../etc", "base/../../x", "", "x".repeat(10_000), "bäse", "base\u0000")) {
            RawClient.Response r = create(body("templateID", tpl));
            if (tpl.isEmpty()) {
                // An empty template name means the default, as an absent one does.
                assertTrue(r.status() == 201 || r.status() == 400, r.body());
                continue;
            }
            assertEquals(400, r.status(), () -> "template " + tpl + " → " + r.body());
            err(r, 400);
        }
        err(create(body("templateID", "base", "runtime", "no-such-runtime")), 400);
        for (Map<String, Object> limits : List.of(
                Map.<String, Object>of("memoryMB", 1_000_000),
                Map.<String, Object>of("memoryMB", 1),
                Map.<String, Object>of("memoryMB", -512),
                Map.<String, Object>of("cpus", 64),
                Map.<String, Object>of("cpus", 0),
                Map.<String, Object>of("cpus", -1),
                Map.<String, Object>of("pids", 10_000_000),
                Map.<String, Object>of("diskMB", 100_000_000),
                Map.<String, Object>of("outputMB", 1_000_000),
                Map.<String, Object>of("commandTimeoutSeconds", 10_000_000),
                Map.<String, Object>of("memoryMB", 1L << 40),
                Map.<String, Object>of("noSuchLimit", 1))) {
            RawClient.Response r = create(body("templateID", "base", "limits", limits));
            assertEquals(400, r.status(), () -> "limits " + limits + " → " + r.body());
            err(r, 400);
        }
        // Too many or too long metadata entries.
        Map<String, String> many = new HashMap<>();
        for (int i = 0; i < 1000; i++) many.put("k" + i, "v");
        err(create(body("templateID", "base", "metadata", many)), 400);
        err(create(body("templateID", "base", "metadata", Map.of("k", "v".repeat(100_000)))), 400);
        err(create(body("templateID", "base", "metadata", Map.of("bad key!", "v"))), 400);
        // Asking for a network this server cannot give is refused, not silently ignored.
        err(create(body("templateID", "base", "network", Map.of("allowOut", List.of("0.0.0.0/0")))), 400);
    }

    @Test
    void oversizedBodiesAre413() {
        byte[] big = ("{\"templateID\":\"base\",\"metadata\":{\"k\":\"" + "x".repeat(2 * 1024 * 1024) + "\"}}").getBytes();
        // With Content-Length (refused before reading) ...
        RawResp r = raw(request("POST", "/sandboxes", Map.of("X-API-Key", TestServer.KEY, "Content-Type", "application/json"), big),
                Duration.ofSeconds(30));
        rawErr(r, false, 413);
        // ... and chunked, without a length (refused once past the limit).
        ByteArrayOutputStream chunked = new ByteArrayOutputStream();
        for (int off = 0; off < big.length; off += 100_000) {
            int n = Math.min(100_000, big.length - off);
            chunked.writeBytes((Integer.toHexString(n) + "\r\n").getBytes());
            chunked.write(big, off, n);
            chunked.writeBytes("\r\n".getBytes());
        }
        chunked.writeBytes("0\r\n\r\n".getBytes());
        RawResp rc = raw(request("POST", "/v2/sandboxes", Map.of("X-API-Key", TestServer.KEY, "Content-Type", "application/json",
                "Transfer-Encoding", "chunked"), chunked.toByteArray()), Duration.ofSeconds(30));
        rawErr(rc, false, 413);
        // Through java.net.http as well (what most clients look like).
        RawClient.Response viaClient = c.call("POST", "/v2/sandboxes/" + box.id() + "/connect", big);
        err(viaClient, 413);
        // A unary RPC body over its limit: a Connect error, never resource_exhausted (that is the
        // SDK's RateLimitError) and never a 500.
        RawClient.Response rpc = c.rpc(box, "filesystem.Filesystem/Stat", ("{\"path\":\"" + "a".repeat(2 * 1024 * 1024) + "\"}"));
        assertTrue(rpc.status() >= 400 && rpc.status() < 500, rpc.status() + " " + rpc.body());
        assertTrue(CONNECT_CODES.contains(rpc.json().path("code").asText()), rpc.body());
        assertNotEquals("resource_exhausted", rpc.json().path("code").asText(), rpc.body());
        serverStillAnswers();
    }

    // ---- paths, routes, methods ----

    @Test
    void unknownSandboxIdsAre404() {
        for (String id : List.of("nosuchsandbox0000000", "a", "0", "AAAAAAAAAAAAAAAAAAAA", box.id() + "x", box.id().substring(1))) {
            err(c.call("GET", "/sandboxes/" + id, null), 404);
            err(c.call("DELETE", "/sandboxes/" + id, null), 404);
            err(c.call("POST", "/sandboxes/" + id + "/timeout", body("timeout", 10)), 404);
            err(c.call("POST", "/sandboxes/" + id + "/connect", body()), 404);
            err(c.call("POST", "/v2/sandboxes/" + id + "/connect", body()), 404);
            // In-sandbox routes for an unknown sandbox answer as E2B's proxy, 502 {code: 502}, to a
            // valid key; another sandbox's token is no credential for this id: 401, as for a live one.
            Map<String, String> h = Map.of("E2b-Sandbox-Id", id, "E2b-Sandbox-Port", "49983", "X-API-Key", TestServer.KEY,
                    "Content-Type", "application/json");
            err(c.call("POST", "/filesystem.Filesystem/Stat", body("path", "/"), h), 502);
            err(c.call("GET", "/files?path=/etc/hostname", null, h), 502);
            Map<String, String> t = Map.of("E2b-Sandbox-Id", id, "E2b-Sandbox-Port", "49983", "X-Access-Token", box.token(),
                    "Content-Type", "application/json");
            connectErr(c.call("POST", "/filesystem.Filesystem/Stat", body("path", "/"), t), 401, "unauthenticated");
            err(c.call("GET", "/files?path=/etc/hostname", null, t), 401);
        }
    }

    @Test
    void pathTricksInIdsAre404Or400NeverMore() {
        List<String> targets = List.of(
                "/sandboxes/..", "/sandboxes/../sandboxes", "/sandboxes/./" + box.id(), "/sandboxes/%2e%2e", "/sandboxes/%2e%2e/%2e%2e/etc/passwd",
                "/sandboxes/..%2f..%2fetc%2fpasswd", "/sandboxes/" + box.id() + "%2f..", "/sandboxes/%00", "/sandboxes/" + box.id() + "%00",
                "/sandboxes/%E2%98%83", "/sandboxes/%ff%fe", "/sandboxes/" + "a".repeat(4000), "/sandboxes/" + "%2e".repeat(2000),
                "/sandboxes//" + box.id(), "/sandboxes/" + box.id() + "/", "/sandboxes/" + box.id() + "/timeout/..", "/sandboxes/%",
                "/sandboxes/%zz", "/sandboxes/;" + box.id(), "/sandboxes/" + box.id() + ";x", "/sandboxes/*", "/sandboxes/%20");
        for (String t : targets) {
            for (String m : List.of("GET", "DELETE")) {
                RawResp r = rawCp(m, t);
                assertFalse(r.closed(), m + " " + t + ": connection closed without an answer");
                assertTrue(r.status() == 404 || r.status() == 400, () -> m + " " + t + " → " + r.status() + " " + r.text());
                // A target that is not URI syntax (a bad %-escape) is refused before routing, in the
                // same JSON shape as every other answer (issue 15: never the HTTP layer's HTML page).
                rawErr(r, false, 404, 400);
            }
        }
        // Raw UTF-8 bytes and control characters in the request target.
        for (String t : List.of("/sandboxes/☃", "/sandboxes/ü" + box.id(), "/sandboxes/\u00ff", "/sandboxes/a\tb")) {
            RawResp r = rawCp("GET", t);
            if (r.closed()) continue; // refusing to parse the request line is acceptable
            assertTrue(r.status() == 404 || r.status() == 400, () -> t + " → " + r.status() + " " + r.text());
            rawErr(r, false, 404, 400); // answered: in the API's JSON shape, never an HTML page
        }
        // The box is still there: no trick resolved to it and deleted it.
        assertEquals(200, c.call("GET", "/sandboxes/" + box.id(), null).status());
        // Tricks in the sandbox header.
        for (String id : List.of("..", "../" + box.id(), box.id() + "/..", "%2e%2e", "x".repeat(10_000), " ", box.id() + " x", "*")) {
            RawClient.Response r = c.call("POST", "/filesystem.Filesystem/Stat", body("path", "/"),
                    Map.of("E2b-Sandbox-Id", id, "X-Access-Token", box.token(), "Content-Type", "application/json"));
            assertTrue(r.status() == 502 || r.status() == 401 || r.status() == 404 || r.status() == 400
                    || (r.status() == 431 && id.length() > 8192), id + " → " + r.body());
            // Another sandbox's token opens nothing here: 401 in Connect's shape, as any missing credential.
            if (r.status() == 401) connectErr(r, 401, "unauthenticated");
            // One header beyond its bound (issue 15): refused before anything reads it, in Connect's shape.
            else if (r.status() == 431) connectErr(r, 431, "invalid_argument");
            else err(r, r.status());
        }
        RawResp uni = raw(request("POST", "/filesystem.Filesystem/Stat", Map.of("E2b-Sandbox-Id", "☃" + box.id(),
                "X-API-Key", TestServer.KEY, "Content-Type", "application/json"), "{\"path\":\"/\"}".getBytes()), Duration.ofSeconds(20));
        rawErr(uni, true, 502, 400, 404);
    }

    @Test
    void unknownRoutesAre404AndWrongMethods400Or405() {
        for (String p : List.of("/", "/nope", "/v3/sandboxes", "/sandboxes/" + box.id() + "/nope", "/sandboxes/" + box.id() + "/a/b",
                "/v2/sandboxes/" + box.id(), "/v2/sandboxes/" + box.id() + "/nope", "/admin/../sandboxes", "/SANDBOXES")) {
            err(c.call("GET", p, null), 404);
            err(c.call("POST", p, body()), 404);
        }
        // envd routes that do not exist
        err(c.call("GET", "/nope", null, c.envd(box)), 404);
        err(c.call("GET", "/files/x", null, c.envd(box)), 404);
        for (String[] mp : new String[][] {
                {"PUT", "/sandboxes"}, {"DELETE", "/sandboxes"}, {"PATCH", "/v2/sandboxes"}, {"DELETE", "/v2/sandboxes"},
                {"PUT", "/sandboxes/" + box.id()}, {"POST", "/sandboxes/" + box.id()}, {"PATCH", "/sandboxes/" + box.id()},
                {"GET", "/sandboxes/" + box.id() + "/timeout"}, {"DELETE", "/sandboxes/" + box.id() + "/timeout"},
                {"GET", "/sandboxes/" + box.id() + "/connect"}, {"GET", "/v2/sandboxes/" + box.id() + "/connect"}}) {
            RawClient.Response r = c.call(mp[0], mp[1], mp[0].equals("GET") || mp[0].equals("DELETE") ? null : body());
            assertTrue(r.status() == 400 || r.status() == 405, () -> mp[0] + " " + mp[1] + " → " + r.status() + " " + r.body());
            err(r, r.status());
        }
        assertEquals(200, c.call("GET", "/sandboxes/" + box.id(), null).status(), "a wrong method did not delete the box");
        for (String[] mp : new String[][] {{"GET", "/process.Process/List"}, {"PUT", "/filesystem.Filesystem/Stat"},
                {"DELETE", "/process.Process/Start"}}) {
            RawClient.Response r = c.call(mp[0], mp[1], mp[0].equals("PUT") ? body() : null, c.envd(box));
            assertTrue(r.status() == 400 || r.status() == 405, () -> mp[0] + " " + mp[1] + " → " + r.body());
            assertTrue(CONNECT_CODES.contains(r.json().path("code").asText()) || r.json().path("code").asInt() == r.status(), r.body());
        }
        for (String m : List.of("PUT", "DELETE", "PATCH")) {
            RawClient.Response r = c.call(m, "/files?path=/tmp/x", m.equals("DELETE") ? null : "x".getBytes(), c.envd(box));
            assertTrue(r.status() == 400 || r.status() == 405, m + " /files → " + r.body());
            err(r, r.status());
        }
        // Unknown RPCs: not_found, for unary and streaming content types alike.
        // An unknown service is an unknown route: 404 in either error shape.
        RawClient.Response unknownService = c.rpc(box, "foo.Bar/Baz", body());
        assertEquals(404, unknownService.status(), unknownService.body());
        assertTrue("not_found".equals(unknownService.json().path("code").asText()) || unknownService.json().path("code").asInt() == 404,
                unknownService.body());
        for (String rpc : List.of("process.Process/Nope", "filesystem.Filesystem/Nope", "process.Process",
                "process.Process/", "filesystem.Filesystem/stat", "process.Process/Start/extra")) {
            connectErr(c.rpc(box, rpc, body()), 404, "not_found");
        }
        RawClient.Streamed s = c.streamRaw(box, "process.Process/StartAll", RawClient.envelope(0, "{}".getBytes()), Map.of(), null);
        assertEquals("not_found", streamCode(s));
    }

    // ---- Connect envelopes and RPC fields ----

    @Test
    void badConnectEnvelopesAreErrorsNotHangs() {
        byte[] msg = "{\"process\":{\"cmd\":\"/bin/echo\",\"args\":[\"hi\"]}}".getBytes();
        byte[] good = RawClient.envelope(0, msg);
        List<byte[]> bad = new ArrayList<>();
        byte[] longer = good.clone();
        longer[4] = (byte) (msg.length + 50); // says more than follows
        bad.add(longer);
        byte[] shorter = good.clone();
        shorter[4] = (byte) (msg.length - 10); // says less than follows
        bad.add(shorter);
        byte[] huge = good.clone();
        huge[1] = 0x7f; // says 2 GB
        bad.add(huge);
        bad.add(new byte[] {0, 0, 0});
        bad.add(new byte[0]);
        bad.add(RawClient.envelope(1, msg)); // compressed flag
        bad.add(RawClient.envelope(2, msg)); // an end-stream frame as the request
        bad.add(RawClient.envelope(0, "not json at all".getBytes()));
        bad.add(RawClient.envelope(0, "[1,2]".getBytes()));
        bad.add(RawClient.envelope(0, new byte[0]));
        bad.add(msg); // JSON without an envelope
        byte[] two = Arrays.copyOf(good, good.length * 2); // two messages
        System.arraycopy(good, 0, two, good.length, good.length);
        bad.add(two);
        for (byte[] b : bad) {
            for (String rpc : List.of("process.Process/Start", "process.Process/Connect")) {
                CompletableFuture<RawClient.Streamed> f = CompletableFuture.supplyAsync(() -> c.streamRaw(box, rpc, b, Map.of(), null));
                RawClient.Streamed s;
                try {
                    s = f.get(20, TimeUnit.SECONDS);
                } catch (Exception e) {
                    throw new AssertionError(rpc + " with a bad envelope of " + b.length + " bytes did not answer: " + e, e);
                }
                streamErr(s);
            }
        }
        // A stream request with a unary content type is refused as well, rather than misread.
        RawClient.Streamed unary = c.streamRaw(box, "process.Process/Start", msg, Map.of("Content-Type", "application/json"), null);
        assertTrue(unary.status() < 500, String.valueOf(unary.errorBody()));
        serverStillAnswers();
    }

    @Test
    void nulBytesInPathsAre400() {
        for (String path : List.of("/tmp/a\u0000b", "\u0000", "/home/user/x\u0000/../../etc/passwd")) {
            connectErr(c.rpc(box, "filesystem.Filesystem/Stat", body("path", path)), 400, "invalid_argument");
            connectErr(c.rpc(box, "filesystem.Filesystem/ListDir", body("path", path, "depth", 1)), 400, "invalid_argument");
            connectErr(c.rpc(box, "filesystem.Filesystem/MakeDir", body("path", path)), 400, "invalid_argument");
            connectErr(c.rpc(box, "filesystem.Filesystem/Remove", body("path", path)), 400, "invalid_argument");
            connectErr(c.rpc(box, "filesystem.Filesystem/Move", body("source", path, "destination", "/tmp/d")), 400, "invalid_argument");
            connectErr(c.rpc(box, "filesystem.Filesystem/Move", body("source", "/tmp", "destination", path)), 400, "invalid_argument");
            String q = URLEncoder.encode(path, StandardCharsets.UTF_8);
            err(c.call("GET", "/files?path=" + q, null, c.envd(box)), 400);
            err(c.upload(box, path, "x".getBytes()), 400);
        }
        // In a multipart filename too.
        byte[] mp = ("--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/tmp/nul\u0000x\"\r\n\r\nx\r\n--B--\r\n")
                .getBytes(StandardCharsets.UTF_8);
        err(c.call("POST", "/files", mp, withHeader(c.envd(box), "Content-Type", "multipart/form-data; boundary=B")), 400);
        // In commands: cwd, args, env.
        for (Map<String, Object> p : List.of(
                Map.<String, Object>of("cmd", "/bin/echo", "args", List.of("a\u0000b")),
                Map.<String, Object>of("cmd", "/bin/ec\u0000ho"),
                Map.<String, Object>of("cmd", "/bin/pwd", "cwd", "/tmp\u0000"),
                Map.<String, Object>of("cmd", "/bin/env", "envs", Map.of("A", "x\u0000y")),
                Map.<String, Object>of("cmd", "/bin/env", "envs", Map.of("A=B", "x")),
                Map.<String, Object>of("cmd", ""),
                Map.<String, Object>of("cmd", "/bin/echo", "args", "not-a-list"),
                Map.<String, Object>of("cmd", "/bin/echo", "args", List.of(1, 2)),
                Map.<String, Object>of("cmd", 5))) {
            RawClient.Streamed s = c.streamLive(box, "process.Process/Start", Map.of("process", p), null);
            assertEquals("invalid_argument", streamCode(s), p.toString());
        }
        assertEquals("invalid_argument", streamCode(c.streamLive(box, "process.Process/Start", Map.of(), null)));
        assertEquals("invalid_argument", streamCode(c.streamLive(box, "process.Process/Start", Map.of("process", "echo"), null)));
        // Empty and missing paths.
        connectErr(c.rpc(box, "filesystem.Filesystem/Stat", body("path", "")), 400, "invalid_argument");
        connectErr(c.rpc(box, "filesystem.Filesystem/Stat", body()), 400, "invalid_argument");
        connectErr(c.rpc(box, "filesystem.Filesystem/Stat", body("path", 5)), 400, "invalid_argument");
        connectErr(c.rpc(box, "filesystem.Filesystem/Stat", body("path", "/" + "a".repeat(10_000))), 400, "invalid_argument");
        RawResp badEscape = raw(request("GET", "/files?path=%zz", c.envd(box), null), Duration.ofSeconds(20));
        assertEquals(400, badEscape.status(), badEscape::text);
    }

    @Test
    void hugeOrMistypedDepthIs400() {
        for (Object depth : List.of(1_000_000, Integer.MAX_VALUE, 1L << 32, (1L << 32) + 1, 1L << 40, -1, 0, "abc", "", 1.5, true,
                List.of(1), Map.of())) {
            RawClient.Response r = c.rpc(box, "filesystem.Filesystem/ListDir", body("path", "/", "depth", depth));
            assertEquals(400, r.status(), () -> "depth " + depth + " → " + r.body());
            connectErr(r, 400, "invalid_argument");
        }
        assertEquals(200, c.rpc(box, "filesystem.Filesystem/ListDir", body("path", "/home", "depth", 2)).status());
        // proto3 JSON allows an int32 as a decimal string.
        assertEquals(200, c.rpc(box, "filesystem.Filesystem/ListDir", body("path", "/home", "depth", "2")).status());
    }

    @Test
    void mistypedPidsAndSignalsAre400() {
        for (Object pid : List.of("abc", "", -5, 0, 1L << 40, 1.5, true, List.of(1), Map.of())) {
            for (String m : List.of("SendSignal", "SendInput", "CloseStdin")) {
                Map<String, Object> b = body("process", body("pid", pid), "signal", "SIGNAL_SIGKILL", "input", body("stdin", "eA=="));
                RawClient.Response r = c.rpc(box, "process.Process/" + m, b);
                assertEquals(400, r.status(), () -> m + " pid " + pid + " → " + r.body());
                connectErr(r, 400, "invalid_argument");
            }
            assertEquals("invalid_argument", streamCode(c.streamLive(box, "process.Process/Connect", body("process", body("pid", pid)), null)),
                    "Connect pid " + pid);
        }
        connectErr(c.rpc(box, "process.Process/SendSignal", body("process", body())), 400, "invalid_argument");
        connectErr(c.rpc(box, "process.Process/SendSignal", body()), 400, "invalid_argument");
        connectErr(c.rpc(box, "process.Process/SendSignal", body("process", "1")), 400, "invalid_argument");
        // Signals and input that make no sense, on a live process.
        CompletableFuture<Integer> pid = new CompletableFuture<>();
        CompletableFuture<RawClient.Streamed> run = CompletableFuture.supplyAsync(() -> c.startLive(box,
                Map.of("process", Map.of("cmd", "/bin/cat"), "stdin", true), null, f -> {
                    if ("start".equals(f.kind())) pid.complete(f.message().path("event").path("start").path("pid").asInt());
                }));
        try {
            int p = pid.get(30, TimeUnit.SECONDS);
            for (Object sig : List.of("SIGNAL_NOPE", "", "SIGKILL; rm -rf /", 99, -9)) {
                connectErr(c.rpc(box, "process.Process/SendSignal", body("process", body("pid", p), "signal", sig)), 400, "invalid_argument");
            }
            connectErr(c.rpc(box, "process.Process/SendInput", body("process", body("pid", p), "input", body("stdin", "***not base64***"))),
                    400, "invalid_argument");
            connectErr(c.rpc(box, "process.Process/SendInput", body("process", body("pid", p), "input", body())), 400, "invalid_argument");
            connectErr(c.rpc(box, "process.Process/SendInput", body("process", body("pid", p), "input", body("stdin", 5))), 400,
                    "invalid_argument");
            assertFalse(run.isDone(), "cat survived the bad calls");
        } catch (Exception e) {
            throw new AssertionError(e);
        } finally {
            pid.thenAccept(p -> c.rpc(box, "process.Process/SendSignal", body("process", body("pid", p), "signal", "SIGNAL_SIGKILL")));
        }
        RawClient.Streamed s = run.join();
        assertEquals(-1, s.end().path("exitCode").asInt());
    }

    @Test
    void badQueryParametersAre400() {
        for (String q : List.of("limit=abc", "limit=0", "limit=-1", "limit=100000000000", "limit=1.5", "state=bogus", "state=running,nope",
                "limit=%25zz", "metadata=%25zz",
                "nextToken=garbage", "nextToken=" + "z".repeat(5000), "order=sideways", "startedAfter=yesterday")) {
            RawClient.Response r = c.call("GET", "/v2/sandboxes?" + q, null);
            assertEquals(400, r.status(), () -> q + " → " + r.body());
            err(r, 400);
        }
        // Escapes that are not even valid URI syntax (java.net.URI refuses to send them).
        for (String q : List.of("limit=%zz", "metadata=%zz", "limit=%")) {
            RawResp r = rawCp("GET", "/v2/sandboxes?" + q);
            assertFalse(r.closed(), q);
            assertEquals(400, r.status(), () -> q + " → " + r.text());
        }
        // Filters that match nothing, and unknown parameters, are no error.
        for (String q : List.of("metadata=a", "metadata=%3D%3D%3D", "x=y", "template=nothing-by-this-name")) {
            RawClient.Response r = c.call("GET", "/v2/sandboxes?" + q, null);
            assertEquals(200, r.status(), () -> q + " → " + r.body());
            assertTrue(r.json().isArray());
        }
    }

    // ---- oversized headers and slow clients ----

    @Test
    void hugeHeadersAreRefusedWithoutHangingOr500() {
        String tenMb = "a".repeat(10 * 1024 * 1024);
        RawResp big = raw(request("GET", "/v2/sandboxes", Map.of("X-API-Key", TestServer.KEY, "X-Big", tenMb), null), Duration.ofSeconds(30));
        assertTrue(big.closed() || (big.status() >= 400 && big.status() < 500), () -> "10 MB header → " + big.status());
        RawResp bigKey = raw(request("GET", "/v2/sandboxes", Map.of("X-API-Key", tenMb), null), Duration.ofSeconds(30));
        assertTrue(bigKey.closed() || (bigKey.status() >= 400 && bigKey.status() < 500), () -> "10 MB key → " + bigKey.status());
        RawResp bigSandbox = raw(request("POST", "/filesystem.Filesystem/Stat", Map.of("E2b-Sandbox-Id", tenMb,
                "X-Access-Token", box.token(), "Content-Type", "application/json"), "{\"path\":\"/\"}".getBytes()), Duration.ofSeconds(30));
        assertTrue(bigSandbox.closed() || (bigSandbox.status() >= 400 && bigSandbox.status() < 500), () -> "10 MB id → " + bigSandbox.status());

        Map<String, String> many = new LinkedHashMap<>();
        many.put("X-API-Key", TestServer.KEY);
        for (int i = 0; i < 500; i++) many.put("X-H" + i, "v" + i);
        RawResp lots = raw(request("GET", "/v2/sandboxes", many, null), Duration.ofSeconds(30));
        assertTrue(lots.closed() || (lots.status() >= 200 && lots.status() < 500), () -> "500 headers → " + lots.status());

        // A 1 MB URL.
        RawResp longUrl = rawCp("GET", "/sandboxes/" + "b".repeat(1024 * 1024));
        assertTrue(longUrl.closed() || (longUrl.status() >= 400 && longUrl.status() < 500), () -> "1 MB URL → " + longUrl.status());
        // Malformed framing headers.
        for (Map<String, String> h : List.of(Map.of("Content-Length", "abc"), Map.of("Content-Length", "-5"),
                Map.of("Content-Length", "99999999999999999999"), Map.of("Transfer-Encoding", "gzip, chunked, bogus"))) {
            Map<String, String> all = new LinkedHashMap<>(h);
            all.put("X-API-Key", TestServer.KEY);
            RawResp r = raw(request("POST", "/sandboxes", all, "{}".getBytes()), Duration.ofSeconds(20));
            // An unknown transfer coding is 501 by RFC 9112 §6.1 (the JDK's HTTP layer answers it before routing).
            boolean rfc501 = h.containsKey("Transfer-Encoding") && r.status() == 501;
            assertTrue(r.closed() || rfc501 || (r.status() >= 400 && r.status() < 500), () -> h + " → " + r.status() + " " + r.text());
        }
        RawResp garbage = raw("\u0000\u0001\u0002 not http at all\r\n\r\n".getBytes(), Duration.ofSeconds(20));
        assertTrue(garbage.closed() || (garbage.status() >= 400 && garbage.status() < 500), () -> "garbage → " + garbage.status());
        serverStillAnswers();
    }

    @Test
    void slowClientsDoNotBlockOthers() throws Exception {
        List<Socket> slow = new ArrayList<>();
        try {
            for (int i = 0; i < 20; i++) {
                Socket s = new Socket();
                s.connect(addr(), 5000);
                OutputStream o = s.getOutputStream();
                String half = "{\"templateID\":\"base\",\"metad";
                switch (i % 4) {
                    case 0 -> o.write(("POST /sandboxes HTTP/1.1\r\nHost: x\r\nX-API-Key: " + TestServer.KEY
                            + "\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + half).getBytes());
                    case 1 -> o.write(("POST /files?path=/tmp/slow" + i + " HTTP/1.1\r\nHost: x\r\nE2b-Sandbox-Id: " + box.id()
                            + "\r\nX-Access-Token: " + box.token() + "\r\nContent-Type: application/octet-stream\r\nContent-Length: 100000\r\n\r\n"
                            + "x".repeat(50_000)).getBytes());
                    case 2 -> o.write(("GET /v2/sandboxes HTTP/1.1\r\nHost: x\r\nX-API-Key: " + TestServer.KEY.substring(0, 10)).getBytes());
                    default -> o.write(("POST /process.Process/Start HTTP/1.1\r\nHost: x\r\nE2b-Sandbox-Id: " + box.id()
                            + "\r\nX-Access-Token: " + box.token() + "\r\nContent-Type: application/connect+json\r\nContent-Length: 500\r\n\r\n\u0000\u0000")
                            .getBytes());
                }
                o.flush();
                slow.add(s);
            }
            Thread.sleep(300);
            // Meanwhile everybody else is served promptly: control plane, commands, files, a new sandbox.
            long t0 = System.nanoTime();
            assertEquals(200, c.call("GET", "/v2/sandboxes", null).status());
            assertEquals("still here\n", c.run(box, "echo still here").stdout());
            assertEquals(200, c.upload(box, "/tmp/fast.txt", "fast".getBytes()).status());
            assertEquals("fast", new String(c.download(box, "/tmp/fast.txt").body()));
            RawClient.Box other = c.create();
            c.kill(other);
            long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
            assertTrue(ms < 15_000, "normal requests took " + ms + " ms while slow clients hung");
        } finally {
            for (Socket s : slow) s.close();
        }
        // The half-sent uploads left no file behind.
        Thread.sleep(500);
        assertEquals("none\n", c.run(box, "ls -a /tmp | grep slow || echo none").stdout());
        serverStillAnswers();
    }
}
