package dev.stockade.sdk;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.protocol.Outcome;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The SDK against an in-process stand-in that speaks the wire as docs/e2b-wire.md describes it.
 * It proves what only a live connection shows (callbacks while a command runs, timeouts, headers,
 * streamed uploads) without needing runc; the real server is exercised by the integration tests.
 */
class FakeServerTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String KEY = "e2b_0123456789abcdef";

    private HttpServer server;
    private StockadeClient client;
    private final Map<String, Handler> routes = new ConcurrentHashMap<>();
    private final List<String> seen = new CopyOnWriteArrayList<>();
    private final Map<String, Map<String, String>> headers = new ConcurrentHashMap<>();

    interface Handler {
        void handle(HttpExchange ex, byte[] body) throws Exception;
    }

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/", ex -> {
            try (ex) {
                String route = ex.getRequestMethod() + " " + ex.getRequestURI().getRawPath();
                seen.add(route + (ex.getRequestURI().getRawQuery() == null ? "" : "?" + ex.getRequestURI().getRawQuery()));
                headers.put(route, Map.of(
                        "key", String.valueOf(ex.getRequestHeaders().getFirst("X-API-Key")),
                        "sandbox", String.valueOf(ex.getRequestHeaders().getFirst("E2b-Sandbox-Id")),
                        "port", String.valueOf(ex.getRequestHeaders().getFirst("E2b-Sandbox-Port")),
                        "token", String.valueOf(ex.getRequestHeaders().getFirst("X-Access-Token")),
                        "auth", String.valueOf(ex.getRequestHeaders().getFirst("Authorization")),
                        "type", String.valueOf(ex.getRequestHeaders().getFirst("Content-Type"))));
                byte[] body = ex.getRequestBody().readAllBytes();
                Handler h = routes.get(route);
                if (h == null) {
                    json(ex, 404, "{\"code\":404,\"message\":\"no route " + route + "\"}");
                    return;
                }
                h.handle(ex, body);
            } catch (IOException e) {
                // the client went away (timeouts, disconnects): expected in some tests
            } catch (Exception e) {
                e.printStackTrace();
            }
        });
        server.start();
        client = StockadeClient.builder()
                .apiUrl("http://127.0.0.1:" + server.getAddress().getPort() + "/")
                .apiKey(KEY)
                .requestTimeout(Duration.ofSeconds(10))
                .build();
        routes.put("POST /sandboxes", (ex, body) -> json(ex, 201,
                "{\"sandboxID\":\"sb1\",\"templateID\":\"base\",\"envdVersion\":\"0.5.7\",\"envdAccessToken\":\"tok\"}"));
        routes.put("DELETE /sandboxes/sb1", (ex, body) -> {
            ex.sendResponseHeaders(204, -1);
        });
    }

    @AfterEach
    void stop() {
        client.close();
        server.stop(0);
    }

    private static void json(HttpExchange ex, int status, String body) throws IOException {
        byte[] b = body.getBytes(StandardCharsets.UTF_8);
        ex.getResponseHeaders().set("Content-Type", "application/json");
        ex.sendResponseHeaders(status, b.length);
        ex.getResponseBody().write(b);
    }

    private static void frame(OutputStream out, int flags, String json) throws IOException {
        byte[] b = json.getBytes(StandardCharsets.UTF_8);
        out.write(ByteBuffer.allocate(5).put((byte) flags).putInt(b.length).array());
        out.write(b);
        out.flush();
    }

    private static String data(String stream, String text) {
        return "{\"event\":{\"data\":{\"" + stream + "\":\""
                + Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.UTF_8)) + "\"}}}";
    }

    private static JsonNode envelopeJson(byte[] body) throws IOException {
        assertEquals(0, body[0]);
        int len = ByteBuffer.wrap(body, 1, 4).getInt();
        assertEquals(body.length - 5, len);
        return JSON.readTree(new ByteArrayInputStream(body, 5, len));
    }

    @Test
    void callbacksFireWhileTheCommandRuns() throws Exception {
        CountDownLatch firstSeen = new CountDownLatch(1);
        List<JsonNode> requests = new ArrayList<>();
        routes.put("POST /process.Process/Start", (ex, body) -> {
            requests.add(envelopeJson(body));
            ex.getResponseHeaders().set("Content-Type", "application/connect+json");
            ex.sendResponseHeaders(200, 0);
            OutputStream out = ex.getResponseBody();
            frame(out, 0, "{\"event\":{\"start\":{\"pid\":12}}}");
            frame(out, 0, data("stdout", "first\n"));
            frame(out, 0, "{\"event\":{\"keepalive\":{}}}");
            // The command "runs on" until the client has shown the first line.
            boolean shown = firstSeen.await(10, TimeUnit.SECONDS);
            frame(out, 0, data("stderr", shown ? "warn\n" : "never shown\n"));
            frame(out, 0, data("stdout", "second\n"));
            frame(out, 0, "{\"event\":{\"end\":{\"exited\":true,\"status\":\"exit status 0\",\"outcome\":\"exited\"}}}");
            frame(out, 2, "{}");
        });
        List<String> events = new CopyOnWriteArrayList<>();
        try (Sandbox sandbox = client.create()) {
            CommandResult r = sandbox.commands().run("echo hi", RunOptions.builder()
                    .cwd("/tmp")
                    .env("A", "1")
                    .user("root")
                    .onStdout(s -> {
                        events.add("out:" + s);
                        if (s.contains("first")) firstSeen.countDown();
                    })
                    .onStderr(s -> events.add("err:" + s))
                    .build());
            assertEquals(0, r.exitCode());
            assertEquals("first\nsecond\n", r.stdout());
            assertEquals("warn\n", r.stderr());
            assertEquals(Outcome.EXITED, r.outcome());
            assertEquals(List.of("out:first\n", "err:warn\n", "out:second\n"), events);
        }
        JsonNode req = requests.getFirst();
        assertEquals("/bin/bash", req.path("process").path("cmd").asText());
        assertEquals("[\"-l\",\"-c\",\"echo hi\"]", req.path("process").path("args").toString());
        assertEquals("/tmp", req.path("process").path("cwd").asText());
        assertEquals("1", req.path("process").path("envs").path("A").asText());
        assertFalse(req.path("stdin").asBoolean());
        Map<String, String> h = headers.get("POST /process.Process/Start");
        assertEquals("sb1", h.get("sandbox"));
        assertEquals("49983", h.get("port"));
        assertEquals("tok", h.get("token"));
        assertEquals("null", h.get("key"), "the control-plane key never goes to sandbox routes");
        assertEquals("application/connect+json", h.get("type"));
        assertEquals("Basic " + Base64.getEncoder().encodeToString("root:".getBytes()), h.get("auth"));
        assertEquals(KEY, headers.get("POST /sandboxes").get("key"));
        assertTrue(seen.contains("DELETE /sandboxes/sb1"), "close() kills the sandbox: " + seen);
    }

    @Test
    void nonZeroExitThrowsWithTheResultInside() throws Exception {
        routes.put("POST /process.Process/Start", (ex, body) -> {
            ex.sendResponseHeaders(200, 0);
            OutputStream out = ex.getResponseBody();
            frame(out, 0, "{\"event\":{\"start\":{\"pid\":5}}}");
            frame(out, 0, data("stderr", "Killed\n"));
            frame(out, 0, "{\"event\":{\"end\":{\"exitCode\":137,\"status\":\"signal: killed\",\"error\":\"signal: killed\","
                    + "\"outcome\":\"oom_killed\",\"reason\":\"memory limit of 64 MiB reached\"}}}");
            frame(out, 2, "{}");
        });
        Sandbox sandbox = client.create();
        CommandExitException e = assertThrows(CommandExitException.class, () -> sandbox.commands().run("python3 big.py"));
        assertEquals(137, e.exitCode());
        assertEquals("Killed\n", e.stderr());
        assertEquals(Outcome.OOM_KILLED, e.result().outcome());
        assertTrue(e.getMessage().contains("memory limit of 64 MiB reached"), e.getMessage());
    }

    @Test
    void runKillsTheCommandWhenItsTimeoutPasses() throws Exception {
        CountDownLatch killed = new CountDownLatch(1);
        routes.put("POST /process.Process/Start", (ex, body) -> {
            ex.sendResponseHeaders(200, 0);
            OutputStream out = ex.getResponseBody();
            frame(out, 0, "{\"event\":{\"start\":{\"pid\":77}}}");
            killed.await(10, TimeUnit.SECONDS);
        });
        List<JsonNode> signals = new CopyOnWriteArrayList<>();
        routes.put("POST /process.Process/SendSignal", (ex, body) -> {
            signals.add(JSON.readTree(body));
            killed.countDown();
            json(ex, 200, "{}");
        });
        Sandbox sandbox = client.create();
        long t0 = System.nanoTime();
        TimeoutException e = assertThrows(TimeoutException.class, () -> sandbox.commands().run("sleep 100",
                RunOptions.builder().timeout(Duration.ofMillis(300)).build()));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms < 5000, "took " + ms + " ms");
        assertTrue(e.getMessage().contains("killed"), e.getMessage());
        assertEquals("{\"process\":{\"pid\":77},\"signal\":\"SIGNAL_SIGKILL\"}", signals.getFirst().toString());
        assertEquals("sb1", headers.get("POST /process.Process/SendSignal").get("sandbox"));
    }

    @Test
    void backgroundCommandWithStdin() throws Exception {
        CountDownLatch closed = new CountDownLatch(1);
        List<JsonNode> inputs = new CopyOnWriteArrayList<>();
        routes.put("POST /process.Process/Start", (ex, body) -> {
            assertTrue(envelopeJson(body).path("stdin").asBoolean());
            ex.sendResponseHeaders(200, 0);
            OutputStream out = ex.getResponseBody();
            frame(out, 0, "{\"event\":{\"start\":{\"pid\":31}}}");
            closed.await(10, TimeUnit.SECONDS);
            frame(out, 0, data("stdout", "got it"));
            frame(out, 0, "{\"event\":{\"end\":{\"exited\":true}}}");
            frame(out, 2, "{}");
        });
        routes.put("POST /process.Process/SendInput", (ex, body) -> {
            inputs.add(JSON.readTree(body));
            json(ex, 200, "{}");
        });
        routes.put("POST /process.Process/CloseStdin", (ex, body) -> {
            closed.countDown();
            json(ex, 200, "{}");
        });
        routes.put("POST /process.Process/List", (ex, body) -> json(ex, 200,
                "{\"processes\":[{\"config\":{\"cmd\":\"/bin/bash\",\"args\":[\"-l\",\"-c\",\"cat\"],\"envs\":{}},\"pid\":31}]}"));
        Sandbox sandbox = client.create();
        CommandHandle h = sandbox.commands().start("cat", RunOptions.builder().stdin(true).build());
        assertEquals(31, h.pid());
        List<ProcessInfo> procs = sandbox.commands().list();
        assertEquals(31, procs.getFirst().pid());
        assertEquals(List.of("-l", "-c", "cat"), procs.getFirst().args());
        h.sendStdin("héllo");
        h.closeStdin();
        CommandResult r = h.waitFor();
        assertEquals("got it", r.stdout());
        assertEquals("{\"process\":{\"pid\":31},\"input\":{\"stdin\":\""
                + Base64.getEncoder().encodeToString("héllo".getBytes(StandardCharsets.UTF_8)) + "\"}}",
                inputs.getFirst().toString());
        assertEquals("application/json", headers.get("POST /process.Process/SendInput").get("type"));
    }

    @Test
    void disconnectStopsCallbacksAndCallbackFailuresSurface() throws Exception {
        CountDownLatch disconnected = new CountDownLatch(1);
        routes.put("POST /process.Process/Start", (ex, body) -> {
            ex.sendResponseHeaders(200, 0);
            OutputStream out = ex.getResponseBody();
            frame(out, 0, "{\"event\":{\"start\":{\"pid\":8}}}");
            frame(out, 0, data("stdout", "one"));
            disconnected.await(10, TimeUnit.SECONDS);
            frame(out, 0, data("stdout", "two"));
            frame(out, 0, "{\"event\":{\"end\":{\"exited\":true}}}");
            frame(out, 2, "{}");
        });
        Sandbox sandbox = client.create();
        List<String> got = new CopyOnWriteArrayList<>();
        CountDownLatch first = new CountDownLatch(1);
        CommandHandle h = sandbox.commands().start("x", RunOptions.builder().onStdout(s -> {
            got.add(s);
            first.countDown();
        }).build());
        assertTrue(first.await(10, TimeUnit.SECONDS));
        h.disconnect();
        disconnected.countDown();
        SandboxException e = assertThrows(SandboxException.class, h::waitFor);
        assertTrue(e.getMessage().contains("disconnect"), e.getMessage());
        assertEquals(List.of("one"), got);

        IllegalStateException boom = new IllegalStateException("boom");
        routes.put("POST /process.Process/Start", (ex, body) -> {
            ex.sendResponseHeaders(200, 0);
            OutputStream out = ex.getResponseBody();
            frame(out, 0, "{\"event\":{\"start\":{\"pid\":9}}}");
            frame(out, 0, data("stdout", "x"));
            frame(out, 0, "{\"event\":{\"end\":{\"exited\":true}}}");
            frame(out, 2, "{}");
        });
        routes.put("POST /process.Process/SendSignal", (ex, body) -> json(ex, 200, "{}"));
        SandboxException cb = assertThrows(SandboxException.class, () -> sandbox.commands().run("x",
                RunOptions.builder().onStdout(s -> {
                    throw boom;
                }).build()));
        Throwable root = cb;
        while (root.getCause() != null) root = root.getCause();
        assertEquals(boom, root);
    }

    @Test
    void streamErrorsBeforeTheStartAreTyped() {
        routes.put("POST /process.Process/Start", (ex, body) -> {
            ex.sendResponseHeaders(200, 0);
            frame(ex.getResponseBody(), 2, "{\"error\":{\"code\":\"invalid_argument\",\"message\":\"cwd does not exist\"}}");
        });
        Sandbox sandbox = client.create();
        InvalidArgumentException e = assertThrows(InvalidArgumentException.class,
                () -> sandbox.commands().run("ls", RunOptions.builder().cwd("/nope").build()));
        assertTrue(e.getMessage().contains("cwd does not exist"), e.getMessage());
    }

    @Test
    void controlPlaneErrorsAreTyped() {
        routes.put("POST /sandboxes", (ex, body) -> json(ex, 401, "{\"code\":401,\"message\":\"invalid API key\"}"));
        AuthenticationException auth = assertThrows(AuthenticationException.class, client::create);
        assertEquals(401, auth.statusCode());
        routes.put("POST /sandboxes/nope/connect", (ex, body) -> json(ex, 404, "{\"code\":404,\"message\":\"sandbox nope not found\"}"));
        assertThrows(NotFoundException.class, () -> client.connect("nope"));
        routes.put("DELETE /sandboxes/gone", (ex, body) -> json(ex, 404, "{\"code\":404,\"message\":\"not found\"}"));
        assertFalse(client.kill("gone"));
        routes.put("POST /sandboxes", (ex, body) -> json(ex, 400, "{\"code\":400,\"message\":\"memoryMB above the maximum\"}"));
        assertThrows(InvalidArgumentException.class,
                () -> client.create(CreateOptions.builder().limits(Limits.builder().memoryMB(1 << 20).build()).build()));
        client.kill("../../etc");
        assertTrue(seen.contains("DELETE /sandboxes/..%2F..%2Fetc"), seen.toString());
    }

    @Test
    void listFollowsPages() {
        routes.put("GET /v2/sandboxes", (ex, body) -> {
            String q = ex.getRequestURI().getRawQuery();
            if (q.contains("nextToken=p2")) {
                json(ex, 200, "[{\"sandboxID\":\"b\",\"templateID\":\"base\",\"state\":\"running\"}]");
            } else {
                ex.getResponseHeaders().set("X-Next-Token", "p2");
                json(ex, 200, "[{\"sandboxID\":\"a\",\"templateID\":\"base\",\"state\":\"running\"}]");
            }
        });
        assertEquals(List.of("a", "b"), client.list().stream().map(SandboxInfo::sandboxId).toList());
    }

    @Test
    void filesAreStreamedBothWays() throws Exception {
        byte[] payload = new byte[5 * 1024 * 1024 + 3];
        new java.util.Random(1).nextBytes(payload);
        Map<String, byte[]> stored = new ConcurrentHashMap<>();
        routes.put("POST /files", (ex, body) -> {
            assertEquals("application/octet-stream", ex.getRequestHeaders().getFirst("Content-Type"));
            String path = java.net.URLDecoder.decode(ex.getRequestURI().getRawQuery().replaceFirst("^path=", ""), StandardCharsets.UTF_8);
            stored.put(path, body);
            json(ex, 200, "[{\"name\":\"x.bin\",\"type\":\"file\",\"path\":\"" + path + "\"}]");
        });
        routes.put("GET /files", (ex, body) -> {
            String path = java.net.URLDecoder.decode(ex.getRequestURI().getRawQuery().replaceFirst("^path=", ""), StandardCharsets.UTF_8);
            byte[] b = stored.get(path);
            if (b == null) {
                json(ex, 404, "{\"code\":404,\"message\":\"path not found\"}");
                return;
            }
            ex.sendResponseHeaders(200, b.length);
            ex.getResponseBody().write(b);
        });
        Sandbox sandbox = client.create();
        InputStream source = new ByteArrayInputStream(payload) {
            @Override
            public void close() {
                throw new AssertionError("the SDK must not close the caller's stream");
            }
        };
        EntryInfo info = sandbox.files().write("/home/user/x y.bin", source);
        assertEquals("/home/user/x y.bin", info.path());
        assertEquals(FileType.FILE, info.type());
        assertArrayEquals(payload, sandbox.files().readBytes("/home/user/x y.bin"));
        try (InputStream in = sandbox.files().readStream("/home/user/x y.bin")) {
            assertArrayEquals(payload, in.readAllBytes());
        }
        sandbox.files().write("/home/user/t.txt", "naïve");
        assertEquals("naïve", sandbox.files().read("/home/user/t.txt"));
        assertThrows(NotFoundException.class, () -> sandbox.files().read("/nope"));
        assertTrue(seen.contains("POST /files?path=%2Fhome%2Fuser%2Fx%20y.bin"), seen.toString());
    }

    @Test
    void filesystemRpcs() {
        routes.put("POST /filesystem.Filesystem/Stat", (ex, body) -> {
            if (JSON.readTree(body).path("path").asText().equals("/missing")) {
                json(ex, 404, "{\"code\":\"not_found\",\"message\":\"no such file\"}");
            } else {
                json(ex, 200, "{\"entry\":{\"name\":\"d\",\"type\":\"FILE_TYPE_DIRECTORY\",\"path\":\"/d\"}}");
            }
        });
        routes.put("POST /filesystem.Filesystem/MakeDir", (ex, body) ->
                json(ex, 409, "{\"code\":\"already_exists\",\"message\":\"exists\"}"));
        routes.put("POST /filesystem.Filesystem/ListDir", (ex, body) -> {
            assertEquals(2, JSON.readTree(body).path("depth").asInt());
            json(ex, 200, "{\"entries\":[{\"name\":\"a\",\"type\":\"FILE_TYPE_FILE\",\"path\":\"/d/a\",\"size\":\"3\"},"
                    + "{\"name\":\"?\",\"type\":\"FILE_TYPE_UNSPECIFIED\",\"path\":\"/d/?\"}]}");
        });
        routes.put("POST /filesystem.Filesystem/Move", (ex, body) ->
                json(ex, 200, "{\"entry\":{\"name\":\"b\",\"type\":\"FILE_TYPE_FILE\",\"path\":\"/d/b\"}}"));
        routes.put("POST /filesystem.Filesystem/Remove", (ex, body) -> json(ex, 200, "{}"));
        Sandbox sandbox = client.create();
        Filesystem fs = sandbox.files();
        assertTrue(fs.exists("/d"));
        assertFalse(fs.exists("/missing"));
        assertThrows(NotFoundException.class, () -> fs.getInfo("/missing"));
        assertEquals(FileType.DIR, fs.getInfo("/d").type());
        assertFalse(fs.makeDir("/d"));
        List<EntryInfo> entries = fs.list("/d", 2);
        assertEquals(1, entries.size());
        assertEquals(3, entries.getFirst().size());
        assertThrows(InvalidArgumentException.class, () -> fs.list("/d", 0));
        assertEquals("/d/b", fs.rename("/d/a", "/d/b").path());
        fs.remove("/d/b");
        assertNull(fs.getInfo("/d").modifiedTime());
    }

    @Test
    void unreachableServerSaysSo() {
        StockadeClient dead = StockadeClient.builder().apiUrl("http://127.0.0.1:1").apiKey(KEY).build();
        SandboxException e = assertThrows(SandboxException.class, dead::create);
        assertTrue(e.getMessage().contains("cannot connect"), e.getMessage());
    }

    @Test
    void builderRefusesMissingConfiguration() {
        assertThrows(InvalidArgumentException.class, () -> StockadeClient.builder().apiUrl("ftp://x").apiKey(KEY).build());
        assertThrows(IllegalArgumentException.class, () -> StockadeClient.builder().requestTimeout(Duration.ZERO));
    }
}
