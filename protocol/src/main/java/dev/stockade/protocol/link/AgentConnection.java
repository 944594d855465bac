package dev.stockade.protocol.link;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.protocol.AgentException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.ClosedByInterruptException;
import java.time.Duration;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * One connection to an agent: blocking frame I/O over a {@link Transport.Channel}, with a deadline
 * that closes the channel when it passes, so that no connect, read or write outlives it. Everything
 * read is bounded: a frame is at most {@link Frame#MAX_LENGTH} bytes, JSON is parsed under
 * {@link AgentJson}'s limits, and any violation is an {@link AgentException} with code PROTOCOL.
 *
 * <p>Used by one thread at a time (the caller's virtual thread, or a stream's reader thread);
 * only {@link #close()} and the deadline timer may act from another thread.
 */
final class AgentConnection implements AutoCloseable {
    /** Fires deadlines; its tasks only close channels, so one daemon thread serves every agent. */
    private static final ScheduledThreadPoolExecutor TIMERS = timers();

    private final Transport.Channel channel;
    private final InputStream input;
    /** Where the agent is, for messages. */
    private final String address;
    /** Length (4 bytes, big-endian) and type byte of the frame being read. */
    private final byte[] header = new byte[5];
    private final Object timerLock = new Object();
    private ScheduledFuture<?> timer;
    private Duration armedFor = Duration.ZERO;
    private volatile boolean expired;

    private AgentConnection(Transport.Channel channel, String address) {
        this.channel = channel;
        this.input = channel.input();
        this.address = address;
    }

    /**
     * Connects within {@code timeout} and checks the peer (see {@link Transport.Channel#checkPeer});
     * the deadline stays armed for the call's first exchange.
     */
    static AgentConnection open(Transport transport, Duration timeout) {
        Transport.Channel channel;
        try {
            channel = transport.channel();
        } catch (IOException e) {
            throw new AgentException(AgentException.Code.INTERNAL, "cannot open a channel to the agent at "
                    + transport.address() + ": " + e.getMessage(), e);
        }
        AgentConnection connection = new AgentConnection(channel, transport.address());
        connection.arm(timeout);
        try {
            channel.connect();
        } catch (IOException e) {
            connection.close();
            if (connection.expired) {
                throw connection.failure("connecting", e);
            }
            throw new AgentException(AgentException.Code.UNAVAILABLE,
                    "cannot connect to the agent at " + transport.address() + ": " + e.getMessage()
                            + ". Is the sandbox running and its agent started?", e);
        } catch (RuntimeException e) {
            connection.close();
            throw e;
        }
        try {
            channel.checkPeer();
        } catch (RuntimeException e) {
            connection.close();
            throw e;
        }
        return connection;
    }

    /** (Re)starts the deadline: the connection is closed {@code timeout} from now unless disarmed. */
    void arm(Duration timeout) {
        synchronized (timerLock) {
            if (timer != null) {
                timer.cancel(false);
            }
            armedFor = timeout;
            timer = TIMERS.schedule(this::expire, Math.max(1, timeout.toNanos()), TimeUnit.NANOSECONDS);
        }
    }

    void disarm() {
        synchronized (timerLock) {
            if (timer != null) {
                timer.cancel(false);
                timer = null;
            }
        }
    }

    private void expire() {
        expired = true;
        channel.close();
    }

    void sendJson(ObjectNode body) {
        byte[] bytes = AgentJson.write(body);
        if (bytes.length > Frame.MAX_PAYLOAD) {
            throw new AgentException(AgentException.Code.INVALID_ARGUMENT,
                    "request to the agent is " + bytes.length + " bytes of JSON, over the limit of "
                            + Frame.MAX_PAYLOAD + ": shorten argv, env or paths");
        }
        send(Frame.JSON, bytes, 0, bytes.length);
    }

    /** Sends one frame; {@code length} must not exceed {@link Frame#MAX_PAYLOAD}. */
    void send(byte type, byte[] payload, int offset, int length) {
        if (length > Frame.MAX_PAYLOAD) {
            throw new IllegalArgumentException("frame payload of " + length + " bytes");
        }
        // One write per frame: the channel is unbuffered, and a frame split in two costs a second syscall.
        byte[] frame = new byte[5 + length];
        int n = length + 1;
        frame[0] = (byte) (n >>> 24);
        frame[1] = (byte) (n >>> 16);
        frame[2] = (byte) (n >>> 8);
        frame[3] = (byte) n;
        frame[4] = type;
        System.arraycopy(payload, offset, frame, 5, length);
        try {
            channel.output().write(frame);
        } catch (IOException e) {
            throw failure("sending to", e);
        }
    }

    /**
     * Reads one frame. With {@code idleUnbounded}, waiting for the frame's first byte is not
     * limited (streams use this); once a frame has begun, the rest must arrive within
     * {@code frameTimeout}. Otherwise the currently armed deadline governs. Returns null at a clean
     * end of the connection between frames.
     */
    Frame read(boolean idleUnbounded, Duration frameTimeout) {
        return read(idleUnbounded, frameTimeout, AgentJson.MAPPER);
    }

    /** As {@link #read(boolean, Duration)}, parsing JSON frames with {@code mapper} (its own limits). */
    Frame read(boolean idleUnbounded, Duration frameTimeout, ObjectMapper mapper) {
        if (idleUnbounded) {
            if (!fill(header, 0, 1, true)) {
                return null;
            }
            arm(frameTimeout);
            fill(header, 1, 3, false);
        } else if (!fill(header, 0, 4, true)) {
            return null;
        }
        int length = ((header[0] & 0xff) << 24) | ((header[1] & 0xff) << 16) | ((header[2] & 0xff) << 8) | (header[3] & 0xff);
        if (length < 1 || length > Frame.MAX_LENGTH) {
            throw new AgentException(AgentException.Code.PROTOCOL, "the agent at " + address
                    + " sent a frame of " + Integer.toUnsignedString(length) + " bytes; frames are 1.."
                    + Frame.MAX_LENGTH + " bytes. The agent is broken or compromised");
        }
        fill(header, 4, 1, false);
        byte type = header[4];
        if (type != Frame.JSON && type != Frame.STDOUT && type != Frame.STDERR && type != Frame.TERMINAL
                && type != Frame.DATA) {
            throw new AgentException(AgentException.Code.PROTOCOL, "the agent at " + address
                    + " sent a frame of unknown type 0x" + Integer.toHexString(type & 0xff));
        }
        byte[] payload = new byte[length - 1];
        fill(payload, 0, payload.length, false);
        if (idleUnbounded) {
            disarm();
        }
        return switch (type) {
            case Frame.JSON -> new Frame.Json(parse(payload, mapper));
            case Frame.STDOUT -> new Frame.Stdout(payload);
            case Frame.STDERR -> new Frame.Stderr(payload);
            case Frame.TERMINAL -> new Frame.Terminal(payload);
            default -> new Frame.Data(payload);
        };
    }

    /** Reads the next frame, which must be JSON; an error answer is thrown as its AgentException. */
    ObjectNode readAnswer() {
        Frame frame = read(false, Duration.ZERO);
        if (frame == null) {
            throw new AgentException(AgentException.Code.UNAVAILABLE, "the agent at " + address
                    + " closed the connection without answering: it may have crashed; check the sandbox's log");
        }
        if (!(frame instanceof Frame.Json(ObjectNode body))) {
            throw new AgentException(AgentException.Code.PROTOCOL, "the agent at " + address
                    + " answered with a " + frame.getClass().getSimpleName() + " frame where JSON was due");
        }
        AgentJson.throwIfError(body);
        return body;
    }

    ObjectNode parse(byte[] json, ObjectMapper mapper) {
        JsonNode node;
        try {
            node = mapper.readTree(json);
        } catch (JacksonException e) {
            throw new AgentException(AgentException.Code.PROTOCOL, "the agent at " + address
                    + " sent malformed or oversized JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new AgentException(AgentException.Code.PROTOCOL, "the agent at " + address
                    + " sent unreadable JSON: " + e.getMessage(), e);
        }
        if (!(node instanceof ObjectNode object)) {
            throw new AgentException(AgentException.Code.PROTOCOL, "the agent at " + address
                    + " sent JSON that is not an object");
        }
        return object;
    }

    /** Reads exactly {@code length} bytes; false if the connection ended cleanly before the first (when {@code mayEnd}). */
    private boolean fill(byte[] buffer, int offset, int length, boolean mayEnd) {
        try {
            int done = 0;
            while (done < length) {
                int n = input.read(buffer, offset + done, length - done);
                if (n < 0) {
                    if (mayEnd && done == 0) {
                        return false;
                    }
                    throw new AgentException(AgentException.Code.UNAVAILABLE, "the agent at " + address
                            + " closed the connection in the middle of a frame: it may have crashed");
                }
                done += n;
            }
            return true;
        } catch (IOException e) {
            throw failure("reading from", e);
        }
    }

    AgentException failure(String doing, IOException e) {
        if (expired) {
            return new AgentException(AgentException.Code.TIMEOUT, "the agent at " + address
                    + " did not respond within " + describe(armedFor) + " (" + doing
                    + " it): the sandbox may be overloaded, frozen or paused", e);
        }
        if (e instanceof ClosedByInterruptException) {
            return new AgentException(AgentException.Code.UNAVAILABLE,
                    "interrupted while " + doing + " the agent at " + address, e);
        }
        return new AgentException(AgentException.Code.UNAVAILABLE, doing.substring(0, 1).toUpperCase()
                + doing.substring(1) + " the agent at " + address + " failed: " + e.getMessage()
                + ". The agent may have crashed or the sandbox stopped", e);
    }

    static String describe(Duration d) {
        long millis = d.toMillis();
        return millis % 1000 == 0 ? millis / 1000 + " s" : millis + " ms";
    }

    /** Where the agent is, for messages ("the agent at " + address()). */
    String address() {
        return address;
    }

    @Override
    public void close() {
        disarm();
        channel.close();
    }

    private static ScheduledThreadPoolExecutor timers() {
        ScheduledThreadPoolExecutor timers = new ScheduledThreadPoolExecutor(1, runnable -> {
            Thread thread = new Thread(runnable, "agent-deadlines");
            thread.setDaemon(true);
            return thread;
        });
        timers.setRemoveOnCancelPolicy(true);
        return timers;
    }
}
