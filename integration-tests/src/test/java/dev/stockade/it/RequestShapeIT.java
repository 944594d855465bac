package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.conformance.RawClient;
import dev.stockade.it.StrictInputIT.Raw;
import dev.stockade.conformance.TestServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Test;

/**
 * Every request shape has a bound and a clean answer (issue 15, "What users must have" 3): the request
 * line (414), the header block, the number of headers and one header's size (431), chunk sizes and
 * chunk garbage, backslashes, bad %-escapes, raw spaces and control characters in the target or a
 * header (400), multipart part count and part headers, Connect envelopes (their number and size) and
 * file path lengths — each answered within {@link #ANSWER_MS} in the JSON error shape every refusal
 * uses, never an HTML page, a 500, a host path or a hang. Sent over raw sockets: a client library
 * would normalise or refuse what is sent here. Against the real server and runtime.
 */
class RequestShapeIT extends OneSandboxPerClass {
    /** The socket's read timeout: an answer later than this is a hang (generous for a loaded 2-core host). */
    static final int ANSWER_MS = 5_000;

    /**
     * Sends {@code head} (everything up to and including the blank line, ISO-8859-1 so that any byte can
     * be sent) and {@code body}, then reads one answer: its head, then as many bytes as its
     * Content-Length says (the server may go on reading what the client sends after answering).
     */
    static Raw send(String head, byte[] body) {
        try (Socket s = new Socket(ts.server.url().getHost(), ts.server.url().getPort())) {
            s.setSoTimeout(ANSWER_MS);
            OutputStream out = s.getOutputStream();
            out.write(head.getBytes(StandardCharsets.ISO_8859_1));
            if (body != null) {
                try {
                    out.write(body);
                } catch (IOException refusedEarly) {
                    // the server answered and closed before the whole body was sent: read its answer
                }
            }
            out.flush();
            InputStream in = s.getInputStream();
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            int end;
            while ((end = b.toString(StandardCharsets.ISO_8859_1).indexOf("\r\n\r\n")) < 0) {
                int ch = in.read();
                if (ch < 0) throw new AssertionError("the connection closed without an answer: " + b);
                b.write(ch);
            }
            String h = b.toString(StandardCharsets.ISO_8859_1).substring(0, end);
            int length = -1;
            for (String line : h.split("\r\n")) {
                if (line.toLowerCase(Locale.ROOT).startsWith("content-length:")) length = Integer.parseInt(line.substring(15).trim());
            }
            // A stream (chunked, framing kept in the text) is read to its end: the request said Connection: close.
            String text = new String(length < 0 ? in.readAllBytes() : in.readNBytes(length), StandardCharsets.UTF_8);
            return new Raw(Integer.parseInt(h.split(" ", 3)[1]), h, text);
        } catch (SocketTimeoutException e) {
            throw new AssertionError("no answer within " + ANSWER_MS + " ms (a hang)", e);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static Raw send(String method, String target, List<String> headers, byte[] body) {
        StringBuilder sb = new StringBuilder(method).append(' ').append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        headers.forEach(h -> sb.append(h).append("\r\n"));
        return send(sb.append("\r\n").toString(), body);
    }

    static List<String> key(String... more) {
        List<String> h = new ArrayList<>(List.of("X-API-Key: " + TestServer.KEY));
        h.addAll(List.of(more));
        return h;
    }

    static List<String> envd(String... more) {
        List<String> h = new ArrayList<>(List.of("E2b-Sandbox-Id: " + box.id(), "E2b-Sandbox-Port: 49983", "X-Access-Token: " + box.token()));
        h.addAll(List.of(more));
        return h;
    }

    /** A refusal with one of {@code statuses}, in E2B's JSON shape (Connect's with {@code connect}), naming no host path. */
    static Raw refused(Raw r, boolean connect, int... statuses) {
        assertTrue(java.util.Arrays.stream(statuses).anyMatch(s -> s == r.status()), () -> r.head() + "\n" + r.body());
        assertTrue(r.head().toLowerCase(Locale.ROOT).contains("content-type: application/json"), r::head);
        JsonNode j = r.json();
        assertNotNull(j, () -> "not JSON: " + r.body());
        if (connect) assertEquals("invalid_argument", j.path("code").asText(), r::body);
        else assertEquals(r.status(), j.path("code").asInt(), r::body);
        String m = j.path("message").asText("");
        assertFalse(m.isBlank(), r::body);
        assertFalse(m.contains(ts.dataDir.toString()) || m.contains("/tmp/") || m.toLowerCase(Locale.ROOT).contains("<html"), m);
        return r;
    }

    @Test
    void theRequestLineAndHeadersAreBounded() {
        // A 40 KiB target: 414, in JSON.
        refused(send("GET", "/sandboxes/" + "a".repeat(40 * 1024), key(), null), false, 414);
        // A 64 KiB header (the probe's): 431, the header block's bound.
        refused(send("GET", "/sandboxes", key("X-Big: " + "b".repeat(64 * 1024)), null), false, 431);
        // Headers that each fit but together do not.
        List<String> many = key();
        for (int i = 0; i < 20; i++) many.add("X-H" + i + ": " + "c".repeat(2000));
        refused(send("GET", "/sandboxes", many, null), false, 431);
        // One header within the block but beyond one header's bound.
        refused(send("GET", "/sandboxes", key("X-Big: " + "d".repeat(10_000)), null), false, 431);
        // More headers than a request may carry, each small.
        List<String> count = key();
        for (int i = 0; i < 150; i++) count.add("X-N" + i + ": v");
        refused(send("GET", "/sandboxes", count, null), false, 431);
        // On a Connect path, in Connect's shape.
        refused(send("POST", "/filesystem.Filesystem/Stat", envd("X-Big: " + "e".repeat(64 * 1024)), null), true, 431);
        // Within every bound the same request is served.
        assertEquals(200, send("GET", "/sandboxes", key(), null).status());
    }

    @Test
    void chunkSizesMustBeHexThatFits() {
        // A size that overflows 64 bits (the probe's), garbage, a sign, an endless chunk extension. (A size
        // that fits but is never sent is a slow client: the idle timeout ends it, like a short Content-Length.)
        for (String chunk : List.of("FFFFFFFFFFFFFFFF", "1FFFFFFFFFFFFFFFF", "zz", "-1", "1;" + "x".repeat(40_000))) {
            byte[] body = (chunk + "\r\n{}\r\n0\r\n\r\n").getBytes(StandardCharsets.ISO_8859_1);
            String shown = chunk.length() > 20 ? chunk.substring(0, 20) + "..." : chunk;
            try {
                refused(send("POST", "/sandboxes", key("Content-Type: application/json", "Transfer-Encoding: chunked"), body), false, 400, 413);
                refused(send("POST", "/files?path=/tmp/chunked", envd("Content-Type: application/octet-stream",
                        "Transfer-Encoding: chunked"), body), false, 400, 413);
            } catch (AssertionError e) {
                throw new AssertionError("chunk size line " + shown + ": " + e.getMessage(), e);
            }
        }
    }

    @Test
    void targetsWithBackslashesBadEscapesSpacesOrControlsAreJson400() {
        for (String t : List.of("/files?path=..\\..\\etc/shadow", "/files?path=%zz", "/files?path=%4", "/files?path=a%00%", "/files?path=a\u0001b")) {
            refused(send("GET", t, envd(), null), false, 400);
        }
        for (String t : List.of("/sandboxes/..\\..\\etc/shadow", "/sandboxes/%zz", "/sandboxes/a\u0001b", "/sandboxes/a\u007fb")) {
            refused(send("GET", t, key(), null), false, 400);
        }
        // A raw space splits the request line into more than three parts.
        refused(send("GET /sandboxes/a b HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-API-Key: " + TestServer.KEY + "\r\n\r\n", null), false, 400);
        // Control characters in a header value (not only in the credential headers).
        refused(send("GET", "/sandboxes", key("X-Other: a\u0001b"), null), false, 400);
        refused(send("GET", "/sandboxes", key("X-Other: a\u000bb"), null), false, 400);
        refused(send("POST", "/filesystem.Filesystem/Stat", envd("X-Other: a\u0000b"), null), true, 400);
    }

    private static byte[] multipart(String boundary, int parts, String partHeaders) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        byte[] one = ("--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"many.txt\"\r\n"
                + partHeaders + "\r\nx\r\n").getBytes(StandardCharsets.ISO_8859_1);
        for (int i = 0; i < parts; i++) b.writeBytes(one);
        b.writeBytes(("--" + boundary + "--\r\n").getBytes(StandardCharsets.ISO_8859_1));
        return b.toByteArray();
    }

    @Test
    void multipartPartsAndTheirHeadersAreBounded() {
        byte[] many = multipart("B0undary", 100_000, "");
        Raw r = send("POST", "/files", envd("Content-Type: multipart/form-data; boundary=B0undary",
                "Content-Length: " + many.length), many);
        refused(r, false, 413);
        byte[] fat = multipart("B0undary", 1, "X-Part: " + "h".repeat(20_000) + "\r\n");
        refused(send("POST", "/files", envd("Content-Type: multipart/form-data; boundary=B0undary",
                "Content-Length: " + fat.length), fat), false, 400);
        // Within the bounds, a multipart upload is written.
        byte[] ok = multipart("B0undary", 3, "");
        assertEquals(200, send("POST", "/files", envd("Content-Type: multipart/form-data; boundary=B0undary",
                "Content-Length: " + ok.length), ok).status());
    }

    @Test
    void connectEnvelopesAreBoundedInNumberAndSize() {
        // A client stream of more messages than one StreamInput carries: its end-of-stream says why.
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        byte[] keepalive = RawClient.envelope(0, "{\"keepalive\":{}}".getBytes(StandardCharsets.UTF_8));
        for (int i = 0; i <= 100_000; i++) b.writeBytes(keepalive);
        byte[] body = b.toByteArray();
        Raw r = send("POST", "/process.Process/StreamInput", envd("Content-Type: application/connect+json",
                "Content-Length: " + body.length), body);
        assertEquals(200, r.status(), r::body);
        assertTrue(r.body().contains("\"invalid_argument\"") && r.body().contains("at most 100000 messages"), r::body);
        // One envelope larger than a message may be: refused before it is read.
        byte[] huge = new byte[5];
        huge[0] = 0;
        huge[1] = 0x7f;
        Raw big = send("POST", "/process.Process/StreamInput", envd("Content-Type: application/connect+json",
                "Transfer-Encoding: chunked"), ("5\r\n" + new String(huge, StandardCharsets.ISO_8859_1) + "\r\n0\r\n\r\n")
                .getBytes(StandardCharsets.ISO_8859_1));
        assertEquals(200, big.status(), big::body);
        assertTrue(big.body().contains("\"invalid_argument\"") && big.body().contains("larger than"), big::body);
        // A unary call's body past its bound, by its Content-Length alone.
        refused(send("POST", "/filesystem.Filesystem/Stat", envd("Content-Type: application/json",
                "Content-Length: " + (64L * 1024 * 1024)), null), true, 400);
    }

    @Test
    void filePathsAreBoundedInLength() {
        String longPath = "/tmp/" + "p".repeat(5000);
        refused(send("GET", "/files?path=" + longPath, envd(), null), false, 400);
        byte[] stat = ("{\"path\":\"" + longPath + "\"}").getBytes(StandardCharsets.UTF_8);
        refused(send("POST", "/filesystem.Filesystem/Stat", envd("Content-Type: application/json",
                "Content-Length: " + stat.length), stat), true, 400);
    }
}
