package dev.stockade.server.egress;

import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/** Test stand-ins for the two sides of the proxy: upstream HTTP(S) sites and the in-sandbox relay. */
final class EgressTestKit {
    private EgressTestKit() {}

    static final String PREAMBLE = "STOCKADE-RELAY 1 pid=42 uid=1000\n";

    /**
     * An upstream HTTP/1.1 site (plain or TLS, depending on the server socket): answers every request
     * with {@code 200 hello <target>} keep-alive, records each request (head and body) and, when a
     * connection ends, every byte that arrived on it.
     */
    static final class Upstream implements Closeable {
        final ServerSocket server;
        final BlockingQueue<String> requests = new LinkedBlockingQueue<>();
        final BlockingQueue<String> finishedConnections = new LinkedBlockingQueue<>();
        private final List<Socket> open = new CopyOnWriteArrayList<>();
        private final Thread acceptor;

        Upstream(ServerSocket server) {
            this.server = server;
            acceptor = Thread.ofVirtual().start(() -> {
                while (!server.isClosed()) {
                    try {
                        Socket s = server.accept();
                        open.add(s);
                        Thread.ofVirtual().start(() -> serve(s));
                    } catch (IOException e) {
                        return;
                    }
                }
            });
        }

        static Upstream plain(InetAddress bind) throws IOException {
            return new Upstream(new ServerSocket(0, 50, bind));
        }

        int port() {
            return server.getLocalPort();
        }

        String nextRequest() throws InterruptedException {
            return requests.poll(10, TimeUnit.SECONDS);
        }

