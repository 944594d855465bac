package dev.stockade.server.egress;

import java.io.BufferedInputStream;
import java.io.Closeable;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.util.concurrent.ScheduledExecutorService;

/**
 * One side of a proxied connection (the sandbox's unix socket, an upstream TCP socket, or a TLS
 * socket layered on either) as buffered streams that report activity, so the idle sweep knows
 * what is alive. Reads and writes may run on two threads at once; {@link #close} is idempotent.
 */
final class Endpoint implements Closeable {
    private final InputStream in;
    private final OutputStream out;
    private final Closeable closer;
    private final Shutdown shutdown;
    private final SocketChannel channel;
    private final ScheduledExecutorService timers;

    private interface Shutdown {
        void output() throws IOException;
    }

    private Endpoint(InputStream raw, OutputStream rawOut, Closeable closer, Shutdown shutdown, Runnable touch,
                     SocketChannel channel, ScheduledExecutorService timers) {
        this.in = new BufferedInputStream(new FilterInputStream(raw) {
            @Override
            public int read() throws IOException {
                int b = super.read();
                touch.run();
                return b;
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                int n = super.read(b, off, len);
                touch.run();
                return n;
            }
        }, 8192);
        this.out = new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                rawOut.write(b);
                touch.run();
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                rawOut.write(b, off, len);
                touch.run();
            }

            @Override
            public void flush() throws IOException {
                rawOut.flush();
            }
        };
        this.closer = closer;
        this.shutdown = shutdown;
        this.channel = channel;
        this.timers = timers;
    }

    /** The sandbox side: a connected unix socket channel in blocking mode. */
    static Endpoint of(SocketChannel channel, Runnable touch, ScheduledExecutorService timers) {
        return new Endpoint(Channels.newInputStream(channel), Channels.newOutputStream(channel), channel,
                channel::shutdownOutput, touch, channel, timers);
    }

    /** A connected socket (plain TCP, or TLS). */
    static Endpoint of(Socket socket, Runnable touch) throws IOException {
        return new Endpoint(socket.getInputStream(), socket.getOutputStream(), socket, () -> {
            try {
                socket.shutdownOutput();
            } catch (UnsupportedOperationException e) {
                socket.close(); // SSLSocket: a half-close is not possible
            }
        }, touch, null, null);
    }

    InputStream in() {
        return in;
    }

    OutputStream out() {
        return out;
    }

    /** Signals end of data to the peer; if that is impossible, closes. */
    void shutdownOutput() {
        try {
            shutdown.output();
        } catch (IOException | RuntimeException e) {
            close();
        }
    }

    /**
     * This unix-socket endpoint as a {@link Socket}, for {@link TlsInterception#serverSide}: its
     * streams are this endpoint's (so nothing buffered is lost) and closing it closes this endpoint.
     */
    Socket asSocket() {
        if (channel == null) {
            throw new IllegalStateException("only the sandbox side is adapted to a Socket");
        }
        return new ChannelSocket(this, channel, timers);
    }

    @Override
    public void close() {
        try {
            closer.close();
        } catch (IOException ignored) {
            // closing: nothing left to tell anyone
        }
    }
}
