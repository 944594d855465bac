package dev.stockade.server.templates;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.zip.GZIPOutputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

/**
 * Builds the archives the COPY tests feed: well-formed ones through Commons Compress (as node-tar
 * and Python's tarfile would write them), and nasty ones from raw ustar headers where the writer
 * would refuse or clean the name. Test-only.
 */
final class Archives {
    private final ByteArrayOutputStream tar = new ByteArrayOutputStream();
    private final TarArchiveOutputStream out;
    /** Every header written by hand (Commons Compress's writer buffers blocks: the two cannot mix). */
    private final boolean handMade;

    private Archives(int longFileMode, boolean handMade) {
        out = new TarArchiveOutputStream(tar, "UTF-8");
        out.setLongFileMode(longFileMode);
        out.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
        this.handMade = handMade;
    }

    /** Written by Commons Compress, long names as PAX headers (node-tar's and Python's way). */
    Archives() {
        this(TarArchiveOutputStream.LONGFILE_POSIX, false);
    }

    /** Written by Commons Compress, long names as GNU 'L' entries (GNU tar's way). */
    static Archives gnu() {
        return new Archives(TarArchiveOutputStream.LONGFILE_GNU, false);
    }

    /** Every header raw ustar, names exactly as given. */
    static Archives handMade() {
        return new Archives(TarArchiveOutputStream.LONGFILE_ERROR, true);
    }

    Archives dir(String name, int mode) throws IOException {
        if (handMade) return raw(name, TarArchiveEntry.LF_DIR, "", mode, new byte[0]);
        TarArchiveEntry e = new TarArchiveEntry(name, TarArchiveEntry.LF_DIR);
        e.setMode(040000 | mode);
        out.putArchiveEntry(e);
        out.closeArchiveEntry();
        return this;
    }

    Archives file(String name, int mode, String content) throws IOException {
        return file(name, mode, content.getBytes(StandardCharsets.UTF_8));
    }

    Archives file(String name, int mode, byte[] content) throws IOException {
        if (handMade) return raw(name, TarArchiveEntry.LF_NORMAL, "", mode, content);
        TarArchiveEntry e = new TarArchiveEntry(name);
        e.setMode(0100000 | mode);
        e.setSize(content.length);
        e.setModTime(1_700_000_000_000L);
        out.putArchiveEntry(e);
        out.write(content);
        out.closeArchiveEntry();
        return this;
    }

    /** A file of {@code size} zero bytes, written in chunks (a bomb's payload). */
    Archives zeros(String name, long size) throws IOException {
        TarArchiveEntry e = new TarArchiveEntry(name);
        e.setMode(0100644);
        e.setSize(size);
        out.putArchiveEntry(e);
        byte[] chunk = new byte[1 << 20];
        for (long left = size; left > 0; left -= chunk.length) out.write(chunk, 0, (int) Math.min(chunk.length, left));
        out.closeArchiveEntry();
        return this;
    }

    Archives symlink(String name, String target) throws IOException {
        return link(name, TarArchiveEntry.LF_SYMLINK, target, 0777);
    }

    Archives hardLink(String name, String target) throws IOException {
        return link(name, TarArchiveEntry.LF_LINK, target, 0644);
    }

    private Archives link(String name, byte type, String target, int mode) throws IOException {
        if (handMade) return raw(name, type, target, mode, new byte[0]);
        TarArchiveEntry e = new TarArchiveEntry(name, type);
        e.setMode((type == TarArchiveEntry.LF_SYMLINK ? 0120000 : 0100000) | mode);
        e.setLinkName(target);
        out.putArchiveEntry(e);
        out.closeArchiveEntry();
        return this;
    }

    /** A PAX extended header with one record, for the entry that follows. */
    Archives pax(String key, String value) throws IOException {
        String body = " " + key + "=" + value + "\n";
        int length = body.getBytes(StandardCharsets.UTF_8).length;
        int total = length + String.valueOf(length).length();
        if (String.valueOf(total).length() != String.valueOf(length).length()) total++;
        return raw("PaxHeader", TarArchiveEntry.LF_PAX_EXTENDED_HEADER_LC, "", 0644, (total + body).getBytes(StandardCharsets.UTF_8));
    }

    /** An entry of any type flag with no content (devices, fifos, GNU sparse markers...). */
    Archives special(String name, byte type) throws IOException {
        return raw(name, type, "", 0644, new byte[0]);
    }

    /**
     * A ustar header written byte by byte, so that the name is exactly {@code name} (absolute,
     * "..", anything), followed by its content.
     */
    Archives raw(String name, byte type, String link, int mode, byte[] content) throws IOException {
        if (!handMade) throw new IllegalStateException("raw headers only in a handMade() archive");
        byte[] h = new byte[512];
        put(h, 0, 100, name.getBytes(StandardCharsets.UTF_8));
        octal(h, 100, 8, mode);
        octal(h, 108, 8, 0);
        octal(h, 116, 8, 0);
        octal(h, 124, 12, content.length);
        octal(h, 136, 12, 1_700_000_000L);
        h[156] = type;
        put(h, 157, 100, link.getBytes(StandardCharsets.UTF_8));
        put(h, 257, 6, "ustar\0".getBytes(StandardCharsets.US_ASCII));
        put(h, 263, 2, "00".getBytes(StandardCharsets.US_ASCII));
        for (int i = 148; i < 156; i++) h[i] = ' ';
        long sum = 0;
        for (byte b : h) sum += b & 0xff;
        byte[] c = String.format("%06o", sum).getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(c, 0, h, 148, 6);
        h[154] = 0;
        h[155] = ' ';
        tar.write(h);
        tar.write(content);
        int pad = (512 - content.length % 512) % 512;
        tar.write(new byte[pad]);
        return this;
    }

    private static void put(byte[] h, int at, int len, byte[] v) {
        System.arraycopy(v, 0, h, at, Math.min(len, v.length));
    }

    private static void octal(byte[] h, int at, int len, long v) {
        byte[] s = String.format("%0" + (len - 1) + "o", v).getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(s, 0, h, at, len - 1);
        h[at + len - 1] = 0;
    }

    /** The plain tar (the step's {@code gzip: false}). */
    byte[] tar() throws IOException {
        if (handMade) tar.write(new byte[1024]);
        else out.finish();
        return tar.toByteArray();
    }

    /** The tar, gzip-compressed (the SDKs' default). */
    byte[] gz() throws IOException {
        return gzip(tar());
    }

    static byte[] gzip(byte[] data) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        try (OutputStream z = new GZIPOutputStream(b)) {
            z.write(data);
        }
        return b.toByteArray();
    }
}