        private void serve(Socket s) {
            ByteArrayOutputStream seen = new ByteArrayOutputStream();
            try (s) {
                s.setSoTimeout(10_000);
                InputStream in = new FilterInputStream(s.getInputStream()) {
                    @Override
                    public int read() throws IOException {
                        int b = super.read();
                        if (b >= 0) {
                            seen.write(b);
                        }
                        return b;
                    }

                    @Override
                    public int read(byte[] b, int off, int len) throws IOException {
                        int n = super.read(b, off, len);
                        if (n > 0) {
                            seen.write(b, off, n);
                        }
                        return n;
                    }
                };
                OutputStream out = s.getOutputStream();
                while (true) {
                    String head = readHead(in);
                    if (head == null) {
                        break;
                    }
                    String lower = head.toLowerCase(Locale.ROOT);
                    String body = "";
                    if (lower.contains("transfer-encoding: chunked")) {
                        body = readChunked(in);
                    } else if (lower.contains("content-length: ")) {
                        int at = lower.indexOf("content-length: ") + 16;
                        int n = Integer.parseInt(lower.substring(at, lower.indexOf('\r', at)).strip());
                        body = new String(in.readNBytes(n), StandardCharsets.ISO_8859_1);
                    }
                    requests.add(head + body);
                    String target = head.substring(head.indexOf(' ') + 1, head.indexOf(' ', head.indexOf(' ') + 1));
                    byte[] answer = ("hello " + target).getBytes(StandardCharsets.UTF_8);
                    out.write(("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + answer.length
                            + "\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
                    out.write(answer);
                    out.flush();
                }
            } catch (IOException ignored) {
                // the proxy closed the connection
            } finally {
                open.remove(s);
                finishedConnections.add(seen.toString(StandardCharsets.ISO_8859_1));
            }
        }

        @Override
        public void close() throws IOException {
            server.close();
            for (Socket s : open) {
                s.close();
            }
            try {
                acceptor.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }

    /** Reads up to and including the blank line; null at a clean end of stream. */
    static String readHead(InputStream in) throws IOException {
        StringBuilder b = new StringBuilder();
        while (!b.toString().endsWith("\r\n\r\n")) {
            int c = in.read();
            if (c < 0) {
                if (b.isEmpty()) {
                    return null;
                }
                throw new IOException("ended inside a head: " + b);
            }
            if (b.length() > 70_000) {
                throw new IOException("head too long");
            }
            b.append((char) c);
        }
        return b.toString();
    }

    private static String readChunked(InputStream in) throws IOException {
        StringBuilder b = new StringBuilder();
        while (true) {
            String line = line(in);
            b.append(line).append("\r\n");
            int size = Integer.parseInt(line.strip(), 16);
            if (size == 0) {
                String trailer;
                do {
                    trailer = line(in);
                    b.append(trailer).append("\r\n");
                } while (!trailer.isEmpty());
                return b.toString();
            }
            b.append(new String(in.readNBytes(size), StandardCharsets.ISO_8859_1));
            b.append(line(in)).append("\r\n");
        }
    }

    private static String line(InputStream in) throws IOException {
        StringBuilder b = new StringBuilder();
        int c;
        while ((c = in.read()) != '\n') {
            if (c < 0) {
                throw new IOException("eof in chunked body");
            }
            b.append((char) c);
        }
        return b.toString().replace("\r", "");
    }

    /** A raw connection to the sandbox's egress socket, as the relay makes it. */
    static final class Raw implements Closeable {
        final SocketChannel channel;
        final InputStream in;
        final OutputStream out;

        Raw(Path socket, String preamble) throws IOException {
            channel = SocketChannel.open(StandardProtocolFamily.UNIX);
            channel.connect(UnixDomainSocketAddress.of(socket));
            in = Channels.newInputStream(channel);
            out = Channels.newOutputStream(channel);
            if (preamble != null) {
                send(preamble);
            }
        }

        Raw send(String text) throws IOException {
            out.write(text.getBytes(StandardCharsets.ISO_8859_1));
            out.flush();
            return this;
        }

        /** Everything until the proxy closes. */
        String readAll() throws IOException {
            return new String(in.readAllBytes(), StandardCharsets.ISO_8859_1);
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }

    /**
     * What the in-sandbox relay does, over TCP on the test's loopback: every accepted connection
     * becomes a unix-socket connection with the preamble, spliced both ways. Lets real clients
     * (SSLSocket, HttpClient) use the proxy.
     */
    static final class TcpRelay implements Closeable {
        private final ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        private final List<Closeable> open = new CopyOnWriteArrayList<>();
        private final Thread acceptor;

        TcpRelay(Path socket) throws IOException {
            acceptor = Thread.ofVirtual().start(() -> {
                while (!server.isClosed()) {
                    try {
                        Socket s = server.accept();
                        SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX);
                        open.add(s);
                        open.add(ch);
                        ch.connect(UnixDomainSocketAddress.of(socket));
                        OutputStream toProxy = Channels.newOutputStream(ch);
                        toProxy.write(PREAMBLE.getBytes(StandardCharsets.US_ASCII));
                        OutputStream toSandbox = s.getOutputStream();
                        Thread.ofVirtual().start(() -> pump(s, ch, () -> s.getInputStream(), toProxy));
                        Thread.ofVirtual().start(() -> pump(s, ch, () -> Channels.newInputStream(ch), toSandbox));
                    } catch (IOException e) {
                        return;
                    }
                }
            });
        }

        private interface Source {
            InputStream get() throws IOException;
        }

        private static void pump(Socket s, SocketChannel ch, Source in, OutputStream out) {
            try {
                in.get().transferTo(out);
            } catch (IOException ignored) {
                // one side closed
            } finally {
                try {
                    s.close();
                    ch.close();
                } catch (IOException ignored) {
                    // closing
                }
            }
        }

        Socket connect() throws IOException {
            Socket s = new Socket();
            s.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), server.getLocalPort()), 5000);
            s.setSoTimeout(10_000);
            return s;
        }

        int port() {
            return server.getLocalPort();
        }

        @Override
        public void close() throws IOException {
            server.close();
            for (Closeable c : open) {
                c.close();
            }
            try {
                acceptor.join(5000);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
