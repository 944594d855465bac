package dev.stockade.server.egress;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;

/** The short answers the proxy itself gives: refusals (403, 503), bad requests (400) and upstream failures (502). */
final class Responses {
    private Responses() {}

    /** A refusal: one line {@code stockade egress: refused <host>:<port>: <reason>} and the deciding rule in a header. */
    static void refused(OutputStream out, int status, String host, int port, String rule, String reason)
            throws IOException {
        send(out, status, "refused; rule=\"" + quoted(rule) + "\"",
                "stockade egress: refused " + host + ":" + port + ": " + reason);
    }

    /** Any other answer of the proxy's own: one line {@code stockade egress: <message>}. */
    static void error(OutputStream out, int status, String message) throws IOException {
        send(out, status, "error", "stockade egress: " + message);
    }

    private static void send(OutputStream out, int status, String marker, String line) throws IOException {
        byte[] body = (printable(line) + "\n").getBytes(StandardCharsets.US_ASCII);
        HttpHead.write(out, "HTTP/1.1 " + status + " " + reason(status), List.of(
                new HttpHead.Field("Content-Type", "text/plain; charset=utf-8"),
                new HttpHead.Field("Content-Length", Integer.toString(body.length)),
                new HttpHead.Field("Connection", "close"),
                new HttpHead.Field("X-Stockade-Egress", marker)));
        out.write(body);
        out.flush();
    }

    static String reason(int status) {
        return switch (status) {
            case 200 -> "OK";
            case 201 -> "Created";
            case 204 -> "No Content";
            case 301 -> "Moved Permanently";
            case 302 -> "Found";
            case 304 -> "Not Modified";
            case 400 -> "Bad Request";
            case 403 -> "Forbidden";
            case 404 -> "Not Found";
            case 405 -> "Method Not Allowed";
            case 414 -> "URI Too Long";
            case 431 -> "Request Header Fields Too Large";
            case 500 -> "Internal Server Error";
            case 501 -> "Not Implemented";
            case 502 -> "Bad Gateway";
            case 503 -> "Service Unavailable";
            case 504 -> "Gateway Timeout";
            case 505 -> "HTTP Version Not Supported";
            default -> "Status";
        };
    }

    /** Printable ASCII only: whatever reaches a header or the one-line body cannot break the framing. */
    static String printable(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length() && b.length() < 1000; i++) {
            char c = s.charAt(i);
            b.append(c >= 0x20 && c < 0x7f ? c : '?');
        }
        return b.toString();
    }

    private static String quoted(String s) {
        return printable(s).replace("\\", "\\\\").replace("\"", "\\\"");
    }
}
