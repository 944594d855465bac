package dev.stockade.sdk.internal;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.sdk.NotFoundException;
import java.io.InputStream;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;

/**
 * The in-sandbox API ("envd") of one sandbox, spoken the way E2B's SDKs speak it: requests go to
 * the server's base URL with the headers {@code E2b-Sandbox-Id} and {@code E2b-Sandbox-Port:
 * 49983}; RPCs are Connect with JSON encoding; file contents go through plain {@code /files}.
 * Immutable and thread-safe.
 */
public final class EnvdClient {
    public static final String ENVD_PORT = "49983";
    /** The E2B SDKs ask the server for a keepalive on idle streams this often (seconds). */
    private static final String KEEPALIVE_SECONDS = "50";

    private final Transport transport;
    private final String sandboxId;
    private final String accessToken;

    public EnvdClient(Transport transport, String sandboxId, String accessToken) {
        this.transport = transport;
        this.sandboxId = sandboxId;
        this.accessToken = accessToken;
    }

    public String sandboxId() {
        return sandboxId;
    }

    /** The outcome of a unary RPC: the answer, or the error the server gave. */
    public record Reply(JsonNode body, RpcError error) {
        public JsonNode orThrow(String what) {
            if (error != null) throw error.toException(what);
            return body;
        }
    }

    /** A unary Connect call, e.g. {@code unary("filesystem.Filesystem/Stat", {"path": ...}, null)}. */
    public Reply unary(String method, JsonNode request, String user, String what) {
        HttpRequest req = base("/" + method, user, true)
                .header("Content-Type", "application/json")
                .header("Connect-Protocol-Version", "1")
                .POST(HttpRequest.BodyPublishers.ofByteArray(Json.bytes(request)))
                .build();
        HttpResponse<byte[]> res = transport.send(req, what);
        if (res.statusCode() != 200) return new Reply(null, RpcError.fromBody(res.statusCode(), res.body()));
        byte[] body = res.body();
        return new Reply(body.length == 0 ? Json.object() : Json.parse(body, what), null);
    }

    /**
     * Opens a server-streaming Connect call. Returns once the response headers are in; an error
     * status is thrown as the SDK's exception. {@code timeout} (zero for none) is passed to the
     * server as {@code Connect-Timeout-Ms}, as the E2B SDKs do.
     */
    public ConnectStream stream(String method, JsonNode request, String user, Duration timeout, String what) {
        HttpRequest.Builder b = base("/" + method, user, true)
                .header("Content-Type", "application/connect+json")
                .header("Connect-Protocol-Version", "1")
                .header("Keepalive-Ping-Interval", KEEPALIVE_SECONDS)
                .POST(HttpRequest.BodyPublishers.ofByteArray(new Envelope(0, Json.bytes(request)).encode()));
        if (!timeout.isZero()) b.header("Connect-Timeout-Ms", Long.toString(timeout.toMillis()));
        HttpResponse<InputStream> res = transport.sendStreaming(b.build(), what);
        if (res.statusCode() != 200) {
            RpcError error = RpcError.fromBody(res.statusCode(), Transport.drainError(res.body()));
            if (error.is("unavailable")) throw sandboxGone(what);
            throw error.toException(what);
        }
        return new ConnectStream(res.body(), what);
    }

    /**
     * What a stream that fails with {@code unavailable} before its first event means: the sandbox
     * is gone (E2B's SDKs raise SandboxNotFoundError here).
     */
    public NotFoundException sandboxGone(String what) {
        return new NotFoundException(what + ": sandbox " + sandboxId + " was not found: it has ended (killed or timed"
                + " out) or never existed", 502, null);
    }

    /** {@code GET /files?path=...}: the response, status unchecked, body unread. */
    public HttpResponse<InputStream> download(String path, String user, String what) {
        HttpRequest req = base("/files" + fileQuery(path, user), null, true).GET().build();
        return transport.sendStreaming(req, what);
    }

    /**
     * {@code POST /files?path=...} with an octet-stream body: the written entries' JSON. A
     * {@code streamed} body (of unknown length or arbitrarily large) gets no request timeout, as
     * in the E2B SDKs, since its transfer may legitimately take longer than any fixed bound.
     */
    public JsonNode upload(String path, HttpRequest.BodyPublisher body, boolean streamed, String user, String what) {
        HttpRequest req = base("/files" + fileQuery(path, user), null, !streamed)
                .header("Content-Type", "application/octet-stream")
                .POST(body)
                .build();
        HttpResponse<byte[]> res = transport.send(req, what);
        if (res.statusCode() / 100 != 2) throw Transport.error(res.statusCode(), res.body(), what);
        return res.body().length == 0 ? Json.MAPPER.missingNode() : Json.parse(res.body(), what);
    }

    private static String fileQuery(String path, String user) {
        var params = new java.util.LinkedHashMap<String, String>();
        params.put("path", path);
        params.put("username", user);
        return Transport.query(params);
    }

    private HttpRequest.Builder base(String path, String user, boolean timed) {
        HttpRequest.Builder b = transport.sandboxRequest(path, timed)
                .header("E2b-Sandbox-Id", sandboxId)
                .header("E2b-Sandbox-Port", ENVD_PORT);
        if (accessToken != null) b.header("X-Access-Token", accessToken);
        if (user != null) {
            String basic = Base64.getEncoder().encodeToString((user + ":").getBytes(StandardCharsets.UTF_8));
            b.header("Authorization", "Basic " + basic);
        }
        return b;
    }
}
