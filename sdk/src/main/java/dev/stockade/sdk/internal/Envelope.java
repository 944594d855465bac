package dev.stockade.sdk.internal;

import java.nio.ByteBuffer;
import java.util.Objects;

/**
 * One frame of a Connect streaming call: a flag byte, a 4-byte big-endian length, then the
 * message. Flag {@link #END_STREAM} marks the final frame, whose message is the end-of-stream
 * JSON ({@code {"error": {...}, "metadata": {...}}}).
 */
public record Envelope(int flags, byte[] payload) {
    public static final int COMPRESSED = 0x01;
    public static final int END_STREAM = 0x02;
    public static final int HEADER_BYTES = 5;

    public Envelope {
        if (flags < 0 || flags > 0xff) throw new IllegalArgumentException("flags must fit a byte: " + flags);
        Objects.requireNonNull(payload, "payload");
    }

    public boolean endStream() {
        return (flags & END_STREAM) != 0;
    }

    /** The frame as bytes on the wire. */
    public byte[] encode() {
        return ByteBuffer.allocate(HEADER_BYTES + payload.length)
                .put((byte) flags)
                .putInt(payload.length)
                .put(payload)
                .array();
    }
}
