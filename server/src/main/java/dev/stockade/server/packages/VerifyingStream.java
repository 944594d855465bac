package dev.stockade.server.packages;

import java.io.IOException;
import java.io.InputStream;
import java.security.MessageDigest;
import java.util.HexFormat;

/**
 * Passes a download through while computing its sha256, and never hands over the whole file unless the
 * digest (and the length, when known) match: the last chunk read is held back until the end of the input
 * is reached and checked, and a mismatch fails the read. Optionally copies the bytes to a {@link Tee} (the
 * cache or a spool file), which is committed only after verification. {@link Upstream} reads it to its end
 * into the tee before anything is served, so a sandbox receives only files that verified.
 *
 * <p>One thread reads it (the proxy's connection thread that asked for the file).
 */
final class VerifyingStream extends InputStream {
    /** Where a copy of the bytes goes; committed only when the whole file verified. */
    interface Tee {
        void write(byte[] b, int off, int len) throws IOException;

        void commit() throws IOException;

        void abort();
    }

    private static final int CHUNK = 1 << 16;

    private final InputStream in;
    private final String expectedSha256;
    private final long expectedLength;
    private final long maxBytes;
    private final Tee tee;
    private final Runnable onMismatch;
    private final String what;
    private final MessageDigest digest = Wheelhouse.sha256Digest();
    private byte[] ready = new byte[0];
    private int readyPos;
    private int readyLen;
    private byte[] held;
    private int heldLen;
    private long count;
    private boolean verified;
    private IOException failure;

    /**
     * @param expectedSha256 lower-case hex digest the whole input must have
     * @param expectedLength the exact length, or -1 if unknown
     * @param tee a copy, or null
     * @param onMismatch called once when the content does not match (to record the refusal)
     * @param what names the file in error messages
     */
    VerifyingStream(InputStream in, String expectedSha256, long expectedLength, long maxBytes, Tee tee,
                    Runnable onMismatch, String what) {
        this.in = in;
        this.expectedSha256 = expectedSha256;
        this.expectedLength = expectedLength;
        this.maxBytes = maxBytes;
        this.tee = tee;
        this.onMismatch = onMismatch;
        this.what = what;
    }

    @Override
    public int read() throws IOException {
        byte[] one = new byte[1];
        int n = read(one, 0, 1);
        return n < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        if (len == 0) return 0;
        while (readyPos == readyLen) {
            if (failure != null) throw failure;
            if (verified) return -1;
            byte[] chunk = new byte[CHUNK];
            int n = in.read(chunk, 0, CHUNK);
            if (n < 0) {
                verify();
                ready = held == null ? new byte[0] : held;
                readyLen = heldLen;
                readyPos = 0;
                held = null;
                verified = true;
                continue;
            }
            count += n;
            if (count > maxBytes || (expectedLength >= 0 && count > expectedLength)) {
                fail("it is longer than " + (expectedLength >= 0 ? expectedLength : maxBytes) + " bytes", false);
            }
            digest.update(chunk, 0, n);
            if (tee != null) tee.write(chunk, 0, n);
            if (held != null) {
                ready = held;
                readyLen = heldLen;
                readyPos = 0;
            }
            held = chunk;
            heldLen = n;
        }
        int n = Math.min(len, readyLen - readyPos);
        System.arraycopy(ready, readyPos, b, off, n);
        readyPos += n;
        return n;
    }

    private void verify() throws IOException {
        if (expectedLength >= 0 && count != expectedLength) {
            fail("it ended after " + count + " of " + expectedLength + " bytes", false);
        }
        String actual = HexFormat.of().formatHex(digest.digest());
        if (!actual.equals(expectedSha256)) {
            fail("its sha256 is " + actual + " but the index promised " + expectedSha256, true);
        }
        if (tee != null) {
            try {
                tee.commit();
            } catch (IOException e) {
                fail("it could not be stored: " + e.getMessage(), false);
            }
        }
    }

    private void fail(String why, boolean mismatch) throws IOException {
        if (tee != null) tee.abort();
        failure = new IOException(what + " was not delivered: " + why + "; the download was aborted");
        if (mismatch && onMismatch != null) onMismatch.run();
        throw failure;
    }

    @Override
    public void close() throws IOException {
        try {
            in.close();
        } finally {
            if (!verified && tee != null) tee.abort();
        }
    }
}
