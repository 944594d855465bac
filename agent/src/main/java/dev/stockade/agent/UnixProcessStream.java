package dev.stockade.agent;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A process's event stream. A virtual reader thread turns the connection's frames into events and
 * hands them over through a small queue, so that {@link #next(Duration)} can wait with a timeout
 * on a blocking channel; the bounded queue passes backpressure on to the agent.
 *
 * <p>{@link #next} is for one consumer thread; {@link #close} may be called from any thread.
 */
final class UnixProcessStream implements ProcessStream {
    /** Frames buffered between the reader and the consumer: at most 16 MiB even for 1 MiB frames. */
    private static final int QUEUE = 16;

    private final AgentConnection connection;
    private final int pid;
    private final Duration frameTimeout;
    private final BlockingQueue<Object> queue = new ArrayBlockingQueue<>(QUEUE);
    private volatile boolean closed;
    private boolean startDelivered;
    private boolean ended;

    UnixProcessStream(AgentConnection connection, int pid, Duration frameTimeout) {
        this.connection = connection;
        this.pid = pid;
        this.frameTimeout = frameTimeout;
        Thread.ofVirtual().name("agent-stream-" + pid).start(this::readLoop);
    }

    @Override
    public int pid() {
        return pid;
    }

    @Override
    public Optional<AgentEvent> next(Duration idle) {
        if (ended) {
            throw new IllegalStateException("the stream of process " + pid + " has already ended");
        }
        if (closed) {
            throw new IllegalStateException("the stream of process " + pid + " is closed");
        }
        if (!startDelivered) {
            startDelivered = true;
            return Optional.of(new AgentEvent.Started(pid));
        }
        Object item;
        try {
            item = queue.poll(idle.toNanos(), TimeUnit.NANOSECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AgentException(AgentException.Code.UNAVAILABLE, "interrupted while waiting for process " + pid, e);
        }
        if (item == null) {
            return Optional.empty();
        }
        if (item instanceof AgentException e) {
            ended = true;
            close();
            throw new AgentException(e.code(), e.getMessage(), e);
        }
        AgentEvent event = (AgentEvent) item;
        if (event instanceof AgentEvent.Ended) {
            ended = true;
            close();
        }
        return Optional.of(event);
    }

    private void readLoop() {
        try {
            while (!closed) {
                Frame frame = connection.read(true, frameTimeout);
                if (frame == null) {
                    throw new AgentException(AgentException.Code.UNAVAILABLE, "the agent at " + connection.socket()
                            + " closed the stream of process " + pid + " before it ended: the agent may have"
                            + " crashed or dropped a client that read too slowly");
                }
                AgentEvent event = switch (frame) {
                    case Frame.Stdout(byte[] data) -> new AgentEvent.Stdout(data);
                    case Frame.Stderr(byte[] data) -> new AgentEvent.Stderr(data);
                    case Frame.Json(ObjectNode body) -> toEnded(body);
                    case Frame.Data d -> throw AgentJson.protocol("a data frame inside the stream of process " + pid);
                };
                hand(event);
                if (event instanceof AgentEvent.Ended) {
                    return;
                }
            }
        } catch (AgentException e) {
            if (!closed) {
                hand(e);
            }
        } catch (RuntimeException e) {
            if (!closed) {
                hand(new AgentException(AgentException.Code.INTERNAL, "reading the stream of process " + pid
                        + " failed: " + e, e));
            }
        } finally {
            connection.close();
        }
    }

    private static AgentEvent.Ended toEnded(ObjectNode body) {
        AgentJson.throwIfError(body);
        if (!"end".equals(AgentJson.string(body, "ev", 16, false))) {
            throw AgentJson.protocol("unexpected event in a process stream: " + body.get("ev"));
        }
        return AgentJson.ended(body);
    }

    /** Waits for room in the queue, giving up when the consumer closes the stream. */
    private void hand(Object item) {
        try {
            while (!closed) {
                if (queue.offer(item, 200, TimeUnit.MILLISECONDS)) {
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
