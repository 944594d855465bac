package dev.stockade.server.egress;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * How an HTTP/1.x body is delimited, and copying exactly one body: the proxy never reads past
 * the end of the message it forwards, so bytes after it (a pipelined request) never ride along.
 * Chunked bodies are validated and re-framed (sizes in lowercase hex, extensions dropped,
 * trailer fields checked like header fields).
 */
sealed interface HttpBody {
    int BUFFER = 64 * 1024;
    int MAX_CHUNK_LINE = 4096;
    int MAX_TRAILER = 16 * 1024;

    /** No body. */
    record None() implements HttpBody {}

    /** Exactly {@code length} bytes. */
    record Fixed(long length) implements HttpBody {}

    /** Chunked transfer coding. */
    record Chunked() implements HttpBody {}

    /** Everything until the sender closes (responses only). */
    record UntilClose() implements HttpBody {}

    /** A request's framing; refuses ambiguous framing (both Content-Length and Transfer-Encoding, or odd codings). */
    static HttpBody ofRequest(HttpHead head, String version) throws HttpHead.Malformed {
        HttpBody body = framing(head, false);
        if (body instanceof Chunked && version.equals("HTTP/1.0")) {
            throw new HttpHead.Malformed(400, "chunked transfer coding is not valid in HTTP/1.0");
        }
        return body instanceof UntilClose ? new None() : body;
    }

    /** A response's framing for a request with {@code method}. */
    static HttpBody ofResponse(HttpHead head, String method, int status) throws HttpHead.Malformed {
        if (method.equals("HEAD") || status / 100 == 1 || status == 204 || status == 304) {
            return new None();
        }
        return framing(head, true);
    }

    private static HttpBody framing(HttpHead head, boolean response) throws HttpHead.Malformed {
        String te = null;
        String cl = null;
        for (HttpHead.Field f : head.fields()) {
            if (f.is("transfer-encoding")) {
                if (te != null) {
                    throw new HttpHead.Malformed(400, "Transfer-Encoding appears more than once");
                }
                te = f.value();
            } else if (f.is("content-length")) {
                if (cl != null && !cl.equals(f.value())) {
                    throw new HttpHead.Malformed(400, "conflicting Content-Length headers");
                }
                cl = f.value();
            }
        }
        if (te != null) {
            if (cl != null) {
                throw new HttpHead.Malformed(400, "both Content-Length and Transfer-Encoding: refused as ambiguous");
            }
            if (!te.toLowerCase(Locale.ROOT).equals("chunked")) {
                throw new HttpHead.Malformed(response ? 502 : 501,
                        "Transfer-Encoding '" + te + "' is not supported: only chunked");
            }
            return new Chunked();
        }
        if (cl != null) {
            if (cl.isEmpty() || cl.length() > 18 || !cl.chars().allMatch(c -> c >= '0' && c <= '9')) {
                throw new HttpHead.Malformed(400, "Content-Length is not a number");
            }
            return new Fixed(Long.parseLong(cl));
        }
        return new UntilClose();
    }

    /** Copies this body from {@code in} to {@code out}, flushing at the end. */
    default void copy(InputStream in, OutputStream out) throws IOException {
        switch (this) {
            case None n -> { }
            case Fixed f -> copyFixed(in, out, f.length());
            case Chunked c -> copyChunked(in, out);
            case UntilClose u -> in.transferTo(out);
        }
        out.flush();
    }

    private static void copyFixed(InputStream in, OutputStream out, long length) throws IOException {
        byte[] buf = new byte[(int) Math.min(BUFFER, Math.max(length, 1))];
        long left = length;
        while (left > 0) {
            int n = in.read(buf, 0, (int) Math.min(buf.length, left));
            if (n < 0) {
                throw new EOFException("the body ended " + left + " bytes early");
            }
            out.write(buf, 0, n);
            left -= n;
        }
    }

    private static void copyChunked(InputStream in, OutputStream out) throws IOException {
        while (true) {
            String line = line(in, MAX_CHUNK_LINE);
            int semi = line.indexOf(';');
            String hex = (semi < 0 ? line : line.substring(0, semi)).strip();
            if (hex.isEmpty() || hex.length() > 15 || !hex.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
                throw new HttpHead.Malformed(400, "malformed chunk size");
            }
            long size = Long.parseLong(hex, 16);
            out.write((Long.toHexString(size) + "\r\n").getBytes(StandardCharsets.US_ASCII));
            if (size == 0) {
                int budget = MAX_TRAILER;
                while (true) {
                    String trailer = line(in, MAX_CHUNK_LINE);
                    budget -= trailer.length() + 2;
                    if (budget < 0) {
                        throw new HttpHead.Malformed(400, "the chunked trailer is too large");
                    }
                    if (!trailer.isEmpty()) {
                        int colon = trailer.indexOf(':');
                        if (colon <= 0 || !HttpHead.isToken(trailer.substring(0, colon))
                                || !HttpHead.isFieldValue(trailer.substring(colon + 1))) {
                            throw new HttpHead.Malformed(400, "malformed trailer field");
                        }
                        // Trailers are never rewritten, so a placeholder there would leave as is:
                        // refused (the request is cut short before the trailer is sent).
                        if (trailer.toLowerCase(java.util.Locale.ROOT).contains(SecretBinding.PREFIX)) {
                            throw new HttpHead.Malformed(400, "a secret placeholder in a chunked trailer is never substituted: refused");
                        }
                    }
                    out.write((trailer + "\r\n").getBytes(StandardCharsets.ISO_8859_1));
                    if (trailer.isEmpty()) {
                        return;
                    }
                }
            }
            copyFixed(in, out, size);
            if (!line(in, 0).isEmpty()) {
                throw new HttpHead.Malformed(400, "chunk data is longer than its size");
            }
            out.write('\r');
            out.write('\n');
        }
    }

    /** Reads a CRLF (or LF) line of at most {@code max} characters. */
    private static String line(InputStream in, int max) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        while (true) {
            int c = in.read();
            if (c < 0) {
                throw new EOFException("the body ended inside its chunked framing");
            }
            if (c == '\n') {
                String s = b.toString(StandardCharsets.ISO_8859_1);
                return s.endsWith("\r") ? s.substring(0, s.length() - 1) : s;
            }
            if (b.size() > max || (c < 0x20 && c != '\r' && c != '\t')) {
                throw new HttpHead.Malformed(400, "malformed chunked framing");
            }
            b.write(c);
        }
    }
}
