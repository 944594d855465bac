package dev.stockade.server.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.server.error.StockadeError;
import java.io.BufferedOutputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URLDecoder;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.Content;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Blocker;
import org.eclipse.jetty.util.Callback;

/**
 * One HTTP exchange as handlers see it: the request's method, raw path and query, headers and body
 * stream; the response's headers, status and body stream; bounded body reading, query parsing, JSON
 * responses. Made by {@link Router} from Jetty's request, response and callback, and used only on
 * the request's virtual thread, which blocks on the body streams. Everything read from the client is
 * hostile: sizes are capped and parse failures become INVALID_ARGUMENT, never a 500.
 */
final class Request {
    private final org.eclipse.jetty.server.Request request;
    private final Response response;
    private final Callback callback;
    final ObjectMapper json;
    private Map<String, String> query;
    private InputStream body;
    private ResponseBody out;
    private int status;
    private volatile boolean aborted;
    /** What the audit log records of this request beyond its route: a target (a path, an id) and a detail. */
    String auditTarget;
    String auditDetail;
    /** The sandbox the request concerns (from the route, the header, or what a create made). */
    String auditSandbox;
    /** Who makes the request, once authenticated. */
    dev.stockade.server.tenancy.Principal principal;

    Request(org.eclipse.jetty.server.Request request, Response response, Callback callback, ObjectMapper json) {
        this.request = request;
        this.response = response;
        this.callback = callback;
        this.json = json;
    }

    /** Notes what the audit log should say of this request (never secrets, code or file contents). */
    void audit(String target, String detail) {
        this.auditTarget = target;
        this.auditDetail = detail;
    }

