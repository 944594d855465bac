package dev.stockade.server.egress;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;
import java.util.Locale;

/**
 * The first flight of a TLS client inside a CONNECT tunnel: reads the TLS records holding the
 * ClientHello (at most 64 KiB, handshake records only) and extracts the SNI host name. Anything
 * that is not a well-formed ClientHello is a {@link NotTls}, never an unchecked exception.
 *
 * @param prefix every byte read, to be forwarded or replayed to the TLS server side
 * @param sni the server_name host name, lowercase without a trailing dot; null when absent
 */
record ClientHello(byte[] prefix, String sni) {
    static final int MAX_BYTES = 64 * 1024;
    private static final int HANDSHAKE = 22;
    private static final int CLIENT_HELLO = 1;

    /** The bytes are not a TLS ClientHello the proxy can read. */
    static final class NotTls extends IOException {
        NotTls(String message) {
            super(message);
        }
    }

    /** Reads records from {@code in} until the ClientHello handshake message is complete. */
    static ClientHello read(InputStream in) throws IOException {
        ByteArrayOutputStream raw = new ByteArrayOutputStream(2048);
        ByteArrayOutputStream handshake = new ByteArrayOutputStream(2048);
        while (true) {
            byte[] header = in.readNBytes(5);
            raw.write(header);
            if (header.length < 5) {
                throw header.length == 0 ? new EOFException("the client sent nothing") : new NotTls("truncated TLS record");
            }
            if ((header[0] & 0xff) != HANDSHAKE || header[1] != 3 || (header[2] & 0xff) > 4) {
                throw new NotTls("not a TLS handshake record");
            }
            int length = ((header[3] & 0xff) << 8) | (header[4] & 0xff);
            if (length == 0 || length > 16384 + 256) {
                throw new NotTls("bad TLS record length " + length);
            }
            if (raw.size() + length > MAX_BYTES) {
                throw new NotTls("ClientHello larger than 64 KiB");
            }
            byte[] fragment = in.readNBytes(length);
            raw.write(fragment);
            if (fragment.length < length) {
                throw new NotTls("truncated TLS record");
            }
            handshake.write(fragment);
            byte[] h = handshake.toByteArray();
            if (h.length >= 4) {
                if ((h[0] & 0xff) != CLIENT_HELLO) {
                    throw new NotTls("the first handshake message is not a ClientHello");
                }
                int bodyLength = ((h[1] & 0xff) << 16) | ((h[2] & 0xff) << 8) | (h[3] & 0xff);
                if (bodyLength > MAX_BYTES) {
                    throw new NotTls("ClientHello larger than 64 KiB");
                }
                if (h.length >= 4 + bodyLength) {
                    return new ClientHello(raw.toByteArray(), sni(Arrays.copyOfRange(h, 4, 4 + bodyLength)));
                }
            }
        }
    }

    /** The SNI host name in a ClientHello body (after the 4-byte handshake header), or null. */
    static String sni(byte[] body) throws NotTls {
        Reader r = new Reader(body);
        r.skip(2 + 32);                 // legacy_version, random
        r.skip(r.u8());                 // legacy_session_id
        r.skip(r.u16());                // cipher_suites
        r.skip(r.u8());                 // legacy_compression_methods
        if (r.remaining() == 0) {
            return null;                // no extensions at all (old clients)
        }
        Reader extensions = r.sub(r.u16());
        String found = null;
        boolean seen = false;
        while (extensions.remaining() > 0) {
            int type = extensions.u16();
            Reader data = extensions.sub(extensions.u16());
            if (type != 0) {
                continue;
            }
            if (seen) {
                throw new NotTls("two server_name extensions");
            }
            seen = true;
            Reader list = data.sub(data.u16());
            while (list.remaining() > 0) {
                int nameType = list.u8();
                byte[] name = list.bytes(list.u16());
                if (nameType == 0) {
                    if (found != null) {
                        throw new NotTls("two host names in server_name");
                    }
                    found = hostName(name);
                }
            }
        }
        return found;
    }

    private static String hostName(byte[] name) throws NotTls {
        if (name.length == 0 || name.length > 255) {
            throw new NotTls("bad SNI length");
        }
        StringBuilder b = new StringBuilder(name.length);
        for (byte x : name) {
            int c = x & 0xff;
            boolean ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
                    || c == '-' || c == '.' || c == '_';
            if (!ok) {
                throw new NotTls("SNI is not a valid host name");
            }
            b.append((char) c);
        }
        String s = b.toString().toLowerCase(Locale.ROOT);
        return s.endsWith(".") ? s.substring(0, s.length() - 1) : s;
    }

    /** Bounds-checked big-endian reads over a slice. */
    private static final class Reader {
        private final byte[] data;
        private int pos;
        private final int end;

        Reader(byte[] data) {
            this(data, 0, data.length);
        }

        private Reader(byte[] data, int start, int end) {
            this.data = data;
            this.pos = start;
            this.end = end;
        }

        int remaining() {
            return end - pos;
        }

        void skip(int n) throws NotTls {
            need(n);
            pos += n;
        }

        int u8() throws NotTls {
            need(1);
            return data[pos++] & 0xff;
        }

        int u16() throws NotTls {
            need(2);
            int v = ((data[pos] & 0xff) << 8) | (data[pos + 1] & 0xff);
            pos += 2;
            return v;
        }

        byte[] bytes(int n) throws NotTls {
            need(n);
            byte[] out = Arrays.copyOfRange(data, pos, pos + n);
            pos += n;
            return out;
        }

        Reader sub(int n) throws NotTls {
            need(n);
            Reader r = new Reader(data, pos, pos + n);
            pos += n;
            return r;
        }

        private void need(int n) throws NotTls {
            if (n < 0 || n > end - pos) {
                throw new NotTls("truncated ClientHello");
            }
        }
    }
}
