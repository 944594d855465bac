package dev.stockade.server.egress;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The start line and header fields of an HTTP/1.x message, read with hard bounds (start line
 * 8 KiB, head 64 KiB, 100 fields) and strict syntax: no obsolete line folding, no whitespace
 * before the colon, no control characters in values. What the proxy forwards it writes itself,
 * from these parsed fields, so nothing the sandbox framed oddly reaches an upstream as-is.
 *
 * @param startLine the request line or status line, without CRLF
 * @param fields the header fields in order, names as sent
 */
record HttpHead(String startLine, List<Field> fields) {
    static final int MAX_START_LINE = 8192;
    static final int MAX_HEAD = 65536;
    static final int MAX_FIELDS = 100;

    HttpHead {
        fields = List.copyOf(fields);
    }

    /** One header field. */
    record Field(String name, String value) {
        boolean is(String lowerName) {
            return name.equalsIgnoreCase(lowerName);
        }
    }

    /** A head the proxy refuses to parse, with the status to answer (400, 414, 431) and why. */
    static final class Malformed extends IOException {
        private final int status;

        Malformed(int status, String message) {
            super(message);
            this.status = status;
        }

        int status() {
            return status;
        }
    }

    /** A parsed request line. */
    record RequestLine(String method, String target, String version) {
        static RequestLine parse(String line) throws Malformed {
            String[] parts = line.split(" ", -1);
            if (parts.length != 3 || !isToken(parts[0]) || parts[1].isEmpty()) {
                throw new Malformed(400, "malformed request line");
            }
            for (int i = 0; i < parts[1].length(); i++) {
                char c = parts[1].charAt(i);
                if (c <= 0x20 || c >= 0x7f) {
                    throw new Malformed(400, "the request target contains a space, control or non-ASCII character");
                }
            }
            if (!parts[2].equals("HTTP/1.1") && !parts[2].equals("HTTP/1.0")) {
                throw new Malformed(parts[2].startsWith("HTTP/") ? 505 : 400,
                        "only HTTP/1.1 and HTTP/1.0 are spoken here");
            }
            return new RequestLine(parts[0], parts[1], parts[2]);
        }
    }

    /**
     * Reads one head. Returns null if the stream ends before its first byte (the peer is done).
     *
     * @throws Malformed for anything over the bounds or badly formed
     * @throws IOException if the stream fails or ends inside the head
     */
    static HttpHead read(InputStream in) throws IOException {
        int[] budget = {MAX_HEAD};
        String start = null;
        for (int blank = 0; start == null; blank++) {
            String line = readLine(in, MAX_START_LINE, budget, blank == 0, 414, "the request line is longer than 8 KiB");
            if (line == null) {
                return null;
            }
            if (!line.isEmpty()) {
                start = line;
            } else if (blank >= 2) {
                throw new Malformed(400, "empty lines instead of a request");
            }
        }
        List<Field> fields = new ArrayList<>();
        while (true) {
            String line = readLine(in, MAX_HEAD, budget, false, 431, "the header section is larger than 64 KiB");
            if (line.isEmpty()) {
                return new HttpHead(start, fields);
            }
            if (fields.size() >= MAX_FIELDS) {
                throw new Malformed(431, "more than " + MAX_FIELDS + " header fields");
            }
            if (line.charAt(0) == ' ' || line.charAt(0) == '\t') {
                throw new Malformed(400, "folded header lines are not accepted");
            }
            int colon = line.indexOf(':');
            if (colon <= 0 || !isToken(line.substring(0, colon))) {
                throw new Malformed(400, "malformed header field name");
            }
            String value = line.substring(colon + 1).strip();
            if (!isFieldValue(value)) {
                throw new Malformed(400, "a header value contains control characters");
            }
            fields.add(new Field(line.substring(0, colon), value));
        }
    }

