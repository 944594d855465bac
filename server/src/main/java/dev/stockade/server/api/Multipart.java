package dev.stockade.server.api;

import dev.stockade.server.error.StockadeError;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PushbackInputStream;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * A streaming reader of multipart/form-data bodies (RFC 7578), as the E2B SDK sends file uploads:
 * each part is handed on as a stream while it arrives, so a 50 MiB upload never sits in memory.
 * Hostile input: header blocks ({@value #MAX_HEADER_BYTES} bytes a part) and the number of parts are
 * bounded, a missing boundary or truncated body is INVALID_ARGUMENT.
 */
final class Multipart {
    private static final int MAX_HEADER_BYTES = 16 * 1024;
    /**
     * Parts in one body (issue 15: 100,000 one-byte parts held a request past its time budget). Each
     * file part is a write in the sandbox; the SDKs send one part per file of a batch.
     */
    static final int MAX_PARTS = 1000;

    record Part(String name, String filename, InputStream content) {}

    private final PushbackInputStream in;
    private final byte[] delimiter; // CRLF--boundary
    private boolean done;
    private PartStream current;
    private int parts;

    Multipart(InputStream body, String contentType) {
        String boundary = boundary(contentType);
        this.delimiter = ("\r\n--" + boundary).getBytes(StandardCharsets.ISO_8859_1);
        this.in = new PushbackInputStream(body, 16 * 1024 + delimiter.length);
        try {
            // The body starts with --boundary (no leading CRLF); make it look like the others.
            in.unread(new byte[] {'\r', '\n'});
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static String boundary(String contentType) {
        if (contentType == null) throw StockadeError.invalid("multipart body without Content-Type");
        for (String p : contentType.split(";")) {
            String t = p.trim();
            if (t.toLowerCase(Locale.ROOT).startsWith("boundary=")) {
                String b = t.substring(9);
                if (b.startsWith("\"") && b.endsWith("\"") && b.length() >= 2) b = b.substring(1, b.length() - 1);
                if (b.isEmpty() || b.length() > 200) throw StockadeError.invalid("multipart boundary is empty or too long");
                return b;
            }
        }
        throw StockadeError.invalid("multipart Content-Type has no boundary");
    }

    /** The next part, or null after the last one. The previous part's stream is drained first. */
    Part next() throws IOException {
        if (done) return null;
        if (current != null) {
            current.transferTo(OutputStreamNull.INSTANCE);
        } else {
            // Skip the preamble up to the first delimiter.
            new PartStream().transferTo(OutputStreamNull.INSTANCE);
        }
        // After a delimiter: "--" ends the body, CRLF starts a part.
        int a = in.read(), b = in.read();
        if (a == '-' && b == '-') {
            done = true;
            return null;
        }
        if (a != '\r' || b != '\n') throw StockadeError.invalid("malformed multipart body: bad delimiter line");
        if (++parts > MAX_PARTS) {
            throw new StockadeError(StockadeError.Code.PAYLOAD_TOO_LARGE, "the multipart body has more than " + MAX_PARTS
                    + " parts: send the files in several requests");
        }
        String name = null, filename = null;
        int total = 0;
        while (true) {
            String line = readLine();
            total += line.length() + 2;
            if (total > MAX_HEADER_BYTES) throw StockadeError.invalid("multipart part headers are too large");
            if (line.isEmpty()) break;
            int colon = line.indexOf(':');
            if (colon < 0) continue;
            String h = line.substring(0, colon).trim().toLowerCase(Locale.ROOT);
            if (h.equals("content-disposition")) {
                name = param(line, "name");
                filename = param(line, "filename");
            }
        }
        current = new PartStream();
        return new Part(name, filename, current);
    }

    private String readLine() throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        while (true) {
            int c = in.read();
            if (c < 0) throw StockadeError.invalid("malformed multipart body: it ends inside part headers");
            if (c == '\r') {
                int d = in.read();
                if (d == '\n') return b.toString(StandardCharsets.UTF_8);
                b.write(c);
                if (d >= 0) in.unread(d);
                continue;
            }
            b.write(c);
            if (b.size() > MAX_HEADER_BYTES) throw StockadeError.invalid("multipart part headers are too large");
        }
    }

    /**
     * A parameter of a Content-Disposition header. Quoted values may hold ';' and '=' (a file name
     * such as "a;b=c.txt" is a whole path, not two parameters); undici escapes '"' inside them as %22.
     */
    static String param(String header, String key) {
        int n = header.length();
        int i = header.indexOf(';');
        while (i >= 0 && i < n) {
            i++; // past ';'
            while (i < n && (header.charAt(i) == ' ' || header.charAt(i) == '\t')) i++;
            int eq = header.indexOf('=', i);
            int semi = header.indexOf(';', i);
            if (eq < 0) return null;
            if (semi >= 0 && semi < eq) {
                i = semi; // a parameter without a value
                continue;
            }
            String name = header.substring(i, eq).trim();
            i = eq + 1;
            while (i < n && (header.charAt(i) == ' ' || header.charAt(i) == '\t')) i++;
            String value;
            if (i < n && header.charAt(i) == '"') {
                int close = header.indexOf('"', i + 1);
                if (close < 0) close = n;
                value = header.substring(i + 1, close).replace("%22", "\"");
                i = close + 1;
                int next = i < n ? header.indexOf(';', i) : -1;
                i = next < 0 ? n : next;
            } else {
                int next = header.indexOf(';', i);
                value = header.substring(i, next < 0 ? n : next).trim();
                i = next < 0 ? n : next;
            }
            if (name.equalsIgnoreCase(key)) return value;
        }
        return null;
    }

    /** The bytes of one part, ending right before the next delimiter (which it consumes). */
    private final class PartStream extends InputStream {
        private boolean ended;
        private final byte[] window = new byte[8192 + 256];

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            int n = read(one, 0, 1);
            return n < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] buf, int off, int len) throws IOException {
            if (ended) return -1;
            if (len == 0) return 0;
            int want = Math.min(len, 8192) + delimiter.length;
            int got = in.readNBytes(window, 0, Math.min(want, window.length));
            if (got == 0) throw StockadeError.invalid("malformed multipart body: it ends without a closing boundary");
            int idx = indexOf(window, got, delimiter);
            if (idx >= 0) {
                in.unread(window, idx + delimiter.length, got - idx - delimiter.length);
                ended = true;
                System.arraycopy(window, 0, buf, off, idx);
                return idx == 0 ? -1 : idx;
            }
            if (got < delimiter.length) throw StockadeError.invalid("malformed multipart body: it ends without a closing boundary");
            // Keep the tail that could be the start of a delimiter.
            int safe = Math.min(got - delimiter.length + 1, len);
            in.unread(window, safe, got - safe);
            System.arraycopy(window, 0, buf, off, safe);
            return safe;
        }
    }

    private static int indexOf(byte[] hay, int len, byte[] needle) {
        outer:
        for (int i = 0; i <= len - needle.length; i++) {
            for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
            return i;
        }
        return -1;
    }

    private static final class OutputStreamNull extends java.io.OutputStream {
        static final OutputStreamNull INSTANCE = new OutputStreamNull();

        @Override
        public void write(int b) {}

        @Override
        public void write(byte[] b, int off, int len) {}
    }
}
