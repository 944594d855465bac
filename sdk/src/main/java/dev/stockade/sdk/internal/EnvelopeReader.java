package dev.stockade.sdk.internal;

import dev.stockade.sdk.SandboxException;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;

/**
 * Reads Connect envelopes off a response body as they arrive. Frames may come split across any
 * number of reads; a frame is returned only when complete. Anything that is not a well-formed
 * frame (unknown flag bits, compression we never asked for, a length above the limit, a stream
 * cut mid-frame) fails with a {@link SandboxException} rather than being guessed at.
 * Used by one reader thread at a time.
 */
public final class EnvelopeReader {
    /** Larger than any frame a sane server sends (output chunks are small), small enough to refuse garbage. */
    public static final int DEFAULT_MAX_FRAME_BYTES = 16 * 1024 * 1024;

    private final InputStream in;
    private final int maxFrameBytes;

    public EnvelopeReader(InputStream in) {
        this(in, DEFAULT_MAX_FRAME_BYTES);
    }

    public EnvelopeReader(InputStream in, int maxFrameBytes) {
        this.in = in;
        this.maxFrameBytes = maxFrameBytes;
    }

    /** The next frame, or null when the stream ends cleanly between frames. */
    public Envelope next() throws IOException {
        int flags = in.read();
        if (flags < 0) return null;
        byte[] len = in.readNBytes(4);
        if (len.length < 4) throw malformed("the stream ended inside a frame header");
        long length = ((len[0] & 0xffL) << 24) | ((len[1] & 0xffL) << 16) | ((len[2] & 0xffL) << 8) | (len[3] & 0xffL);
        if ((flags & ~(Envelope.COMPRESSED | Envelope.END_STREAM)) != 0) {
            throw malformed(String.format("unknown frame flags 0x%02x", flags));
        }
        if ((flags & Envelope.COMPRESSED) != 0) {
            throw malformed("the server sent a compressed frame, but this client asked for none");
        }
        if (length > maxFrameBytes) {
            throw malformed("a frame of " + length + " bytes exceeds the limit of " + maxFrameBytes + " bytes");
        }
        byte[] payload = in.readNBytes((int) length);
        if (payload.length < length) {
            throw malformed("the stream ended inside a frame (" + payload.length + " of " + length + " bytes)");
        }
        return new Envelope(flags, payload);
    }

    private static SandboxException malformed(String why) {
        return new SandboxException("malformed Connect stream from the server: " + why
                + ". Check that the URL points at a Stockade or E2B server.", 0, new EOFException(why));
    }
}
