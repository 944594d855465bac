package dev.stockade.agent;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * A cell's event stream. A virtual reader thread turns frames into {@link CellEvent}s: output bytes
 * are decoded as UTF-8 by one stateful decoder per stream (a character split between two frames
 * stays whole), result, error and end frames are validated by {@link AgentJson}, and an event too
 * large for one frame arrives as {@code {"ev": "large", "size": N}} followed by data frames.
 *
 * <p>Between the reader and the consumer, events wait in a queue bounded by bytes
 * ({@link #BUFFER_BYTES}): the reader stops reading when it is full, which passes backpressure on
 * to the agent. {@link #next} is for one consumer thread; {@link #close} may be called from any.
 */
final class UnixCellStream implements CellStream {
    /** Bytes of events buffered between the reader and the consumer (one larger event still passes). */
    static final int BUFFER_BYTES = 32 << 20;

    private final AgentConnection connection;
    private final String contextId;
    private final Duration frameTimeout;
    private final LinkedBlockingQueue<Item> queue = new LinkedBlockingQueue<>();
    private final Semaphore budget = new Semaphore(BUFFER_BYTES);
    private final CharsetDecoder stdout = decoder();
    private final CharsetDecoder stderr = decoder();
    private byte[] stdoutPending = new byte[0];
    private byte[] stderrPending = new byte[0];
    private volatile boolean closed;
    private boolean ended;

    private record Item(Object value, int bytes) {}

    UnixCellStream(AgentConnection connection, String contextId, Duration frameTimeout) {
        this.connection = connection;
        this.contextId = contextId;
        this.frameTimeout = frameTimeout;
        Thread.ofVirtual().name("agent-cell-" + contextId).start(this::readLoop);
    }

    @Override
    public Optional<CellEvent> next(Duration idle) {
        if (ended) {
            throw new IllegalStateException("the cell's stream (context " + contextId + ") has already ended");
        }
        if (closed) {
            throw new IllegalStateException("the cell's stream (context " + contextId + ") is closed");
        }
        Item item;
        try {
            item = queue.poll(idle.toNanos(), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AgentException(AgentException.Code.UNAVAILABLE, "interrupted while waiting for a cell of context "
                    + contextId, e);
        }
        if (item == null) {
            return Optional.empty();
        }
        budget.release(item.bytes());
        if (item.value() instanceof AgentException e) {
            ended = true;
            close();
            throw new AgentException(e.code(), e.getMessage(), e);
        }
        CellEvent event = (CellEvent) item.value();
        if (event instanceof CellEvent.End) {
            ended = true;
            close();
        }
        return Optional.of(event);
    }

    private void readLoop() {
        try {
            while (!closed) {
                Frame frame = connection.read(true, frameTimeout, AgentJson.CELL_MAPPER);
                if (frame == null) {
                    throw new AgentException(AgentException.Code.UNAVAILABLE, "the agent at " + connection.socket()
                            + " closed the stream of a cell of context " + contextId + " before it ended: the agent"
                            + " may have crashed or dropped a client that read too slowly");
                }
                switch (frame) {
                    case Frame.Stdout(byte[] data) -> text(stdout, data, false, true);
                    case Frame.Stderr(byte[] data) -> text(stderr, data, false, false);
                    case Frame.Json(ObjectNode body) -> {
                        AgentJson.throwIfError(body);
                        if ("large".equals(body.path("ev").textValue())) {
                            body = readLarge(AgentJson.longValue(body, "size"));
                            AgentJson.throwIfError(body);
                        }
                        CellEvent event = AgentJson.cellEvent(body);
                        if (event instanceof CellEvent.End) {
                            text(stdout, new byte[0], true, true); // an incomplete character at the very end
                            text(stderr, new byte[0], true, false);
                        }
                        hand(event, size(event));
                        if (event instanceof CellEvent.End) {
                            return;
                        }
                    }
                    case Frame.Data d -> throw AgentJson.protocol("a data frame outside a large event of a cell stream");
                }
            }
        } catch (AgentException e) {
            if (!closed) {
                hand(e, 0);
            }
        } catch (RuntimeException e) {
            if (!closed) {
                hand(new AgentException(AgentException.Code.INTERNAL, "reading the stream of a cell of context "
                        + contextId + " failed: " + e, e), 0);
            }
        } finally {
            connection.close();
        }
    }

    /** An event sent as data frames: exactly {@code size} bytes, then the empty frame. */
    private ObjectNode readLarge(long size) {
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

    private void text(CharsetDecoder decoder, byte[] data, boolean last, boolean isStdout) {
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
        hand(isStdout ? new CellEvent.Stdout(text) : new CellEvent.Stderr(text), text.length() * 2);
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

    /** Waits for room in the byte budget, giving up when the consumer closes the stream. */
    private void hand(Object value, int bytes) {
        int cost = Math.max(0, Math.min(bytes, BUFFER_BYTES));
        try {
            while (!closed) {
                if (budget.tryAcquire(cost, 200, TimeUnit.MILLISECONDS)) {
                    queue.add(new Item(value, cost));
                    return;
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static CharsetDecoder decoder() {
        return StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPLACE)
                .onUnmappableCharacter(CodingErrorAction.REPLACE);
    }

    @Override
    public void close() {
        closed = true;
        connection.close();
        queue.clear();
    }
}
