package dev.stockade.server.egress;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.SocketAddress;
import java.net.SocketTimeoutException;
import java.nio.channels.SocketChannel;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * A sandbox's unix-socket {@link Endpoint} seen as a connected {@link java.net.Socket}, so that
 * {@link TlsInterception#serverSide} can layer TLS on it (the JDK offers no Socket view of unix
 * channels). Socket options that make no sense for a unix socket are accepted and ignored.
 *
 * <p>A read timeout ({@link #setSoTimeout}) is enforced by closing: unix channels have no timed
 * read, so a read that times out throws {@link SocketTimeoutException} and the socket is closed.
 */
final class ChannelSocket extends java.net.Socket {
    private final Endpoint endpoint;
    private final SocketChannel channel;
    private final ScheduledExecutorService timers;
    private final InputStream in;
    private volatile int timeoutMillis;
    private volatile boolean closed;
    private volatile boolean inputShut;
    private volatile boolean outputShut;

    ChannelSocket(Endpoint endpoint, SocketChannel channel, ScheduledExecutorService timers) {
        this.endpoint = endpoint;
        this.channel = channel;
        this.timers = timers;
        this.in = new FilterInputStream(endpoint.in()) {
            @Override
            public int read() throws IOException {
                byte[] one = new byte[1];
                int n = read(one, 0, 1);
                return n < 0 ? -1 : one[0] & 0xff;
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                int timeout = timeoutMillis;
                if (timeout <= 0 || super.available() > 0) {
                    return super.read(b, off, len);
                }
                boolean[] fired = new boolean[1];
                ScheduledFuture<?> timer = timers.schedule(() -> {
                    fired[0] = true;
                    close();
                }, timeout, TimeUnit.MILLISECONDS);
                try {
                    return super.read(b, off, len);
                } catch (IOException e) {
                    if (fired[0]) {
                        throw new SocketTimeoutException("read timed out after " + timeout + " ms");
                    }
                    throw e;
                } finally {
                    timer.cancel(false);
                }
            }

            @Override
            public void close() {
                ChannelSocket.this.close();
            }
        };
    }

    @Override
    public InputStream getInputStream() throws IOException {
        if (closed) {
            throw new java.net.SocketException("Socket is closed");
        }
        return in;
    }

    @Override
    public OutputStream getOutputStream() throws IOException {
        if (closed) {
            throw new java.net.SocketException("Socket is closed");
        }
        return endpoint.out();
    }

    @Override
    public void close() {
        closed = true;
        endpoint.close();
    }

    @Override
    public boolean isConnected() {
        return true;
    }

    @Override
    public boolean isBound() {
        return true;
    }

    @Override
    public boolean isClosed() {
        return closed || !channel.isOpen();
    }

    @Override
    public void shutdownInput() throws IOException {
        inputShut = true;
        channel.shutdownInput();
    }

    @Override
    public void shutdownOutput() throws IOException {
        outputShut = true;
        channel.shutdownOutput();
    }

    @Override
    public boolean isInputShutdown() {
        return inputShut;
    }

    @Override
    public boolean isOutputShutdown() {
        return outputShut;
    }

    @Override
    public void setSoTimeout(int timeout) {
        timeoutMillis = timeout;
    }

    @Override
    public int getSoTimeout() {
        return timeoutMillis;
    }

    @Override
    public InetAddress getInetAddress() {
        return InetAddress.getLoopbackAddress();
    }

    @Override
    public InetAddress getLocalAddress() {
        return InetAddress.getLoopbackAddress();
    }

    @Override
    public int getPort() {
        return 0;
    }

    @Override
    public int getLocalPort() {
        return -1;
    }

    @Override
    public SocketAddress getRemoteSocketAddress() {
        return null;
    }

    @Override
    public SocketAddress getLocalSocketAddress() {
        return null;
    }

    @Override
    public void setTcpNoDelay(boolean on) {}

    @Override
    public boolean getTcpNoDelay() {
        return true;
    }

    @Override
    public void setKeepAlive(boolean on) {}

    @Override
    public boolean getKeepAlive() {
        return false;
    }

    @Override
    public void setSoLinger(boolean on, int linger) {}

    @Override
    public int getSoLinger() {
        return -1;
    }

    @Override
    public String toString() {
        return "ChannelSocket[sandbox unix socket]";
    }
}
