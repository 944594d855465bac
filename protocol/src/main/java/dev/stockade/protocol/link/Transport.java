package dev.stockade.protocol.link;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/**
 * How the host reaches one sandbox's agent: each call of the link opens a {@link Channel}, one
 * bidirectional byte stream carrying the agent protocol's frames. The framing, deadlines and
 * validation above it ({@link AgentConnection}, {@link FramedAgentClient}) do not know what carries
 * the bytes: a unix socket bind-mounted into the sandbox ({@link UnixSocketTransport}) today, TCP
 * with a token for a pod, virtio-serial or vsock for a microVM later.
 *
 * <p>Implementations are immutable and thread-safe: the link opens channels from many virtual
 * threads at once. A channel is used by one thread at a time, except {@link Channel#close()}, which
 * the link's deadline timer calls from its own thread to abort a blocked connect, read or write.
 */
public interface Transport {
    /** A new channel, not yet connected. IOException when not even that is possible (no descriptors left). */
    Channel channel() throws IOException;

    /** Where the agent is, for messages: "the agent at " + address(). */
    String address();

    /** One connection to the agent. */
    interface Channel extends Closeable {
        /** Connects, blocking; a {@link #close()} from another thread makes it fail with an IOException. */
        void connect() throws IOException;

        /**
         * Proves that the peer is this sandbox's agent and not something the sandbox put in its place
         * (throws {@link dev.stockade.protocol.AgentException} with code PROTOCOL when it is not);
         * called once, right after {@link #connect()}.
         */
        void checkPeer();

        /** Bytes from the agent; unbuffered, a read blocks until at least one byte arrived. */
        InputStream input();

        /** Bytes to the agent; unbuffered, every write goes out at once. */
        OutputStream output();

        /** Idempotent, from any thread; aborts blocked I/O. */
        @Override
        void close();
    }
}
