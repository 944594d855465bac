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
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
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
 * runCode and the code contexts against an in-process stand-in speaking the code interpreter's wire
 * (docs/e2b-wire.md §12: NDJSON from POST /execute, JSON /contexts): callbacks while the cell runs,
 * headers, the request body, Stockade's extensions, and E2B servers that send none of them.
 */
class FakeCodeServerTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private HttpServer server;
    private StockadeClient client;
    private final Map<String, FakeServerTest.Handler> routes = new ConcurrentHashMap<>();
    private final Map<String, Map<String, String>> headers = new ConcurrentHashMap<>();
    private final Map<String, byte[]> bodies = new ConcurrentHashMap<>();

    @BeforeEach
    void start() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
        server.createContext("/", ex -> {
            try (ex) {
                String route = ex.getRequestMethod() + " " + ex.getRequestURI().getRawPath();
                headers.put(route, Map.of(
                        "key", String.valueOf(ex.getRequestHeaders().getFirst("X-API-Key")),
                        "sandbox", String.valueOf(ex.getRequestHeaders().getFirst("E2b-Sandbox-Id")),
                        "port", String.valueOf(ex.getRequestHeaders().getFirst("E2b-Sandbox-Port")),
                        "token", String.valueOf(ex.getRequestHeaders().getFirst("X-Access-Token")),
                        "traffic", String.valueOf(ex.getRequestHeaders().getFirst("E2B-Traffic-Access-Token"))));
                byte[] body = ex.getRequestBody().readAllBytes();
                bodies.put(route, body);
                FakeServerTest.Handler h = routes.get(route);
                if (h == null) {
                    json(ex, 404, "{\"code\":404,\"message\":\"no route " + route + "\"}");
                    return;
                }
                h.handle(ex, body);
            } catch (IOException e) {
                // the client went away: expected in some tests
            } catch (Exception e) {
                e.printStackTrace();
            }
        });
        server.start();
        client = StockadeClient.builder()
                .apiUrl("http://127.0.0.1:" + server.getAddress().getPort())
                .apiKey("e2b_00")
                .requestTimeout(Duration.ofSeconds(10))
                .build();
        routes.put("POST /sandboxes", (ex, body) -> json(ex, 201, "{\"sandboxID\":\"sb1\",\"envdVersion\":\"0.5.7\","
                + "\"envdAccessToken\":\"tok\",\"trafficAccessToken\":\"traffic\"}"));
        routes.put("DELETE /sandboxes/sb1", (ex, body) -> ex.sendResponseHeaders(204, -1));
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

    private static void line(OutputStream out, String json) throws IOException {
        out.write((json + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    @Test
    void eventsReachTheCallbacksWhileTheCellRunsAndAddUpToTheExecution() throws Exception {
        CountDownLatch firstSeen = new CountDownLatch(1);
        String png = Base64.getEncoder().encodeToString(new byte[] {(byte) 0x89, 'P', 'N', 'G'});
        routes.put("POST /execute", (ex, body) -> {
            ex.getResponseHeaders().set("Content-Type", "application/x-ndjson");
            ex.sendResponseHeaders(200, 0);
            OutputStream out = ex.getResponseBody();
            line(out, "{\"type\":\"stdout\",\"text\":\"first\\n\",\"timestamp\":\"2026-01-01T00:00:00Z\"}");
            boolean shown = firstSeen.await(10, TimeUnit.SECONDS);
            line(out, "{\"type\":\"stderr\",\"text\":\"" + (shown ? "warn" : "never shown") + "\\n\"}");
            line(out, "{\"type\":\"result\",\"is_main_result\":false,\"text\":\"<Figure>\",\"png\":\"" + png + "\"}");
            line(out, "{\"type\":\"result\",\"is_main_result\":true,\"text\":\"42\",\"json\":{\"a\":[1,2]},\"chart\":{\"type\":\"pie\",\"title\":null,\"elements\":[]}}");
            line(out, "{\"type\":\"error\",\"name\":\"ValueError\",\"value\":\"bad\",\"traceback\":\"Traceback...\\u00e9\"}");
            line(out, "{\"type\":\"number_of_executions\",\"execution_count\":3}");
            line(out, "{\"type\":\"end_of_execution\",\"outcome\":\"error\",\"reason\":\"it raised\",\"state_lost\":false,"
                    + "\"files\":[{\"name\":\"a.csv\",\"path\":\"/home/user/a.csv\",\"size\":12}]}");
        });
        List<String> events = new CopyOnWriteArrayList<>();
        try (Sandbox sandbox = client.create()) {
            Execution e = sandbox.runCode("print('first')", RunCodeOptions.builder()
                    .context(new CodeContext("ctx1", "python", "/home/user"))
                    .env("A", "1")
                    .timeout(Duration.ofMillis(2500))
                    .onStdout(s -> {
                        events.add("out:" + s);
                        firstSeen.countDown();
                    })
                    .onStderr(s -> events.add("err:" + s))
                    .onResult(r -> events.add("result:" + r.text()))
                    .onError(err -> events.add("error:" + err.name()))
                    .build());
            assertEquals(List.of("out:first\n", "err:warn\n", "result:<Figure>", "result:42", "error:ValueError"), events);
            assertEquals("42", e.text());
            assertEquals(2, e.results().size());
            assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G'}, e.results().get(0).pngBytes());
            assertEquals(List.of("png"), e.results().get(0).formats());
            assertEquals("{\"a\":[1,2]}", e.results().get(1).json());
            assertEquals("{\"type\":\"pie\",\"title\":null,\"elements\":[]}", e.results().get(1).chart());
            assertNull(e.results().get(0).chart());
            assertTrue(e.results().get(1).isMainResult());
            assertEquals(List.of("first\n"), e.logs().stdout());
            assertEquals("warn\n", e.logs().stderrText());
            assertEquals(new ExecutionError("ValueError", "bad", "Traceback...é"), e.error());
            assertEquals(3, e.executionCount());
            assertEquals(Outcome.ERROR, e.outcome());
            assertEquals("it raised", e.reason());
            assertFalse(e.stateLost());
            assertEquals(List.of(new CellFile("a.csv", "/home/user/a.csv", 12)), e.files());
        }
        JsonNode req = JSON.readTree(bodies.get("POST /execute"));
        assertEquals("print('first')", req.path("code").asText());
        assertEquals("ctx1", req.path("context_id").asText());
        assertEquals("1", req.path("env_vars").path("A").asText());
        assertEquals(2.5, req.path("timeout").asDouble());
        assertFalse(req.has("language"), "context and language are exclusive, as in the E2B SDKs");
        Map<String, String> h = headers.get("POST /execute");
        assertEquals("sb1", h.get("sandbox"));
        assertEquals("49999", h.get("port"));
        assertEquals("tok", h.get("token"));
        assertEquals("traffic", h.get("traffic"));
        assertEquals("null", h.get("key"), "the control-plane key never goes to sandbox routes");
    }

    @Test
    void anE2bServerWithoutExtensionsEndsTheExecutionWithTheBody() throws Exception {
        routes.put("POST /execute", (ex, body) -> {
            ex.sendResponseHeaders(200, 0);
            OutputStream out = ex.getResponseBody();
            line(out, "{\"type\":\"result\",\"is_main_result\":true,\"text\":\"2\"}");
            line(out, "");
            line(out, "{\"type\":\"something_new\"}");
            line(out, "{\"type\":\"number_of_executions\",\"execution_count\":1}");
        });
        Sandbox sandbox = client.create();
        Execution e = sandbox.runCode("1 + 1");
        assertEquals("2", e.text());
        assertEquals(1, e.executionCount());
        assertNull(e.outcome());
        assertNull(e.error());
        assertEquals(List.of(), e.files());
        JsonNode req = JSON.readTree(bodies.get("POST /execute"));
        assertEquals(60.0, req.path("timeout").asDouble(), "the default timeout travels as the extension field");
    }

    @Test
    void errorsMapToTheSdksExceptions() {
        routes.put("POST /execute", (ex, body) -> json(ex, 404, "{\"code\":404,\"message\":\"context nope not found\"}"));
        routes.put("POST /contexts", (ex, body) -> json(ex, 400, "{\"code\":400,\"message\":\"language 'r' is not available\"}"));
        routes.put("GET /contexts", (ex, body) -> json(ex, 502, "{\"code\":502,\"message\":\"The sandbox was not found\"}"));
        Sandbox sandbox = client.create();
        NotFoundException nf = assertThrows(NotFoundException.class, () -> sandbox.runCode("1",
                RunCodeOptions.builder().context(new CodeContext("nope", "python", "/")).build()));
        assertTrue(nf.getMessage().contains("context nope not found"), nf.getMessage());
        assertThrows(InvalidArgumentException.class, sandbox::createCodeContext);
        NotFoundException gone = assertThrows(NotFoundException.class, sandbox::listCodeContexts);
        assertEquals(502, gone.statusCode());
    }

    @Test
    void contextsAreCreatedListedRestartedAndRemoved() throws Exception {
        routes.put("POST /contexts", (ex, body) -> json(ex, 200, "{\"id\":\"c1\",\"language\":\"python\",\"cwd\":\"/tmp\"}"));
        routes.put("GET /contexts", (ex, body) -> json(ex, 200, "[{\"id\":\"default\",\"language\":\"python\",\"cwd\":\"/home/user\"},"
                + "{\"id\":\"c1\",\"language\":\"python\",\"cwd\":\"/tmp\"}]"));
        routes.put("POST /contexts/c1/restart", (ex, body) -> ex.sendResponseHeaders(204, -1));
        routes.put("DELETE /contexts/c1", (ex, body) -> ex.sendResponseHeaders(200, -1));
        Sandbox sandbox = client.create();
        CodeContext c = sandbox.createCodeContext("/tmp");
        assertEquals(new CodeContext("c1", "python", "/tmp"), c);
        JsonNode req = JSON.readTree(bodies.get("POST /contexts"));
        assertEquals("python", req.path("language").asText());
        assertEquals("/tmp", req.path("cwd").asText());
        assertEquals(List.of("default", "c1"), sandbox.listCodeContexts().stream().map(CodeContext::id).toList());
        sandbox.restartCodeContext(c);
        sandbox.removeCodeContext("c1");
        assertEquals("traffic", headers.get("DELETE /contexts/c1").get("traffic"));
        assertEquals("49999", headers.get("POST /contexts/c1/restart").get("port"));
    }
}
