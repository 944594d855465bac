package dev.stockade.sdk.internal;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.sdk.CellFile;
import dev.stockade.protocol.Outcome;
import dev.stockade.sdk.CodeContext;
import dev.stockade.sdk.Execution;
import dev.stockade.sdk.ExecutionError;
import dev.stockade.sdk.NotFoundException;
import dev.stockade.sdk.Result;
import dev.stockade.sdk.RunCodeOptions;
import dev.stockade.sdk.SandboxException;
import dev.stockade.sdk.TimeoutException;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * The code interpreter of one sandbox, spoken as {@code @e2b/code-interpreter} speaks it: requests
 * to the server's base URL with {@code E2b-Sandbox-Id} and {@code E2b-Sandbox-Port: 49999};
 * {@code POST /execute} answers NDJSON, one event per line; {@code /contexts} is plain JSON.
 * Immutable and thread-safe; each call uses its own connection and runs on the caller's thread.
 */
public final class CodeInterpreterClient {
    public static final String PORT = "49999";
    /** How long after the cell's own timeout the SDK gives up on a server that does not end it. */
    private static final Duration GRACE = Duration.ofSeconds(30);

    private final Transport transport;
    private final String sandboxId;
    private final String accessToken;
    private final String trafficAccessToken;

    public CodeInterpreterClient(Transport transport, String sandboxId, String accessToken, String trafficAccessToken) {
        this.transport = transport;
        this.sandboxId = sandboxId;
        this.accessToken = accessToken;
        this.trafficAccessToken = trafficAccessToken;
    }

    public Execution run(String code, RunCodeOptions o) {
        Objects.requireNonNull(code, "code");
        Objects.requireNonNull(o, "options");
        ObjectNode body = Json.object();
        body.put("code", code);
        if (o.context() != null) body.put("context_id", o.context().id());
        if (!o.envs().isEmpty()) o.envs().forEach(body.putObject("env_vars")::put);
        // Stockade extension: the server interrupts the cell at this deadline (E2B's servers ignore it).
        if (!o.timeout().isZero()) body.put("timeout", o.timeout().toMillis() / 1000.0);
        String what = "running code in sandbox " + sandboxId;
        HttpRequest req = base("/execute")
                .header("Content-Type", "application/json")
                .header("Accept", "application/x-ndjson")
                .POST(HttpRequest.BodyPublishers.ofByteArray(Json.bytes(body)))
                .build();
        HttpResponse<InputStream> res = transport.sendStreaming(req, what);
        if (res.statusCode() != 200) {
            RpcError error = RpcError.fromBody(res.statusCode(), Transport.drainError(res.body()));
            if (res.statusCode() == 502) throw sandboxGone(what);
            throw error.toException(what);
        }
        Watchdog watchdog = o.timeout().isZero() ? null : new Watchdog(res.body(), o.timeout().plus(GRACE));
        try {
            return read(res.body(), o, what);
        } catch (IOException e) {
            if (watchdog != null && watchdog.fired) {
                throw new TimeoutException(what + ": the cell did not end within its " + o.timeout().toMillis()
                        + " ms timeout", 0, e);
            }
            throw new SandboxException(what + ": the connection broke before the cell ended: " + e, 0, e);
        } finally {
            if (watchdog != null) watchdog.cancel();
            try {
                res.body().close();
            } catch (IOException ignored) {
                // the connection is dropped either way
            }
        }
    }

    /** Reads NDJSON events until the body ends (which, for E2B's servers, is the end of the execution). */
    private static Execution read(InputStream in, RunCodeOptions o, String what) throws IOException {
        List<Result> results = new ArrayList<>();
        List<String> stdout = new ArrayList<>();
        List<String> stderr = new ArrayList<>();
        List<CellFile> files = new ArrayList<>();
        ExecutionError error = null;
        int count = 0;
        Outcome outcome = null;
        String reason = null;
        boolean stateLost = false;
        BufferedReader lines = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
        String line;
        while ((line = lines.readLine()) != null) {
            if (line.isBlank()) continue;
            JsonNode m = Json.parse(line.getBytes(StandardCharsets.UTF_8), what);
            switch (m.path("type").asText("")) {
                case "stdout" -> {
                    String text = m.path("text").asText("");
                    stdout.add(text);
                    call(o.onStdout(), text);
                }
                case "stderr" -> {
                    String text = m.path("text").asText("");
                    stderr.add(text);
                    call(o.onStderr(), text);
                }
                case "result" -> {
                    Result r = result(m);
                    results.add(r);
                    call(o.onResult(), r);
                }
                case "error" -> {
                    error = new ExecutionError(Json.text(m, "name"), Json.text(m, "value"), Json.text(m, "traceback"));
                    call(o.onError(), error);
                }
                case "number_of_executions" -> count = m.path("execution_count").asInt(0);
                case "end_of_execution" -> {
                    outcome = Outcome.fromWire(Json.text(m, "outcome"));
                    reason = Json.text(m, "reason");
                    stateLost = m.path("state_lost").asBoolean(false);
                    for (JsonNode f : m.path("files")) {
                        files.add(new CellFile(Json.text(f, "name"), Json.text(f, "path"), Json.number(f, "size")));
                    }
                }
                default -> {
                    // an event type this SDK does not know: ignored, as the E2B SDKs do
                }
            }
        }
        return new Execution(results, new Execution.Logs(stdout, stderr), error, count, outcome, reason, stateLost, files);
    }

