package dev.stockade.server.api;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import dev.stockade.server.error.StockadeError;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One HTTP exchange as handlers see it: bounded body reading, query parsing, JSON responses. Runs on
 * the request's virtual thread. Everything read from the client is hostile: sizes are capped and
 * parse failures become INVALID_ARGUMENT, never a 500.
 */
final class Request {
    final HttpExchange exchange;
    final ObjectMapper json;
    private Map<String, String> query;
    /** What the audit log records of this request beyond its route: a target (a path, an id) and a detail. */
    String auditTarget;
    String auditDetail;
    /** The sandbox the request concerns (from the route, the header, or what a create made). */
    String auditSandbox;
    /** Who makes the request, once authenticated. */
    dev.stockade.server.tenancy.Principal principal;

    Request(HttpExchange exchange, ObjectMapper json) {
        this.exchange = exchange;
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
        return exchange.getRequestMethod();
    }

    String path() {
        return exchange.getRequestURI().getRawPath();
    }

    String header(String name) {
        return exchange.getRequestHeaders().getFirst(name);
    }

    /** Query parameters; a repeated key keeps its first value; malformed escapes are a 400. */
    Map<String, String> query() {
        if (query == null) {
            Map<String, String> q = new LinkedHashMap<>();
            String raw = exchange.getRequestURI().getRawQuery();
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
        try (InputStream in = exchange.getRequestBody()) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            byte[] buf = new byte[16384];
            int n;
            while ((n = in.read(buf)) >= 0) {
                if (out.size() + n > max) throw tooLarge(max);
                out.write(buf, 0, n);
            }
            return out.toByteArray();
        } catch (IOException e) {
            throw StockadeError.invalid("reading the request body failed: " + e.getMessage());
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
        java.util.List<String> types = exchange.getRequestHeaders().get("Content-Type");
        if (types == null) return;
        if (types.size() > 1) throw StockadeError.invalid("the request carries " + types.size() + " Content-Type headers: send one");
        String media = types.getFirst().split(";", 2)[0].trim().toLowerCase(java.util.Locale.ROOT);
        if (media.equals("application/json") || (media.startsWith("application/") && media.endsWith("+json"))) return;
        String shown = media.length() > 64 ? media.substring(0, 64) + "..." : media;
        throw new StockadeError(StockadeError.Code.UNSUPPORTED_MEDIA_TYPE, "this endpoint reads JSON: Content-Type '"
                + shown.replaceAll("[^\\x20-\\x7e]", "?") + "' is not JSON (application/json; application/connect+json for Connect streams)");
    }

    void sendJson(int status, Object body) throws IOException {
        byte[] bytes = json.writeValueAsBytes(body);
        exchange.getResponseHeaders().set("Content-Type", "application/json");
        send(status, bytes);
    }

    void send(int status, byte[] bytes) throws IOException {
        if (bytes.length == 0) {
            exchange.sendResponseHeaders(status, -1);
        } else {
            exchange.sendResponseHeaders(status, bytes.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        }
    }
}
