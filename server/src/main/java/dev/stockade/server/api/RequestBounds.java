package dev.stockade.server.api;

import dev.stockade.server.error.HostPaths;
import dev.stockade.server.error.StockadeError;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.eclipse.jetty.http.BadMessageException;
import org.eclipse.jetty.http.HttpField;
import org.eclipse.jetty.http.HttpFields;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.http.HttpStatus;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.handler.ErrorHandler;
import org.eclipse.jetty.util.Callback;

/**
 * The shape bounds of a request, and the answer to a request outside them: always the JSON error every
 * other refusal uses ({@code {"code": status, "message": ...}}), never an HTML page or a host path.
 * Jetty enforces the sizes it parses (request line, header block, chunk sizes) and answers through
 * {@link JsonErrors}; {@link Router} checks the rest ({@link #check}) before it reads a credential.
 * Called on Jetty's threads (the error handler) and on the request's virtual thread (the checks).
 */
public final class RequestBounds {
    /** Request line and header block together, bytes (Jetty: 414 beyond it in the line, 431 in the headers). */
    public static final int MAX_HEADER_BLOCK = 32 * 1024;
    /** Headers in one request. */
    static final int MAX_HEADERS = 100;
    /** Bytes of one header's value. */
    static final int MAX_HEADER_VALUE = 8 * 1024;

    private RequestBounds() {}

    /**
     * Refuses what Jetty's parser lets through but the API never takes: too many headers, one huge
     * header, and a target (path and query) with ASCII characters RFC 3986 does not allow raw — a
     * backslash, a space, a control character, a {@code %} not followed by two hex digits — which a client, a
     * proxy and the server may each read differently.
     */
    static void check(String rawPath, String rawQuery, HttpFields headers) {
        if (headers.size() > MAX_HEADERS) {
            throw new StockadeError(StockadeError.Code.HEADERS_TOO_LARGE, "the request has " + headers.size()
                    + " headers; at most " + MAX_HEADERS + " are read");
        }
        for (HttpField f : headers) {
            String v = f.getValue();
            if (v != null && v.length() > MAX_HEADER_VALUE) {
                throw new StockadeError(StockadeError.Code.HEADERS_TOO_LARGE, "the header " + printable(f.getName(), 64)
                        + " is " + v.length() + " bytes long; one header holds at most " + MAX_HEADER_VALUE);
            }
        }
        target("path", rawPath);
        if (rawQuery != null) target("query", rawQuery);
    }

    private static void target(String part, String raw) {
        for (int i = 0; i < raw.length(); i++) {
            char c = raw.charAt(i);
            if (c == '%') {
                if (i + 2 >= raw.length() || hex(raw.charAt(i + 1)) < 0 || hex(raw.charAt(i + 2)) < 0) {
                    throw StockadeError.invalid("the request " + part + " has a '%' at position " + i
                            + " that is not followed by two hex digits (a bad %-escape)");
                }
            } else if (!allowed(c)) {
                throw StockadeError.invalid("the request " + part + " holds "
                        + (c == '\\' ? "a backslash" : "the character U+" + String.format("%04X", (int) c))
                        + " at position " + i + ": %-escape it (RFC 3986)");
            }
        }
    }

    /**
     * RFC 3986's unreserved, sub-delims, ':', '@', '/', '?' (the query may hold '/' and '?'), and — as
     * the JDK server took them and {@code curl} sends them — raw non-ASCII characters (UTF-8, RFC 3987),
     * but not the C1 controls among them.
     */
    private static boolean allowed(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                || "-._~!$&'()*+,;=:@/?".indexOf(c) >= 0 || c > 0x9f;
    }

    private static int hex(char c) {
        return Character.digit(c, 16);
    }

    /** Whether a failed read is Jetty's verdict on the body's framing (the client's error), not a lost connection. */
    static boolean malformedBody(IOException e) {
        for (Throwable t = e; t != null; t = t.getCause()) if (t instanceof BadMessageException) return true;
        return false;
    }

    /** A body read that failed: a malformed body (a bad chunk size) is the client's 400; else the client went away. */
    static StockadeError readFailure(IOException e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof BadMessageException bad) {
                return StockadeError.invalid("the request body is malformed: " + printable(
                        bad.getReason() == null ? "status " + bad.getCode() : bad.getReason(), 200));
            }
        }
        return StockadeError.invalid("reading the request body failed: " + printable(String.valueOf(e.getMessage()), 200));
    }

    /** Printable ASCII, cut to {@code max} characters (text the client controls, shown back). */
    static String printable(String s, int max) {
        String t = s.length() > max ? s.substring(0, max) + "..." : s;
        return t.replaceAll("[^\\x20-\\x7e]", "?");
    }

    /**
     * What Jetty answers itself (a request it could not parse or that broke a bound: 400, 414, 431; a
     * failure after the handler): our JSON error shape instead of Jetty's HTML page. The message is
     * Jetty's reason, which names the rule broken and never a host path (scrubbed all the same); on a
     * Connect RPC's path the code is Connect's name for it, as {@link Router} answers there.
     */
    public static final class JsonErrors extends ErrorHandler {
        @Override
        public boolean handle(org.eclipse.jetty.server.Request request, Response response, Callback callback) {
            int status = response.getStatus() >= 400 ? response.getStatus() : 500;
            if (request.getAttribute(ERROR_STATUS) instanceof Integer s && s >= 400) status = s;
            String reason = request.getAttribute(ERROR_MESSAGE) instanceof String m && !m.isBlank() ? m : null;
            Throwable cause = request.getAttribute(ERROR_EXCEPTION) instanceof Throwable t ? t : null;
            String message = switch (status) {
                case HttpStatus.URI_TOO_LONG_414 -> "the request line is longer than " + MAX_HEADER_BLOCK + " bytes";
                case HttpStatus.REQUEST_HEADER_FIELDS_TOO_LARGE_431 -> "the request's headers are larger than "
                        + MAX_HEADER_BLOCK + " bytes";
                default -> status >= 500 ? "the request failed inside the server"
                        : "malformed request: " + printable(reason != null ? reason
                        : cause != null && cause.getMessage() != null ? cause.getMessage() : HttpStatus.getMessage(status), 200);
            };
            // A Connect RPC's client reads Connect's error shape (a code name); every other client E2B's.
            var uri = request.getHttpURI();
            boolean rpc = uri != null && uri.getPath() != null && Plane.isRpcPath(uri.getPath());
            String code = !rpc ? Integer.toString(status) : status >= 500 ? "\"internal\"" : "\"invalid_argument\"";
            String body = "{\"code\":" + code + ",\"message\":" + quote(HostPaths.scrub(message)) + "}";
            response.setStatus(status);
            response.getHeaders().put(HttpHeader.CONTENT_TYPE, "application/json");
            response.getHeaders().put(HttpHeader.CACHE_CONTROL, "no-store");
            response.write(true, ByteBuffer.wrap(body.getBytes(StandardCharsets.UTF_8)), callback);
            return true;
        }

        private static String quote(String s) {
            StringBuilder b = new StringBuilder("\"");
            for (char c : s.toCharArray()) {
                if (c == '"' || c == '\\') b.append('\\').append(c);
                else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                else b.append(c);
            }
            return b.append('"').toString();
        }
    }
}