    private static <T> void call(Consumer<T> callback, T value) {
        if (callback != null) callback.accept(value);
    }

    static Result result(JsonNode m) {
        return new Result(str(m, "text"), str(m, "html"), str(m, "markdown"), str(m, "svg"), str(m, "png"),
                str(m, "jpeg"), str(m, "pdf"), str(m, "latex"), jsonText(m, "json"), str(m, "javascript"),
                jsonText(m, "chart"), m.path("is_main_result").asBoolean(false));
    }

    /** A JSON-valued form (json, chart) as JSON text; null when absent. */
    private static String jsonText(JsonNode m, String field) {
        JsonNode v = m.get(field);
        return v == null || v.isNull() ? null : v.toString();
    }

    private static String str(JsonNode m, String field) {
        JsonNode v = m.get(field);
        return v == null || v.isNull() ? null : v.isTextual() ? v.asText() : v.toString();
    }

    public CodeContext createContext(String cwd) {
        ObjectNode body = Json.object().put("language", "python");
        if (cwd != null) body.put("cwd", cwd);
        JsonNode n = json("POST", "/contexts", body, "creating a code context in sandbox " + sandboxId);
        return context(n);
    }

    public List<CodeContext> listContexts() {
        JsonNode n = json("GET", "/contexts", null, "listing the code contexts of sandbox " + sandboxId);
        List<CodeContext> out = new ArrayList<>();
        for (JsonNode c : n) out.add(context(c));
        return out;
    }

    public void restartContext(String id) {
        json("POST", "/contexts/" + Transport.segment(id) + "/restart", null,
                "restarting code context " + id + " in sandbox " + sandboxId);
    }

    public void removeContext(String id) {
        json("DELETE", "/contexts/" + Transport.segment(id), null, "removing code context " + id + " in sandbox " + sandboxId);
    }

    private static CodeContext context(JsonNode n) {
        String id = Json.text(n, "id");
        if (id == null) throw new SandboxException("the server's code context names no id: " + n);
        return new CodeContext(id, Json.text(n, "language"), Json.text(n, "cwd"));
    }

    private JsonNode json(String method, String path, JsonNode body, String what) {
        HttpRequest.BodyPublisher publisher = body == null
                ? HttpRequest.BodyPublishers.noBody()
                : HttpRequest.BodyPublishers.ofByteArray(Json.bytes(body));
        HttpRequest.Builder b = base(path).method(method, publisher).header("Accept", "application/json");
        if (body != null) b.header("Content-Type", "application/json");
        HttpResponse<byte[]> res = transport.send(b.build(), what);
        if (res.statusCode() == 502) throw sandboxGone(what);
        if (res.statusCode() / 100 != 2) throw Transport.error(res.statusCode(), res.body(), what);
        byte[] bytes = res.body();
        return bytes == null || bytes.length == 0 ? Json.MAPPER.missingNode() : Json.parse(bytes, what);
    }

    private NotFoundException sandboxGone(String what) {
        return new NotFoundException(what + ": sandbox " + sandboxId + " was not found: it has ended (killed or timed"
                + " out) or never existed", 502, null);
    }

    private HttpRequest.Builder base(String path) {
        HttpRequest.Builder b = transport.sandboxRequest(path, true)
                .header("E2b-Sandbox-Id", sandboxId)
                .header("E2b-Sandbox-Port", PORT);
        if (accessToken != null) b.header("X-Access-Token", accessToken);
        if (trafficAccessToken != null) b.header("E2B-Traffic-Access-Token", trafficAccessToken);
        return b;
    }

    /** Closes the response body when the cell overstays, which unblocks the reading thread. */
    private static final class Watchdog {
        private final Thread thread;
        volatile boolean fired;

        Watchdog(InputStream body, Duration after) {
            thread = Thread.ofVirtual().name("stockade-cell-watchdog").start(() -> {
                try {
                    Thread.sleep(after);
                } catch (InterruptedException e) {
                    return;
                }
                fired = true;
                try {
                    body.close();
                } catch (IOException ignored) {
                    // closing is best effort
                }
            });
        }

        void cancel() {
            thread.interrupt();
        }
    }
}
