package dev.stockade.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;

/**
 * A deliberately plain client of Stockade's wire protocol (E2B's REST + Connect-JSON), written from
 * the protocol, not from any SDK: integration tests use it to drive the server byte by byte and to
 * send what no SDK would (bad input). Part of the conformance kit; server-level tests use it too.
 */
public final class RawClient {
    public static final ObjectMapper JSON = new ObjectMapper();
    public final URI base;
    public final String key;
    public final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();

    public RawClient(URI base, String key) {
        this.base = base;
        this.key = key;
    }

    public record Response(int status, JsonNode json, String body, java.net.http.HttpHeaders headers) {}

    /** A sandbox as create returns it: id and access token. */
    public record Box(String id, String token) {}

    public Response call(String method, String path, Object body) {
        return call(method, path, body, Map.of("X-API-Key", key));
    }

    public Response call(String method, String path, Object body, Map<String, String> headers) {
        try {
            byte[] b = body == null ? new byte[0]
                    : body instanceof byte[] raw ? raw
                    : body instanceof String s ? s.getBytes(StandardCharsets.UTF_8) : JSON.writeValueAsBytes(body);
            HttpRequest.Builder rb = HttpRequest.newBuilder(base.resolve(path)).timeout(Duration.ofSeconds(120))
                    .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofByteArray(b));
            if (body != null && !headers.containsKey("Content-Type")) rb.header("Content-Type", "application/json");
            headers.forEach(rb::header);
            HttpResponse<byte[]> r = http.send(rb.build(), HttpResponse.BodyHandlers.ofByteArray());
            String text = new String(r.body(), StandardCharsets.UTF_8);
            JsonNode json = null;
            try {
                if (!text.isBlank()) json = JSON.readTree(text);
            } catch (IOException notJson) {
                // left null
            }
            if (r.statusCode() >= 400) ErrorTexts.seen(base, method + " " + path, text);
            return new Response(r.statusCode(), json, text, r.headers());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    public Box create() {
        return create(Map.of("templateID", "base", "timeout", 120));
    }

    public Box create(Map<String, Object> body) {
        Response r = call("POST", "/sandboxes", body);
        if (r.status() != 201) throw new IllegalStateException("create failed: " + r.status() + " " + r.body());
        return new Box(r.json().get("sandboxID").asText(), r.json().get("envdAccessToken").asText());
    }

    public void kill(Box b) {
        call("DELETE", "/sandboxes/" + b.id(), null);
    }

    public Map<String, String> envd(Box b) {
        return Map.of("E2b-Sandbox-Id", b.id(), "E2b-Sandbox-Port", "49983", "X-Access-Token", b.token());
    }

    public Response rpc(Box b, String method, Object body) {
        Map<String, String> h = new java.util.HashMap<>(envd(b));
        h.put("Content-Type", "application/json");
        return call("POST", "/" + method, body, h);
    }

    /** The result of a command streamed through process.Process/Start. */
    public record Run(int pid, String stdout, String stderr, JsonNode end, List<JsonNode> events, JsonNode error) {
        public int exitCode() {
            return end == null ? Integer.MIN_VALUE : end.path("exitCode").asInt();
        }

        public String outcome() {
            return end == null ? null : end.path("outcome").asText(null);
        }
    }

    public Run run(Box b, String cmd) {
        return start(b, Map.of("process", Map.of("cmd", "/bin/bash", "args", List.of("-l", "-c", cmd))), null);
    }

    public Run run(Box b, String cmd, String user) {
        return start(b, Map.of("process", Map.of("cmd", "/bin/bash", "args", List.of("-l", "-c", cmd))), user);
    }

    public Run start(Box b, Object request, String user) {
        return stream(b, "process.Process/Start", request, user);
    }

    /** Calls a server-streaming Connect RPC and collects its events until the end of the stream. */
    public Run stream(Box b, String rpc, Object request, String user) {
        try {
            byte[] msg = JSON.writeValueAsBytes(request);
            byte[] env = new byte[5 + msg.length];
            env[1] = (byte) (msg.length >>> 24);
            env[2] = (byte) (msg.length >>> 16);
            env[3] = (byte) (msg.length >>> 8);
            env[4] = (byte) msg.length;
            System.arraycopy(msg, 0, env, 5, msg.length);
            HttpRequest.Builder rb = HttpRequest.newBuilder(base.resolve("/" + rpc))
                    .timeout(Duration.ofSeconds(300))
                    .header("Content-Type", "application/connect+json")
                    .POST(HttpRequest.BodyPublishers.ofByteArray(env));
            envd(b).forEach(rb::header);
            if (user != null) {
                rb.header("Authorization", "Basic " + Base64.getEncoder().encodeToString((user + ":").getBytes()));
            }
            HttpResponse<InputStream> r = http.send(rb.build(), HttpResponse.BodyHandlers.ofInputStream());
            if (r.statusCode() != 200) {
                // Refused before the stream began (the sandbox is gone, the request is bad): the JSON error body.
                String text;
                try (InputStream in = r.body()) {
                    text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
                }
                ErrorTexts.seen(base, rpc, text);
                JsonNode error;
                try {
                    error = JSON.readTree(text);
                } catch (IOException notJson) {
                    error = JSON.getNodeFactory().textNode(text);
                }
                return new Run(-1, "", "", null, List.of(), error);
            }
            List<JsonNode> events = new ArrayList<>();
            ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
            int pid = -1;
            JsonNode end = null, error = null;
            try (DataInputStream in = new DataInputStream(r.body())) {
                while (true) {
                    int flags;
                    try {
                        flags = in.readUnsignedByte();
                    } catch (EOFException e) {
                        break;
                    }
                    int len = in.readInt();
                    byte[] payload = in.readNBytes(len);
                    JsonNode m = JSON.readTree(payload);
                    if ((flags & 2) != 0) {
                        if (m.has("error")) error = m.get("error");
                        if (error != null) ErrorTexts.seen(base, rpc + " end of stream", error.toString());
                        break;
                    }
                    JsonNode ev = m.get("event");
                    events.add(ev);
                    if (ev.has("start")) pid = ev.get("start").get("pid").asInt();
                    if (ev.has("data")) {
                        JsonNode d = ev.get("data");
                        if (d.has("stdout")) out.write(Base64.getDecoder().decode(d.get("stdout").asText()));
                        if (d.has("stderr")) err.write(Base64.getDecoder().decode(d.get("stderr").asText()));
                    }
                    if (ev.has("end")) end = ev.get("end");
                }
            }
            return new Run(pid, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8), end, events, error);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    public Response upload(Box b, String path, byte[] content) {
        Map<String, String> h = new java.util.HashMap<>(envd(b));
        h.put("Content-Type", "application/octet-stream");
        return call("POST", "/files?path=" + URLEncoder.encode(path, StandardCharsets.UTF_8), content, h);
    }

    public HttpResponse<byte[]> download(Box b, String path) {
        try {
            HttpRequest.Builder rb = HttpRequest.newBuilder(base.resolve("/files?path=" + URLEncoder.encode(path, StandardCharsets.UTF_8)))
                    .timeout(Duration.ofSeconds(120)).GET();
            envd(b).forEach(rb::header);
            HttpResponse<byte[]> r = http.send(rb.build(), HttpResponse.BodyHandlers.ofByteArray());
            if (r.statusCode() >= 400) ErrorTexts.seen(base, "GET /files", new String(r.body(), StandardCharsets.UTF_8));
            return r;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    // ---- Additions for the lifecycle / commands / files / bad-input suites (additive only). ----

    /** A Connect envelope: flag byte, 4-byte big-endian length, payload. */
    public static byte[] envelope(int flags, byte[] msg) {
        byte[] env = new byte[5 + msg.length];
        env[0] = (byte) flags;
        env[1] = (byte) (msg.length >>> 24);
        env[2] = (byte) (msg.length >>> 16);
        env[3] = (byte) (msg.length >>> 8);
        env[4] = (byte) msg.length;
        System.arraycopy(msg, 0, env, 5, msg.length);
        return env;
    }

    /** One frame of a Connect stream as it arrived: System.nanoTime() of its arrival, flags, message. */
    public record Frame(long nanos, int flags, JsonNode message) {
        public boolean isEnd() {
            return (flags & 2) != 0;
        }

        /** The event member of a process stream message ("start", "data", "end", "keepalive"), or null. */
        public String kind() {
            JsonNode ev = message.get("event");
            return ev == null || !ev.fieldNames().hasNext() ? null : ev.fieldNames().next();
        }
    }

    /**
     * A server-streaming call as it went on the wire: the HTTP status and content type, every frame
     * with its arrival time, stdout/stderr as raw bytes, the end event and the end-stream error. For a
     * non-stream answer (an HTTP error), {@code errorBody} holds the JSON body instead.
     */
    public record Streamed(int status, String contentType, List<Frame> frames, byte[] stdout, byte[] stderr, JsonNode end,
                    JsonNode error, JsonNode errorBody, long sentNanos) {
        public int pid() {
            for (Frame f : frames) {
                JsonNode s = f.message().path("event").get("start");
                if (s != null) return s.path("pid").asInt(-1);
            }
            return -1;
        }

        public String out() {
            return new String(stdout, StandardCharsets.UTF_8);
        }

        public String err() {
            return new String(stderr, StandardCharsets.UTF_8);
        }

        public boolean endedCleanly() {
            return !frames.isEmpty() && frames.getLast().isEnd();
        }
    }

    /** process.Process/Start with the E2B SDK's headers, calling {@code onFrame} as each frame arrives. */
    public Streamed startLive(Box b, Object request, String user, java.util.function.Consumer<Frame> onFrame) {
        try {
            Map<String, String> h = new java.util.HashMap<>();
            if (user != null) h.put("Authorization", "Basic " + Base64.getEncoder().encodeToString((user + ":").getBytes()));
            return streamRaw(b, "process.Process/Start", envelope(0, JSON.writeValueAsBytes(request)), h, onFrame);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A server-streaming RPC with a JSON request, recording every frame. */
    public Streamed streamLive(Box b, String rpc, Object request, java.util.function.Consumer<Frame> onFrame) {
        try {
            return streamRaw(b, rpc, envelope(0, JSON.writeValueAsBytes(request)), Map.of(), onFrame);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Posts {@code body} (the raw bytes, envelope or not) to a streaming RPC and reads the answer frame by
     * frame. {@code headers} are added to (and override) the sandbox's envd headers.
     */
    public Streamed streamRaw(Box b, String rpc, byte[] body, Map<String, String> headers, java.util.function.Consumer<Frame> onFrame) {
        return streamRaw(b, rpc, HttpRequest.BodyPublishers.ofByteArray(body), headers, onFrame);
    }

    /**
     * {@link #streamRaw} with a body of unknown length, which HTTP/1.1 sends chunked: what the E2B
     * Python SDK's Connect client (connectrpc) sends for a server-streaming RPC.
     */
    public Streamed streamChunked(Box b, String rpc, byte[] body, Map<String, String> headers, java.util.function.Consumer<Frame> onFrame) {
        return streamRaw(b, rpc, HttpRequest.BodyPublishers.ofInputStream(() -> new java.io.ByteArrayInputStream(body)), headers, onFrame);
    }

    private Streamed streamRaw(Box b, String rpc, HttpRequest.BodyPublisher body, Map<String, String> headers,
            java.util.function.Consumer<Frame> onFrame) {
        try {
            Map<String, String> h = new java.util.LinkedHashMap<>(envd(b));
            h.put("Content-Type", "application/connect+json");
            h.put("Connect-Protocol-Version", "1");
            h.put("Keepalive-Ping-Interval", "50");
            h.putAll(headers);
            HttpRequest.Builder rb = HttpRequest.newBuilder(base.resolve("/" + rpc))
                    .timeout(Duration.ofSeconds(300))
                    .POST(body);
            h.forEach((k, v) -> {
                if (v != null) rb.header(k, v);
            });
            long sent = System.nanoTime();
            HttpResponse<InputStream> r = http.send(rb.build(), HttpResponse.BodyHandlers.ofInputStream());
            String ct = r.headers().firstValue("Content-Type").orElse("");
            List<Frame> frames = new ArrayList<>();
            ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
            JsonNode end = null, error = null, errorBody = null;
            try (DataInputStream in = new DataInputStream(r.body())) {
                if (r.statusCode() != 200 || !ct.startsWith("application/connect+json")) {
                    byte[] all = in.readAllBytes();
                    try {
                        errorBody = all.length == 0 ? null : JSON.readTree(all);
                    } catch (IOException notJson) {
                        errorBody = JSON.getNodeFactory().textNode(new String(all, StandardCharsets.UTF_8));
                    }
                    if (r.statusCode() != 200) ErrorTexts.seen(base, rpc, new String(all, StandardCharsets.UTF_8));
                    return new Streamed(r.statusCode(), ct, frames, out.toByteArray(), err.toByteArray(), null, null, errorBody, sent);
                }
                while (true) {
                    int flags;
                    try {
                        flags = in.readUnsignedByte();
                    } catch (EOFException e) {
                        break;
                    }
                    int len = in.readInt();
                    byte[] payload = in.readNBytes(len);
                    if (payload.length != len) throw new EOFException("truncated Connect frame");
                    Frame f = new Frame(System.nanoTime(), flags, JSON.readTree(payload));
                    frames.add(f);
                    if (onFrame != null) onFrame.accept(f);
                    if (f.isEnd()) {
                        if (f.message().has("error")) error = f.message().get("error");
                        if (error != null) ErrorTexts.seen(base, rpc + " end of stream", error.toString());
                        break;
                    }
                    JsonNode ev = f.message().path("event");
                    if (ev.has("data")) {
                        JsonNode d = ev.get("data");
                        if (d.has("stdout")) out.write(Base64.getDecoder().decode(d.get("stdout").asText()));
                        if (d.has("stderr")) err.write(Base64.getDecoder().decode(d.get("stderr").asText()));
                    }
                    if (ev.has("end")) end = ev.get("end");
                }
            }
            return new Streamed(r.statusCode(), ct, frames, out.toByteArray(), err.toByteArray(), end, error, errorBody, sent);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** A unary Connect call with extra headers (e.g. Authorization for the acting user). */
    public Response rpc(Box b, String method, Object body, Map<String, String> extra) {
        Map<String, String> h = new java.util.HashMap<>(envd(b));
        h.put("Content-Type", "application/json");
        h.putAll(extra);
        return call("POST", "/" + method, body, h);
    }

    /** Starts a bash command (as the E2B SDK wraps it) with extra Start fields, e.g. envs, cwd, stdin, tag. */
    public static Map<String, Object> bash(String cmd, Map<String, Object> processExtra) {
        Map<String, Object> p = new java.util.LinkedHashMap<>();
        p.put("cmd", "/bin/bash");
        p.put("args", List.of("-l", "-c", cmd));
        p.putAll(processExtra);
        return new java.util.LinkedHashMap<>(Map.of("process", p));
    }

    public static ObjectNode obj() {
        return JSON.createObjectNode();
    }

    // ---- Additions for the code interpreter suite (port 49999; additive only). ----

    /** The headers of @e2b/code-interpreter's /execute: sandbox id, port 49999 and the sandbox's token. */
    public Map<String, String> code(Box b) {
        return Map.of("E2b-Sandbox-Id", b.id(), "E2b-Sandbox-Port", "49999", "X-Access-Token", b.token());
    }

    /** A JSON call to a code interpreter route (/contexts...) with the sandbox's token. */
    public Response codeCall(Box b, String method, String path, Object body) {
        return call(method, path, body, code(b));
    }

    /**
     * One POST /execute as it went on the wire: status, content type, every NDJSON line parsed (with
     * its arrival time) and the raw body bytes; for a non-200 answer, the JSON error body.
     */
    public record Cell(int status, String contentType, List<JsonNode> lines, List<Long> arrivals, byte[] raw, JsonNode errorBody,
                long sentNanos) {
        public List<JsonNode> ofType(String type) {
            return lines.stream().filter(l -> type.equals(l.path("type").asText())).toList();
        }

        public String stdout() {
            return ofType("stdout").stream().map(l -> l.path("text").asText()).reduce("", String::concat);
        }

        public String stderr() {
            return ofType("stderr").stream().map(l -> l.path("text").asText()).reduce("", String::concat);
        }

        public List<JsonNode> results() {
            return ofType("result");
        }

        /** The text of the main result, or null. */
        public String text() {
            return results().stream().filter(r -> r.path("is_main_result").asBoolean()).map(r -> r.path("text").asText(null))
                    .findFirst().orElse(null);
        }

        public JsonNode error() {
            List<JsonNode> e = ofType("error");
            return e.isEmpty() ? null : e.getFirst();
        }

        public JsonNode end() {
            List<JsonNode> e = ofType("end_of_execution");
            return e.isEmpty() ? null : e.getLast();
        }

        public String outcome() {
            JsonNode e = end();
            return e == null ? null : e.path("outcome").asText(null);
        }

        public int executionCount() {
            List<JsonNode> e = ofType("number_of_executions");
            return e.isEmpty() ? -1 : e.getLast().path("execution_count").asInt();
        }
    }

    public Cell execute(Box b, String code) {
        return execute(b, Map.of("code", code));
    }

    public Cell execute(Box b, Object body) {
        return execute(b, body, code(b), null);
    }

    /** POST /execute with exactly {@code headers}, calling {@code onLine} as each line arrives. */
    public Cell execute(Box b, Object body, Map<String, String> headers, java.util.function.Consumer<JsonNode> onLine) {
        try {
            byte[] bytes = body instanceof byte[] raw ? raw : body instanceof String s ? s.getBytes(StandardCharsets.UTF_8)
                    : JSON.writeValueAsBytes(body);
            HttpRequest.Builder rb = HttpRequest.newBuilder(base.resolve("/execute")).timeout(Duration.ofSeconds(300))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofByteArray(bytes));
            headers.forEach(rb::header);
            long sent = System.nanoTime();
            HttpResponse<InputStream> r = http.send(rb.build(), HttpResponse.BodyHandlers.ofInputStream());
            String ct = r.headers().firstValue("Content-Type").orElse("");
            List<JsonNode> lines = new ArrayList<>();
            List<Long> arrivals = new ArrayList<>();
            ByteArrayOutputStream raw = new ByteArrayOutputStream();
            try (InputStream in = r.body()) {
                if (r.statusCode() != 200) {
                    byte[] all = in.readAllBytes();
                    JsonNode err;
                    try {
                        err = all.length == 0 ? null : JSON.readTree(all);
                    } catch (IOException notJson) {
                        err = JSON.getNodeFactory().textNode(new String(all, StandardCharsets.UTF_8));
                    }
                    ErrorTexts.seen(base, "POST /execute", new String(all, StandardCharsets.UTF_8));
                    return new Cell(r.statusCode(), ct, lines, arrivals, all, err, sent);
                }
                ByteArrayOutputStream line = new ByteArrayOutputStream();
                int c;
                while ((c = in.read()) >= 0) {
                    raw.write(c);
                    if (c != '\n') {
                        line.write(c);
                        continue;
                    }
                    JsonNode n = JSON.readTree(line.toByteArray());
                    line.reset();
                    lines.add(n);
                    arrivals.add(System.nanoTime());
                    if (onLine != null) onLine.accept(n);
                }
                if (line.size() > 0) throw new IOException("the NDJSON body ended inside a line: " + line);
            }
            return new Cell(200, ct, lines, arrivals, raw.toByteArray(), null, sent);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
