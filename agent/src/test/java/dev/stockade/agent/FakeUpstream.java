package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * A stand-in for the host's egress proxy in relay tests: a unix socket server that reads each
 * accepted connection's first line (the relay's preamble) and hands the connection to the test.
 * One virtual thread accepts, one per connection reads its preamble; {@link #close()} closes the
 * server, every connection it accepted, and removes the socket file.
 */
final class FakeUpstream implements AutoCloseable {
    private static final int PREAMBLE_MAX = 256;

    /** An accepted connection, its preamble line (without the newline) already read. */
    record Connection(SocketChannel channel, String preamble) implements AutoCloseable {
        InputStream in() {
            return Channels.newInputStream(channel);
        }

        OutputStream out() {
            return Channels.newOutputStream(channel);
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }

    final Path path;
    private final ServerSocketChannel server;
    private final LinkedBlockingQueue<Connection> accepted = new LinkedBlockingQueue<>();
    private final List<SocketChannel> channels = new ArrayList<>();
    private final Thread acceptor;

    private FakeUpstream(Path path, ServerSocketChannel server) {
        this.path = path;
        this.server = server;
        this.acceptor = Thread.ofVirtual().name("fake-upstream").start(this::acceptLoop);
    }

    static FakeUpstream start(Path path) throws IOException {
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        server.bind(UnixDomainSocketAddress.of(path), 1024);
        return new FakeUpstream(path, server);
    }

    private void acceptLoop() {
        while (server.isOpen()) {
            SocketChannel channel;
            try {
                channel = server.accept();
            } catch (IOException e) {
                return; // closed
            }
            synchronized (channels) {
                channels.add(channel);
            }
            Thread.ofVirtual().start(() -> {
                try {
                    accepted.add(new Connection(channel, readLine(channel)));
                } catch (IOException e) {
                    closeQuietly(channel);
                }
            });
        }
    }

    private static String readLine(SocketChannel channel) throws IOException {
        ByteArrayOutputStream line = new ByteArrayOutputStream();
        ByteBuffer one = ByteBuffer.allocate(1);
        while (line.size() < PREAMBLE_MAX) {
            one.clear();
            if (channel.read(one) < 0) {
                throw new IOException("connection ended inside the preamble: " + line);
            }
            if (one.get(0) == '\n') {
                return line.toString(StandardCharsets.US_ASCII);
            }
            line.write(one.get(0));
        }
        throw new IOException("preamble longer than " + PREAMBLE_MAX + " bytes");
    }

    /** The next accepted connection, failing the test when none arrives in time. */
    Connection next(Duration timeout) {
        return poll(timeout).orElseGet(() -> fail("no connection reached the upstream within " + timeout));
    }

    Optional<Connection> poll(Duration timeout) {
        try {
            return Optional.ofNullable(accepted.poll(timeout.toNanos(), TimeUnit.NANOSECONDS));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Optional.empty();
        }
    }

    @Override
    public void close() throws IOException {
        server.close();
        try {
            acceptor.join(2000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        synchronized (channels) {
            channels.forEach(FakeUpstream::closeQuietly);
        }
        Files.deleteIfExists(path);
    }

    private static void closeQuietly(SocketChannel channel) {
        try {
            channel.close();
        } catch (IOException ignored) {
            // closing only
        }
    }
}
