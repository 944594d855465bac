package dev.stockade.agent;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * One connection to an agent: blocking frame I/O over a unix socket, with a deadline that closes
 * the channel when it passes, so that no read or write outlives it. Everything read is bounded:
 * a frame is at most {@link Frame#MAX_LENGTH} bytes, JSON is parsed under {@link AgentJson}'s
 * limits, and any violation is an {@link AgentException} with code PROTOCOL.
 *
 * <p>Used by one thread at a time (the caller's virtual thread, or a stream's reader thread);
 * only {@link #close()} and the deadline timer may act from another thread.
 */
final class AgentConnection implements AutoCloseable {
    /** Fires deadlines; its tasks only close channels, so one daemon thread serves every agent. */
    private static final ScheduledThreadPoolExecutor TIMERS = timers();

    private final SocketChannel channel;
    private final Path socket;
    /** Length (4 bytes, big-endian) and type byte of the frame being read. */
    private final ByteBuffer header = ByteBuffer.allocate(5);
    private final Object timerLock = new Object();
    private ScheduledFuture<?> timer;
    private Duration armedFor = Duration.ZERO;
    private volatile boolean expired;

    private AgentConnection(SocketChannel channel, Path socket) {
        this.channel = channel;
        this.socket = socket;
    }

    /** Connects within {@code timeout}; the deadline stays armed for the call's first exchange. */
    static AgentConnection open(Path socket, Duration timeout) {
        return open(socket, timeout, -1);
    }

    /**
     * Connects, then checks that the peer process runs as host uid {@code peerUid} (when ≥ 0). The
     * socket's directory lives where the sandbox's root could replace the socket with a link to
     * another sandbox's socket; the peer's credentials, which the kernel reports and no sandbox can
     * forge, prove that the server talks to this sandbox's agent (each sandbox has its own uid range).
     */
    static AgentConnection open(Path socket, Duration timeout, long peerUid) {
        SocketChannel channel;
        try {
            channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        } catch (IOException e) {
            throw new AgentException(AgentException.Code.INTERNAL, "cannot create a unix socket: " + e.getMessage(), e);
        }
        AgentConnection connection = new AgentConnection(channel, socket);
        connection.arm(timeout);
        try {
            channel.connect(UnixDomainSocketAddress.of(socket));
        } catch (IOException e) {
            connection.close();
            if (connection.expired) {
                throw connection.failure("connecting", e);
            }
            throw new AgentException(AgentException.Code.UNAVAILABLE,
                    "cannot connect to the agent at " + socket + ": " + e.getMessage()
                            + ". Is the sandbox running and its agent started?", e);
        } catch (RuntimeException e) {
            connection.close();
            throw e;
        }
        if (peerUid >= 0) {
            long actual;
            try {
                actual = uidOf(channel.getOption(jdk.net.ExtendedSocketOptions.SO_PEERCRED).user().getName());
            } catch (IOException | RuntimeException e) {
                connection.close();
                throw new AgentException(AgentException.Code.PROTOCOL, "cannot read the credentials of the process behind "
                        + socket + ": " + e.getMessage(), e);
            }
            if (actual != peerUid) {
                connection.close();
                throw new AgentException(AgentException.Code.PROTOCOL, "the process behind " + socket + " runs as host uid "
                        + actual + ", not as this sandbox's root (" + peerUid + "): refusing to talk to it (the socket"
                        + " was replaced from inside the sandbox, or belongs to another sandbox)");
            }
        }
        return connection;
    }

    /** A uid from a principal name: numeric for uids without a host account, else from /etc/passwd. */
    static long uidOf(String name) throws IOException {
        // The JDK prints a uid without an account as a signed 32-bit number.
        if (name.matches("-?\\d{1,10}")) return Integer.toUnsignedLong((int) Long.parseLong(name));
        for (String line : java.nio.file.Files.readAllLines(Path.of("/etc/passwd"))) {
            String[] f = line.split(":");
            if (f.length > 2 && f[0].equals(name)) return Long.parseLong(f[2]);
        }
        throw new IOException("unknown user " + name);
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
        closeChannel();
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
        ByteBuffer head = ByteBuffer.allocate(5).putInt(length + 1).put(type).flip();
        ByteBuffer body = ByteBuffer.wrap(payload, offset, length);
        ByteBuffer[] buffers = {head, body};
        try {
            while (body.hasRemaining() || head.hasRemaining()) {
                channel.write(buffers);
            }
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
    Frame read(boolean idleUnbounded, Duration frameTimeout, com.fasterxml.jackson.databind.ObjectMapper mapper) {
        header.clear();
        if (idleUnbounded) {
            header.limit(1);
            if (!fill(header, true)) {
                return null;
            }
            arm(frameTimeout);
            header.limit(4);
            fill(header, false);
        } else {
            header.limit(4);
            if (!fill(header, true)) {
                return null;
            }
        }
        int length = header.getInt(0);
        if (length < 1 || length > Frame.MAX_LENGTH) {
            throw new AgentException(AgentException.Code.PROTOCOL, "the agent at " + socket
                    + " sent a frame of " + Integer.toUnsignedString(length) + " bytes; frames are 1.."
                    + Frame.MAX_LENGTH + " bytes. The agent is broken or compromised");
        }
        header.limit(5);
        fill(header, false);
        byte type = header.get(4);
        if (type != Frame.JSON && type != Frame.STDOUT && type != Frame.STDERR && type != Frame.DATA) {
            throw new AgentException(AgentException.Code.PROTOCOL, "the agent at " + socket
                    + " sent a frame of unknown type 0x" + Integer.toHexString(type & 0xff));
        }
        byte[] payload = new byte[length - 1];
        fill(ByteBuffer.wrap(payload), false);
        if (idleUnbounded) {
            disarm();
        }
        return switch (type) {
            case Frame.JSON -> new Frame.Json(parse(payload, mapper));
            case Frame.STDOUT -> new Frame.Stdout(payload);
            case Frame.STDERR -> new Frame.Stderr(payload);
            default -> new Frame.Data(payload);
        };
    }

    /** Reads the next frame, which must be JSON; an error answer is thrown as its AgentException. */
    ObjectNode readAnswer() {
        Frame frame = read(false, Duration.ZERO);
        if (frame == null) {
            throw new AgentException(AgentException.Code.UNAVAILABLE, "the agent at " + socket
                    + " closed the connection without answering: it may have crashed; check the sandbox's log");
        }
        if (!(frame instanceof Frame.Json(ObjectNode body))) {
            throw new AgentException(AgentException.Code.PROTOCOL, "the agent at " + socket
                    + " answered with a " + frame.getClass().getSimpleName() + " frame where JSON was due");
        }
        AgentJson.throwIfError(body);
        return body;
    }

    ObjectNode parse(byte[] json, com.fasterxml.jackson.databind.ObjectMapper mapper) {
        JsonNode node;
        try {
            node = mapper.readTree(json);
        } catch (JacksonException e) {
            throw new AgentException(AgentException.Code.PROTOCOL, "the agent at " + socket
                    + " sent malformed or oversized JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new AgentException(AgentException.Code.PROTOCOL, "the agent at " + socket
                    + " sent unreadable JSON: " + e.getMessage(), e);
        }
        if (!(node instanceof ObjectNode object)) {
            throw new AgentException(AgentException.Code.PROTOCOL, "the agent at " + socket
                    + " sent JSON that is not an object");
        }
        return object;
    }

    /** Fills the buffer; false if the connection ended cleanly before its first byte. */
    private boolean fill(ByteBuffer buffer, boolean mayEnd) {
        try {
            while (buffer.hasRemaining()) {
                if (channel.read(buffer) < 0) {
                    if (mayEnd && buffer.position() == 0) {
                        return false;
                    }
                    throw new AgentException(AgentException.Code.UNAVAILABLE, "the agent at " + socket
                            + " closed the connection in the middle of a frame: it may have crashed");
                }
            }
            return true;
        } catch (IOException e) {
            throw failure("reading from", e);
        }
    }

    AgentException failure(String doing, IOException e) {
        if (expired) {
            return new AgentException(AgentException.Code.TIMEOUT, "the agent at " + socket
                    + " did not respond within " + describe(armedFor) + " (" + doing
                    + " it): the sandbox may be overloaded, frozen or paused", e);
        }
        if (e instanceof ClosedByInterruptException) {
            return new AgentException(AgentException.Code.UNAVAILABLE,
                    "interrupted while " + doing + " the agent at " + socket, e);
        }
        return new AgentException(AgentException.Code.UNAVAILABLE, doing.substring(0, 1).toUpperCase()
                + doing.substring(1) + " the agent at " + socket + " failed: " + e.getMessage()
                + ". The agent may have crashed or the sandbox stopped", e);
    }

    static String describe(Duration d) {
        long millis = d.toMillis();
        return millis % 1000 == 0 ? millis / 1000 + " s" : millis + " ms";
    }

    Path socket() {
        return socket;
    }

    @Override
    public void close() {
        disarm();
        closeChannel();
    }

    private void closeChannel() {
        try {
            channel.close();
        } catch (IOException ignored) {
            // nothing left to release
        }
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