    /** "sha256:<16 hex> <n> bytes": names code or a command line in the audit log without holding it. */
    static String digest(String text) {
        byte[] b = text.getBytes(StandardCharsets.UTF_8);
        try {
            byte[] d = java.security.MessageDigest.getInstance("SHA-256").digest(b);
            return "sha256:" + java.util.HexFormat.of().formatHex(d, 0, 8) + " " + b.length + " bytes";
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    String method() {
        return request.getMethod();
    }

    /** The path as sent, %-escapes kept. */
    String path() {
        return request.getHttpURI().getPath();
    }

    /** The query as sent (%-escapes kept), or null. */
    String rawQuery() {
        return request.getHttpURI().getQuery();
    }

    /** The first value of a header (names are case-insensitive), or null. */
    String header(String name) {
        return request.getHeaders().get(name);
    }

    /** Every request header, in order. */
    HttpFields headers() {
        return request.getHeaders();
    }

    /** The client's address, or null when the connection does not say. */
    String remoteAddress() {
        return org.eclipse.jetty.server.Request.getRemoteAddr(request);
    }

    /** Sets a response header (before the response is sent). */
    void setResponseHeader(String name, String value) {
        response.getHeaders().put(name, value);
    }

    /** The status sent, or 0 while none was. */
    int status() {
        return status;
    }

    /** Query parameters; a repeated key keeps its first value; malformed escapes are a 400. */
    Map<String, String> query() {
        if (query == null) {
            Map<String, String> q = new LinkedHashMap<>();
            String raw = rawQuery();
            if (raw != null && !raw.isEmpty()) {
                for (String pair : raw.split("&")) {
                    if (pair.isEmpty()) continue;
                    int eq = pair.indexOf('=');
                    try {
                        String k = URLDecoder.decode(eq < 0 ? pair : pair.substring(0, eq), StandardCharsets.UTF_8);
                        String v = eq < 0 ? "" : URLDecoder.decode(pair.substring(eq + 1), StandardCharsets.UTF_8);
                        q.putIfAbsent(k, v);
                    } catch (IllegalArgumentException e) {
                        throw StockadeError.invalid("malformed query string: " + e.getMessage());
                    }
                }
            }
            query = q;
        }
        return query;
    }

    /** The request body as a blocking stream (read on the request's virtual thread). */
    InputStream requestBody() {
        if (body == null) body = Content.Source.asInputStream(request);
        return body;
    }

    /** The whole body, at most {@code max} bytes, else PAYLOAD_TOO_LARGE. */
    byte[] body(int max) {
        String len = header("Content-Length");
        if (len != null) {
            try {
                if (Long.parseLong(len.trim()) > max) throw tooLarge(max);
            } catch (NumberFormatException e) {
                throw StockadeError.invalid("Content-Length is not a number");
            }
        }
        try (InputStream in = requestBody()) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buf = new byte[16384];
            int n;
            while ((n = in.read(buf)) >= 0) {
                if (out.size() + n > max) throw tooLarge(max);
                out.write(buf, 0, n);
            }
            return out.toByteArray();
        } catch (IOException e) {
            throw RequestBounds.readFailure(e);
        }
    }

    static StockadeError tooLarge(long max) {
        return new StockadeError(StockadeError.Code.PAYLOAD_TOO_LARGE, "the request body is larger than " + max + " bytes");
    }

    /**
     * The body as a JSON object; an empty body is an empty object. A Content-Type that is not JSON is a
     * 415 (a form or text a client meant for another endpoint is never read as if it were JSON); none at
     * all is read as JSON, as clients that send no body send none.
     */
    JsonNode jsonBody(int max) {
        byte[] b = jsonBytes(max);
        if (b.length == 0) return json.createObjectNode();
        try {
            JsonNode n = json.readTree(b);
            if (n == null || !n.isObject()) throw StockadeError.invalid("the request body must be a JSON object");
            return n;
        } catch (JsonProcessingException e) {
            throw StockadeError.invalid("the request body is not valid JSON: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw StockadeError.invalid("the request body could not be read: " + e.getMessage());
        }
    }

    /**
     * A body that must be JSON (a JSON object, or Connect's enveloped JSON messages), at most {@code max}
     * bytes: its Content-Type, when given, must say JSON ({@code application/json},
     * {@code application/connect+json}...), else UNSUPPORTED_MEDIA_TYPE.
     */
    byte[] jsonBytes(int max) {
        requireJsonContentType();
        return body(max);
    }

    void requireJsonContentType() {
        List<String> types = request.getHeaders().getValuesList(HttpHeader.CONTENT_TYPE);
        if (types.isEmpty()) return;
        if (types.size() > 1) throw StockadeError.invalid("the request carries " + types.size() + " Content-Type headers: send one");
        String media = types.getFirst().split(";", 2)[0].trim().toLowerCase(java.util.Locale.ROOT);
        if (media.equals("application/json") || (media.startsWith("application/") && media.endsWith("+json"))) return;
        String shown = media.length() > 64 ? media.substring(0, 64) + "..." : media;
        throw new StockadeError(StockadeError.Code.UNSUPPORTED_MEDIA_TYPE, "this endpoint reads JSON: Content-Type '"
                + shown.replaceAll("[^\\x20-\\x7e]", "?") + "' is not JSON (application/json; application/connect+json for Connect streams)");
    }

    void sendJson(int status, Object body) throws IOException {
        byte[] bytes = json.writeValueAsBytes(body);
        setResponseHeader("Content-Type", "application/json");
        send(status, bytes);
    }

    /** A whole response in one write (its Content-Length known). */
    void send(int status, byte[] bytes) throws IOException {
        if (this.status != 0) throw new IOException("the response was already sent");
        this.status = status;
        response.setStatus(status);
        if (bodyAllowed(status)) response.getHeaders().put(HttpHeader.CONTENT_LENGTH, Integer.toString(bytes.length));
        try (Blocker.Callback done = Blocker.callback()) {
            response.write(true, ByteBuffer.wrap(bytes), done);
            done.block();
        }
        out = ResponseBody.CLOSED;
    }

    /**
     * Sends the status and headers now and returns the body's stream: {@code length} bytes exactly
     * when positive, none when -1, any (chunked) when 0 — the JDK server's convention, which the
     * handlers were written for. Writes are buffered until {@code flush()}, which sends them: a
     * streamed handler flushes each frame. Closing the stream ends the response.
     */
    OutputStream respond(int status, long length) throws IOException {
        if (this.status != 0) throw new IOException("the response was already sent");
        this.status = status;
        response.setStatus(status);
        if (length > 0) response.getHeaders().put(HttpHeader.CONTENT_LENGTH, Long.toString(length));
        else if (length < 0 && bodyAllowed(status)) response.getHeaders().put(HttpHeader.CONTENT_LENGTH, "0");
        out = new ResponseBody(Content.Sink.asOutputStream(response));
        if (length == 0) out.flush(); // the headers leave now: a stream's first frame may be long in coming
        return out;
    }

    /** 204 and 304 carry no body, so no Content-Length either (RFC 9110 §8.6). */
    private static boolean bodyAllowed(int status) {
        return status != 204 && status != 304 && status >= 200;
    }

    /**
     * Cuts the response off: the connection closes without the body's end, so the client sees a
     * truncated body (what the SDKs read as "the sandbox was killed").
     */
    void abortResponse() {
        aborted = true;
    }

    /**
     * Ends the exchange, from {@link Router} once the handler returned: closes the body stream, reads what the client still sends up to
     * {@link #DRAIN_BYTES} so that it reads an early refusal instead of a reset, and tells Jetty.
     */
    void finish() {
        if (aborted) {
            callback.failed(new IOException("response aborted"));
            return;
        }
        if (out == null) {
            // The handler ended without an answer (the client went away mid-request): nothing to end.
            callback.failed(new IOException("the exchange ended without a response"));
            return;
        }
        try {
            out.close();
            drain();
            callback.succeeded();
        } catch (IOException | RuntimeException e) {
            callback.failed(e);
        }
    }

    /** Bytes of an unread body read and dropped after the response; a larger rest closes the connection. */
    static final long DRAIN_BYTES = 64L * 1024 * 1024;

    private void drain() {
        try {
            InputStream in = requestBody();
            long left = DRAIN_BYTES;
            byte[] buf = new byte[16384];
            int n;
            while (left > 0 && (n = in.read(buf, 0, (int) Math.min(buf.length, left))) >= 0) left -= n;
        } catch (IOException | RuntimeException ignored) {
            // a body that cannot be read ends with the connection; the answer was already sent
        }
    }

    /**
     * The response body: buffered (a frame's prefix and payload leave together), sent on flush, its
     * close idempotent and the end of the response.
     */
    private static final class ResponseBody extends BufferedOutputStream {
        static final ResponseBody CLOSED = new ResponseBody(OutputStream.nullOutputStream());
        private boolean closed;

        ResponseBody(OutputStream sink) {
            super(sink, 16384);
        }

        @Override
        public synchronized void close() throws IOException {
            if (closed) return;
            closed = true;
            super.close();
        }
    }
}
