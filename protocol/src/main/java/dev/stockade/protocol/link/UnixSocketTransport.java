package dev.stockade.protocol.link;

import dev.stockade.protocol.AgentException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The agent's unix socket, in a per-sandbox host directory bind-mounted into the sandbox (runc,
 * runsc). That directory is writable from inside, so a sandbox's root could replace the socket with
 * a link to another sandbox's: with {@code peerUid} ≥ 0 every connection must lead to a process
 * running as that host uid (the sandbox's root), which the kernel reports (SO_PEERCRED) and no
 * sandbox can forge, since each sandbox has its own uid range.
 */
public record UnixSocketTransport(Path socket, long peerUid) implements Transport {
    private static final System.Logger LOG = System.getLogger(UnixSocketTransport.class.getName());

    /** Without a peer check: for tests and tools that start the agent themselves. */
    public UnixSocketTransport(Path socket) {
        this(socket, -1);
    }

    @Override
    public Transport.Channel channel() throws IOException {
        return new Channel(SocketChannel.open(StandardProtocolFamily.UNIX));
    }

    /**
     * The socket's last two path elements only ({@code …/run/agent.sock}): this text reaches clients
     * in error messages, and the full path would show the server's data directory to them.
     */
    @Override
    public String address() {
        Path parent = socket.getParent();
        return parent == null || parent.getFileName() == null ? socket.getFileName().toString()
                : "…/" + parent.getFileName() + "/" + socket.getFileName();
    }

    private final class Channel implements Transport.Channel {
        private final SocketChannel channel;
        private final InputStream input;
        private final OutputStream output;

        Channel(SocketChannel channel) {
            this.channel = channel;
            this.input = Channels.newInputStream(channel);
            this.output = Channels.newOutputStream(channel);
        }

        @Override
        public void connect() throws IOException {
            channel.connect(UnixDomainSocketAddress.of(socket));
        }

        @Override
        public void checkPeer() {
            if (peerUid < 0) return;
            long actual;
            try {
                actual = uidOf(channel.getOption(jdk.net.ExtendedSocketOptions.SO_PEERCRED).user().getName());
            } catch (IOException | RuntimeException e) {
                throw new AgentException(AgentException.Code.PROTOCOL, "cannot read the credentials of the process behind "
                        + address() + " (" + e.getClass().getSimpleName() + ")", e);
            }
            if (actual != peerUid) {
                // The uids are the host's (the sandbox's range on the host): the message reaches the
                // sandbox's owner, so it names none; the operator's log has them.
                LOG.log(System.Logger.Level.WARNING, "the process behind {0} runs as host uid {1}, not as the sandbox''s root"
                        + " (host uid {2}): refused", socket, actual, peerUid);
                throw new AgentException(AgentException.Code.PROTOCOL, "the process behind " + address() + " is not this"
                        + " sandbox's agent (it does not run as the sandbox's root): refusing to talk to it (the socket was"
                        + " replaced from inside the sandbox, or belongs to another sandbox)");
            }
        }

        @Override
        public InputStream input() {
            return input;
        }

        @Override
        public OutputStream output() {
            return output;
        }

        @Override
        public void close() {
            try {
                channel.close();
            } catch (IOException ignored) {
                // nothing left to release
            }
        }
    }

    /** A uid from a principal name: numeric for uids without a host account, else from /etc/passwd. */
    static long uidOf(String name) throws IOException {
        // The JDK prints a uid without an account as a signed 32-bit number.
        if (name.matches("-?\\d{1,10}")) return Integer.toUnsignedLong((int) Long.parseLong(name));
        for (String line : Files.readAllLines(Path.of("/etc/passwd"))) {
            String[] f = line.split(":");
            if (f.length > 2 && f[0].equals(name)) return Long.parseLong(f[2]);
        }
        throw new IOException("unknown user " + name);
    }
}
