package dev.stockade.it;

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
 * send what no SDK would (bad input).
 */
final class RawClient {
    static final ObjectMapper JSON = new ObjectMapper();
    final URI base;
    final String key;
    final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();

    RawClient(URI base, String key) {
        this.base = base;
        this.key = key;
    }

    record Response(int status, JsonNode json, String body, java.net.http.HttpHeaders headers) {}

    /** A sandbox as create returns it: id and access token. */
    record Box(String id, String token) {}

    Response call(String method, String path, Object body) {
        return call(method, path, body, Map.of("X-API-Key", key));
    }

    Response call(String method, String path, Object body, Map<String, String> headers) {
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
            return new Response(r.statusCode(), json, text, r.headers());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    Box create() {
        return create(Map.of("templateID", "base", "timeout", 120));
    }

    Box create(Map<String, Object> body) {
        Response r = call("POST", "/sandboxes", body);
        if (r.status() != 201) throw new IllegalStateException("create failed: " + r.status() + " " + r.body());
        return new Box(r.json().get("sandboxID").asText(), r.json().get("envdAccessToken").asText());
    }

    void kill(Box b) {
        call("DELETE", "/sandboxes/" + b.id(), null);
    }

    Map<String, String> envd(Box b) {
        return Map.of("E2b-Sandbox-Id", b.id(), "E2b-Sandbox-Port", "49983", "X-Access-Token", b.token());
    }

    Response rpc(Box b, String method, Object body) {
        Map<String, String> h = new java.util.HashMap<>(envd(b));
        h.put("Content-Type", "application/json");
        return call("POST", "/" + method, body, h);
    }

    /** The result of a command streamed through process.Process/Start. */
    record Run(int pid, String stdout, String stderr, JsonNode end, List<JsonNode> events, JsonNode error) {
        int exitCode() {
            return end == null ? Integer.MIN_VALUE : end.path("exitCode").asInt();
        }

        String outcome() {
            return end == null ? null : end.path("outcome").asText(null);
        }
    }

    Run run(Box b, String cmd) {
        return start(b, Map.of("process", Map.of("cmd", "/bin/bash", "args", List.of("-l", "-c", cmd))), null);
    }

    Run run(Box b, String cmd, String user) {
        return start(b, Map.of("process", Map.of("cmd", "/bin/bash", "args", List.of("-l", "-c", cmd))), user);
    }

    Run start(Box b, Object request, String user) {
        return stream(b, "process.Process/Start", request, user);
    }

    /** Calls a server-streaming Connect RPC and collects its events until the end of the stream. */
    Run stream(Box b, String rpc, Object request, String user) {
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

    Response upload(Box b, String path, byte[] content) {
        Map<String, String> h = new java.util.HashMap<>(envd(b));
        h.put("Content-Type", "application/octet-stream");
        return call("POST", "/files?path=" + URLEncoder.encode(path, StandardCharsets.UTF_8), content, h);
    }

    HttpResponse<byte[]> download(Box b, String path) {
        try {
            HttpRequest.Builder rb = HttpRequest.newBuilder(base.resolve("/files?path=" + URLEncoder.encode(path, StandardCharsets.UTF_8)))
                    .timeout(Duration.ofSeconds(120)).GET();
            envd(b).forEach(rb::header);
            return http.send(rb.build(), HttpResponse.BodyHandlers.ofByteArray());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    // ---- Additions for the lifecycle / commands / files / bad-input suites (additive only). ----

    /** A Connect envelope: flag byte, 4-byte big-endian length, payload. */
    static byte[] envelope(int flags, byte[] msg) {
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
    record Frame(long nanos, int flags, JsonNode message) {
        boolean isEnd() {
            return (flags & 2) != 0;
        }

        /** The event member of a process stream message ("start", "data", "end", "keepalive"), or null. */
        String kind() {
            JsonNode ev = message.get("event");
            return ev == null || !ev.fieldNames().hasNext() ? null : ev.fieldNames().next();
        }
    }

    /**
     * A server-streaming call as it went on the wire: the HTTP status and content type, every frame
     * with its arrival time, stdout/stderr as raw bytes, the end event and the end-stream error. For a
     * non-stream answer (an HTTP error), {@code errorBody} holds the JSON body instead.
     */
    record Streamed(int status, String contentType, List<Frame> frames, byte[] stdout, byte[] stderr, JsonNode end,
                    JsonNode error, JsonNode errorBody, long sentNanos) {
        int pid() {
            for (Frame f : frames) {
                JsonNode s = f.message().path("event").get("start");
                if (s != null) return s.path("pid").asInt(-1);
            }
            return -1;
        }

        String out() {
            return new String(stdout, StandardCharsets.UTF_8);
        }

        String err() {
            return new String(stderr, StandardCharsets.UTF_8);
        }

        boolean endedCleanly() {
            return !frames.isEmpty() && frames.getLast().isEnd();
        }
    }

    /** process.Process/Start with the E2B SDK's headers, calling {@code onFrame} as each frame arrives. */
    Streamed startLive(Box b, Object request, String user, java.util.function.Consumer<Frame> onFrame) {
        try {
            Map<String, String> h = new java.util.HashMap<>();
            if (user != null) h.put("Authorization", "Basic " + Base64.getEncoder().encodeToString((user + ":").getBytes()));
            return streamRaw(b, "process.Process/Start", envelope(0, JSON.writeValueAsBytes(request)), h, onFrame);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A server-streaming RPC with a JSON request, recording every frame. */
    Streamed streamLive(Box b, String rpc, Object request, java.util.function.Consumer<Frame> onFrame) {
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
    Streamed streamRaw(Box b, String rpc, byte[] body, Map<String, String> headers, java.util.function.Consumer<Frame> onFrame) {
        try {
            Map<String, String> h = new java.util.LinkedHashMap<>(envd(b));
            h.put("Content-Type", "application/connect+json");
            h.put("Connect-Protocol-Version", "1");
            h.put("Keepalive-Ping-Interval", "50");
            h.putAll(headers);
            HttpRequest.Builder rb = HttpRequest.newBuilder(base.resolve("/" + rpc))
                    .timeout(Duration.ofSeconds(300))
                    .POST(HttpRequest.BodyPublishers.ofByteArray(body));
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
    Response rpc(Box b, String method, Object body, Map<String, String> extra) {
        Map<String, String> h = new java.util.HashMap<>(envd(b));
        h.put("Content-Type", "application/json");
        h.putAll(extra);
        return call("POST", "/" + method, body, h);
    }

    /** Starts a bash command (as the E2B SDK wraps it) with extra Start fields, e.g. envs, cwd, stdin, tag. */
    static Map<String, Object> bash(String cmd, Map<String, Object> processExtra) {
        Map<String, Object> p = new java.util.LinkedHashMap<>();
        p.put("cmd", "/bin/bash");
        p.put("args", List.of("-l", "-c", cmd));
        p.putAll(processExtra);
        return new java.util.LinkedHashMap<>(Map.of("process", p));
    }

    static ObjectNode obj() {
        return JSON.createObjectNode();
    }
}