    /**
     * Reads up to LF. Returns null at end of stream before any byte when {@code eofOk}.
     * CR is accepted only right before LF.
     */
    private static String readLine(InputStream in, int max, int[] budget, boolean eofOk, int status, String tooLong)
            throws IOException {
        ByteArrayOutputStream line = new ByteArrayOutputStream(128);
        boolean cr = false;
        while (true) {
            int b = in.read();
            if (b < 0) {
                if (eofOk && line.size() == 0 && !cr) {
                    return null;
                }
                throw new IOException("the connection ended inside the message head");
            }
            if (--budget[0] < 0) {
                throw new Malformed(431, "the message head is larger than 64 KiB");
            }
            if (b == '\n') {
                return line.toString(StandardCharsets.ISO_8859_1);
            }
            if (cr) {
                throw new Malformed(400, "a bare CR in the message head");
            }
            if (b == '\r') {
                cr = true;
                continue;
            }
            if (b == 0) {
                throw new Malformed(400, "a NUL byte in the message head");
            }
            if (line.size() >= max) {
                throw new Malformed(status, tooLong);
            }
            line.write(b);
        }
    }

    /** The value of the only field named {@code name}; null if absent; Malformed if repeated. */
    String single(String name) throws Malformed {
        String found = null;
        for (Field f : fields) {
            if (f.is(name)) {
                if (found != null) {
                    throw new Malformed(400, "the " + name + " header appears more than once");
                }
                found = f.value();
            }
        }
        return found;
    }

    /** Whether a {@code Connection} field lists {@code token}. */
    boolean connectionHas(String token) {
        for (Field f : fields) {
            if (f.is("connection")) {
                for (String t : f.value().split(",")) {
                    if (t.strip().equalsIgnoreCase(token)) {
                        return true;
                    }
                }
            }
        }
        return false;
    }

    /**
     * The fields without the hop-by-hop ones: Connection and the fields it lists, Keep-Alive, TE,
     * Trailer, Upgrade, and every Proxy-* field. Transfer-Encoding stays (the proxy keeps the
     * chunked framing) and Content-Length stays.
     */
    List<Field> endToEnd() {
        List<String> listed = new ArrayList<>();
        for (Field f : fields) {
            if (f.is("connection")) {
                for (String t : f.value().split(",")) {
                    listed.add(t.strip().toLowerCase(Locale.ROOT));
                }
            }
        }
        List<Field> out = new ArrayList<>();
        for (Field f : fields) {
            String n = f.name().toLowerCase(Locale.ROOT);
            boolean hop = n.equals("connection") || n.equals("keep-alive") || n.equals("te") || n.equals("trailer")
                    || n.equals("upgrade") || n.startsWith("proxy-")
                    || (listed.contains(n) && !n.equals("transfer-encoding") && !n.equals("content-length")
                    && !n.equals("host"));
            if (!hop) {
                out.add(f);
            }
        }
        return out;
    }

    /** Writes a head: start line, fields, empty line, all with CRLF. */
    static void write(OutputStream out, String startLine, List<Field> fields) throws IOException {
        StringBuilder b = new StringBuilder(256).append(startLine).append("\r\n");
        for (Field f : fields) {
            b.append(f.name()).append(": ").append(f.value()).append("\r\n");
        }
        b.append("\r\n");
        out.write(b.toString().getBytes(StandardCharsets.ISO_8859_1));
        out.flush();
    }

    /** RFC 9110 token: the characters of methods and field names. */
    static boolean isToken(String s) {
        if (s.isEmpty()) {
            return false;
        }
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            boolean ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                    || "!#$%&'*+-.^_`|~".indexOf(c) >= 0;
            if (!ok) {
                return false;
            }
        }
        return true;
    }

    /** A field value: visible characters, spaces, tabs and obs-text; no CR, LF, NUL or other controls. */
    static boolean isFieldValue(String s) {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if ((c < 0x20 && c != '\t') || c == 0x7f || c > 0xff) {
                return false;
            }
        }
        return true;
    }
}
