package dev.stockade.protocol.link;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.protocol.CellEvent;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * A cell's frames: output bytes are decoded as UTF-8 by one stateful decoder per stream (a
 * character split between two frames stays whole), result, error and end frames are validated by
 * {@link AgentJson}, and an event too large for one frame arrives as {@code {"ev": "large",
 * "size": N}} followed by data frames. Runs on its stream's reader thread only.
 */
final class CellDecoder implements EventDecoder<CellEvent> {
    /** Bytes of events buffered between the reader and the consumer (one larger event still passes). */
    static final int BUFFER_BYTES = 32 << 20;

    private final String contextId;
    private final Duration frameTimeout;
    private final CharsetDecoder stdout = decoder();
    private final CharsetDecoder stderr = decoder();
    private byte[] stdoutPending = new byte[0];
    private byte[] stderrPending = new byte[0];

    CellDecoder(String contextId, Duration frameTimeout) {
        this.contextId = contextId;
        this.frameTimeout = frameTimeout;
    }

    @Override
    public String what() {
        return "a cell of context " + contextId;
    }

    @Override
    public ObjectMapper mapper() {
        return AgentJson.CELL_MAPPER;
    }

    @Override
    public int bufferBytes() {
        return BUFFER_BYTES;
    }

    @Override
    public boolean isLast(CellEvent event) {
        return event instanceof CellEvent.End;
    }

    @Override
    public void decode(Frame frame, AgentConnection connection, Sink<CellEvent> sink) {
        switch (frame) {
            case Frame.Stdout(byte[] data) -> text(sink, stdout, data, false, true);
            case Frame.Stderr(byte[] data) -> text(sink, stderr, data, false, false);
            case Frame.Json(ObjectNode body) -> {
                AgentJson.throwIfError(body);
                if ("large".equals(body.path("ev").textValue())) {
                    body = readLarge(connection, AgentJson.longValue(body, "size"));
                    AgentJson.throwIfError(body);
                }
                CellEvent event = AgentJson.cellEvent(body);
                if (event instanceof CellEvent.End) {
                    text(sink, stdout, new byte[0], true, true); // an incomplete character at the very end
                    text(sink, stderr, new byte[0], true, false);
                }
                sink.hand(event, size(event));
            }
            case Frame.Data d -> throw AgentJson.protocol("a data frame outside a large event of a cell stream");
            case Frame.Terminal t -> throw AgentJson.protocol("a terminal frame inside a cell stream");
        }
    }

    /** An event sent as data frames: exactly {@code size} bytes, then the empty frame. */
    private ObjectNode readLarge(AgentConnection connection, long size) {
        if (size < 0 || size > AgentJson.MAX_CELL_EVENT) {
            throw AgentJson.protocol("a large cell event of " + size + " bytes (the limit is "
                    + AgentJson.MAX_CELL_EVENT + ")");
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream((int) Math.min(size, 1 << 20));
        while (true) {
            connection.arm(frameTimeout);
            Frame frame = connection.read(false, frameTimeout, AgentJson.CELL_MAPPER);
            if (!(frame instanceof Frame.Data(byte[] data))) {
                throw AgentJson.protocol("a large cell event must continue with data frames");
            }
            if (data.length == 0) {
                break;
            }
            if (out.size() + (long) data.length > size) {
                throw AgentJson.protocol("a large cell event is longer than its announced " + size + " bytes");
            }
            out.write(data, 0, data.length);
        }
        connection.disarm();
        if (out.size() != size) {
            throw AgentJson.protocol("a large cell event is shorter than its announced " + size + " bytes");
        }
        return connection.parse(out.toByteArray(), AgentJson.CELL_MAPPER);
    }

    private void text(Sink<CellEvent> sink, CharsetDecoder decoder, byte[] data, boolean last, boolean isStdout) {
        // UTF-8 decoding leaves an incomplete character at the end of the input: keep those bytes
        // (at most 3) for the next frame of the same stream.
        byte[] pending = isStdout ? stdoutPending : stderrPending;
        ByteBuffer in = ByteBuffer.allocate(pending.length + data.length).put(pending).put(data).flip();
        CharBuffer chars = CharBuffer.allocate((int) (in.remaining() * (double) decoder.maxCharsPerByte()) + 4);
        decoder.decode(in, chars, last);
        if (last) {
            decoder.flush(chars);
        }
        byte[] rest = new byte[in.remaining()];
        in.get(rest);
        if (isStdout) {
            stdoutPending = rest;
        } else {
            stderrPending = rest;
        }
        chars.flip();
        if (!chars.hasRemaining()) {
            return;
        }
        String text = chars.toString();
        sink.hand(isStdout ? new CellEvent.Stdout(text) : new CellEvent.Stderr(text), text.length() * 2);
    }

    private static int size(CellEvent event) {
        return switch (event) {
            case CellEvent.Result r -> r.data().values().stream()
                    .mapToInt(v -> v instanceof String s ? s.length() * 2 : 1024).sum();
            case CellEvent.Error e -> (e.value().length() + e.traceback().length()) * 2;
            case CellEvent.End end -> end.files().size() * 256;
            default -> 64;
        };
    }

    private static CharsetDecoder decoder() {
        return StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPLACE)
                .onUnmappableCharacter(CodingErrorAction.REPLACE);
    }
}
