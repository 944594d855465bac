package dev.stockade.protocol.link;

import dev.stockade.protocol.AgentException;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * The one {@link EventStream} implementation. A virtual reader thread reads the connection's
 * frames, has the {@link EventDecoder} turn them into events, and hands them over through a queue
 * bounded by bytes, so that {@link #next(Duration)} can wait with a timeout on a blocking channel;
 * when the queue is full the reader stops reading, which passes backpressure on to the agent.
 *
 * <p>{@link #next} is for one consumer thread; {@link #close} may be called from any thread.
 */
final class FrameEventStream<E> implements EventStream<E> {
    private final AgentConnection connection;
    private final Duration frameTimeout;
    private final EventDecoder<E> decoder;
    private final int bufferBytes;
    private final LinkedBlockingQueue<Item> queue = new LinkedBlockingQueue<>();
    private final Semaphore budget;
    private volatile boolean closed;
    private boolean ended;

    /** An event or the AgentException that ended the stream, and the budget it holds. */
    private record Item(Object value, int bytes) {}

    /**
     * Starts reading {@code connection} (whose opening answer was already read); {@code first},
     * when not null, is delivered before anything the agent sends (a process's Started).
     */
    FrameEventStream(AgentConnection connection, Duration frameTimeout, EventDecoder<E> decoder, E first) {
        this.connection = connection;
        this.frameTimeout = frameTimeout;
        this.decoder = decoder;
        this.bufferBytes = decoder.bufferBytes();
        this.budget = new Semaphore(bufferBytes);
        if (first != null) {
            queue.add(new Item(first, 0));
        }
        Thread.ofVirtual().name("agent-stream-" + decoder.what()).start(this::readLoop);
    }

    @Override
    public Optional<E> next(Duration idle) {
        if (ended) {
            throw new IllegalStateException("the stream of " + decoder.what() + " has already ended");
        }
        if (closed) {
            throw new IllegalStateException("the stream of " + decoder.what() + " is closed");
        }
        Item item;
        try {
            item = queue.poll(idle.toNanos(), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AgentException(AgentException.Code.UNAVAILABLE, "interrupted while waiting for " + decoder.what(), e);
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
        @SuppressWarnings("unchecked") // only the decoder's events and AgentExceptions are queued
        E event = (E) item.value();
        if (decoder.isLast(event)) {
            ended = true;
            close();
        }
        return Optional.of(event);
    }

    private void readLoop() {
        // The decoder's sink: notes the last event so the loop stops reading after it.
        boolean[] last = {false};
        EventDecoder.Sink<E> sink = (event, bytes) -> {
            hand(event, bytes);
            if (decoder.isLast(event)) last[0] = true;
        };
        try {
            while (!closed && !last[0]) {
                Frame frame = connection.read(true, frameTimeout, decoder.mapper());
                if (frame == null) {
                    throw new AgentException(AgentException.Code.UNAVAILABLE, "the agent at " + connection.address()
                            + " closed the stream of " + decoder.what() + " before it ended: the agent may have"
                            + " crashed or dropped a client that read too slowly");
                }
                decoder.decode(frame, connection, sink);
            }
        } catch (AgentException e) {
            if (!closed) {
                hand(e, 0);
            }
        } catch (RuntimeException e) {
            if (!closed) {
                hand(new AgentException(AgentException.Code.INTERNAL, "reading the stream of " + decoder.what()
                        + " failed: " + e, e), 0);
            }
        } finally {
            connection.close();
        }
    }

    /** Waits for room in the byte budget, giving up when the consumer closes the stream. */
    private void hand(Object value, int bytes) {
        int cost = Math.max(0, Math.min(bytes, bufferBytes));
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

    @Override
    public void close() {
        closed = true;
        connection.close();
        queue.clear();
    }
}
