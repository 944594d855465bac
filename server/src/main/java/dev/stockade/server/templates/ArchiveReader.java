package dev.stockade.server.templates;

import dev.stockade.server.templates.CopyRefused.Code;
import java.io.BufferedInputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.ArrayList;
import java.util.List;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;

/**
 * Reads a COPY step's upload — a tar, gzip-compressed unless the step said {@code gzip: false}
 * (told apart by gzip's magic 1f 8b, as the SDKs send no type) — entry by entry, as hostile input:
 * ustar, PAX and GNU long names are understood (Commons Compress), only files, directories,
 * symlinks and hard links pass, every name is made relative and checked, and the uncompressed
 * stream (headers included) and the number of entries are bounded, so a gzip bomb ends at the
 * limit having inflated no more than it. Used by {@link CopyToLayer} on the build's thread; not
 * thread-safe.
 */
final class ArchiveReader implements AutoCloseable {
    /** What an entry is once the reader accepts it. */
    enum Kind { FILE, DIRECTORY, SYMLINK, HARD_LINK }

    /**
     * One accepted entry: {@code name} relative to the upload's root, normalised ("" for the root
     * itself, no "." or empty segments), {@code raw} as the archive spelled it (for messages),
     * {@code link} the symlink's target verbatim or the hard link's normalised target name.
     */
    record Entry(String name, String raw, Kind kind, long size, int mode, long mtimeMillis, String link) {}

    /**
     * The most bytes one entry's headers may take: PAX records and GNU long names are read into
     * memory by the tar reader, so they get a bound of their own, far above any real name (PATH_MAX
     * is 4096) and far below the archive's limit.
     */
    static final int MAX_HEADER_BYTES = 1 << 20;

    private final CountingStream counted;
    private final TarArchiveInputStream tar;
    private final int maxEntries;
    private int entries;

    /**
     * @param maxBytes the most uncompressed bytes (tar headers included) the archive may hold
     * @param maxEntries the most entries it may hold
     */
    ArchiveReader(InputStream upload, long maxBytes, int maxEntries) {
        this.maxEntries = maxEntries;
        try {
            BufferedInputStream in = new BufferedInputStream(upload);
            in.mark(2);
            int b0 = in.read();
            int b1 = in.read();
            in.reset();
            InputStream plain = b0 == 0x1f && b1 == 0x8b
                    ? GzipCompressorInputStream.builder().setInputStream(in).setDecompressConcatenated(true).get()
                    : in;
            this.counted = new CountingStream(plain, maxBytes);
            this.tar = new TarArchiveInputStream(counted, "UTF-8");
        } catch (IOException e) {
            throw malformed(e);
        }
    }

    /** The next accepted entry, its content readable from {@link #content()}; null at the end. */
    Entry next() {
        TarArchiveEntry current = tar.getCurrentEntry();
        if (current != null) drain(current.getName());
        TarArchiveEntry e;
        counted.budget = counted.count + MAX_HEADER_BYTES;
        try {
            e = tar.getNextEntry();
        } catch (IOException ex) {
            if (counted.overBudget) {
                throw new CopyRefused(Code.TOO_LARGE, "an entry's headers (PAX records, GNU long names) hold more than "
                        + MAX_HEADER_BYTES + " bytes, the limit");
            }
            throw counted.exceeded ? tooLarge() : malformed(ex);
        } finally {
            counted.budget = Long.MAX_VALUE;
        }
        if (e == null) return null;
        if (++entries > maxEntries) {
            throw new CopyRefused(Code.TOO_MANY_ENTRIES, "the archive has more than " + maxEntries + " entries, the limit");
        }
        String raw = e.getName();
        Kind kind = kind(e, raw);
        if (kind == Kind.FILE && e.getSize() > counted.max - counted.count) throw tooLarge();
        String link = switch (kind) {
            case SYMLINK -> symlinkTarget(raw, e.getLinkName());
            case HARD_LINK -> normalise(e.getLinkName(), "the hard link " + CopyRefused.shown(raw) + "'s target");
            case FILE, DIRECTORY -> null;
        };
        return new Entry(normalise(raw, "the entry"), raw, kind, kind == Kind.FILE ? e.getSize() : 0,
                e.getMode() & 07777, e.getLastModifiedTime().toMillis(), link);
    }

    /**
     * Reads the rest of the current entry's data (an entry skipped as outside the source, or a
     * symlink's none), so that what the next header read consumes is headers only.
     */
    private void drain(String raw) {
        byte[] sink = new byte[64 * 1024];
        try {
            while (tar.read(sink, 0, sink.length) >= 0) {
                // counted by the stream below, against the archive's limit
            }
        } catch (IOException e) {
            throw readFailure(raw, e);
        }
    }

    /** The current entry's bytes; reading past the limit fails with {@link Code#TOO_LARGE}. */
    InputStream content() {
        return new FilterInputStream(tar) {
            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                return tar.read(b, off, len);
            }

            @Override
            public void close() {
                // the archive stays open for the next entry
            }
        };
    }

    /** Maps a failure while reading entry bytes to the archive's own refusal. */
    CopyRefused readFailure(String raw, IOException e) {
        return counted.exceeded ? tooLarge()
                : new CopyRefused(Code.MALFORMED_ARCHIVE, "the archive ends inside entry " + CopyRefused.shown(raw) + ": " + safe(e));
    }

    private static Kind kind(TarArchiveEntry e, String raw) {
        if (e.isSparse() || e.isGNUSparse() || e.isPaxGNUSparse() || e.isStarSparse()) {
            throw unsupported(raw, "a sparse file");
        }
        return switch (e.getLinkFlag()) {
            case TarArchiveEntry.LF_OLDNORM, TarArchiveEntry.LF_NORMAL, TarArchiveEntry.LF_CONTIG ->
                    raw.endsWith("/") ? Kind.DIRECTORY : Kind.FILE; // pre-POSIX tars mark directories by the slash
            case TarArchiveEntry.LF_DIR -> Kind.DIRECTORY;
            case TarArchiveEntry.LF_SYMLINK -> Kind.SYMLINK;
            case TarArchiveEntry.LF_LINK -> Kind.HARD_LINK;
            case TarArchiveEntry.LF_CHR -> throw unsupported(raw, "a character device");
            case TarArchiveEntry.LF_BLK -> throw unsupported(raw, "a block device");
            case TarArchiveEntry.LF_FIFO -> throw unsupported(raw, "a fifo");
            default -> throw unsupported(raw, "of tar type '" + (char) e.getLinkFlag() + "'");
        };
    }

    private static String symlinkTarget(String raw, String target) {
        if (target == null || target.isEmpty() || target.indexOf('\0') >= 0 || target.length() > 4095) {
            throw new CopyRefused(Code.BAD_SYMLINK, "the symlink " + CopyRefused.shown(raw)
                    + " has an empty, overlong or NUL-holding target");
        }
        return target;
    }

    /**
     * {@code raw} as a relative name: "./" and empty segments dropped; absolute names, ".." segments
     * and NULs refused (tar would write outside the directory it extracts into).
     */
    static String normalise(String raw, String what) {
        if (raw == null || raw.indexOf('\0') >= 0) {
            throw new CopyRefused(Code.UNSAFE_NAME, what + " has no name or a NUL in it");
        }
        if (raw.startsWith("/")) {
            throw new CopyRefused(Code.UNSAFE_NAME, what + " " + CopyRefused.shown(raw) + " is absolute; names are relative to the context directory");
        }
        List<String> parts = new ArrayList<>();
        for (String s : raw.split("/")) {
            if (s.isEmpty() || s.equals(".")) continue;
            if (s.equals("..")) {
                throw new CopyRefused(Code.UNSAFE_NAME, what + " " + CopyRefused.shown(raw) + " has a '..' segment");
            }
            parts.add(s);
        }
        return String.join("/", parts);
    }

    private static CopyRefused unsupported(String raw, String what) {
        return new CopyRefused(Code.UNSUPPORTED_TYPE, "the entry " + CopyRefused.shown(raw) + " is " + what
                + "; a template layer holds only files, directories, symlinks and hard links");
    }

    private CopyRefused tooLarge() {
        return new CopyRefused(Code.TOO_LARGE, "the archive holds more than " + counted.max + " bytes uncompressed, the limit");
    }

    private static CopyRefused malformed(IOException e) {
        return new CopyRefused(Code.MALFORMED_ARCHIVE, "the upload is not a tar or tar.gz archive: " + safe(e));
    }

    /** The reader's words about a stream (never a host path: the reader only ever saw a stream). */
    private static String safe(IOException e) {
        return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    }

    @Override
    public void close() {
        try {
            tar.close();
        } catch (IOException ignored) {
            // the upload's stream: nothing of the layer depends on closing it cleanly
        }
    }

    /**
     * Counts uncompressed bytes and fails past the limit, before the bytes are used; while a header
     * is read, also past that header's budget.
     */
    private static final class CountingStream extends FilterInputStream {
        final long max;
        long count;
        boolean exceeded;
        long budget = Long.MAX_VALUE;
        boolean overBudget;

        CountingStream(InputStream in, long max) {
            super(in);
            this.max = max;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            long bound = Math.min(max, budget);
            int n = super.read(b, off, (int) Math.min(len, bound - count + 1));
            if (n > 0) count += n;
            if (count > max) {
                exceeded = true;
                throw new IOException("more than " + max + " bytes uncompressed");
            }
            if (count > budget) {
                overBudget = true;
                throw new IOException("an entry's headers are too large");
            }
            return n;
        }

        @Override
        public long skip(long n) throws IOException {
            // skipping must count too: a bomb's entries outside the copied source are skipped, not read
            byte[] sink = new byte[8192];
            long done = 0;
            while (done < n) {
                int r = read(sink, 0, (int) Math.min(sink.length, n - done));
                if (r < 0) break;
                done += r;
            }
            return done;
        }
    }
}
