package dev.stockade.server.egress;

import static dev.stockade.server.egress.TlsTestKit.LOOPBACK;
import static dev.stockade.server.egress.TlsTestKit.readAll;
import static dev.stockade.server.egress.TlsTestKit.readHead;
import static dev.stockade.server.egress.TlsTestKit.write;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * End to end through both halves: a sandbox client that trusts only the Stockade CA, the
 * interception's server side, a relay of plaintext HTTP, the client side, and a real TLS upstream
 * whose certificate comes from a separate CA that only the extra trust file vouches for.
 */
class InterceptingTlsTest {
    private static final String UPSTREAM_HOST = "upstream.test";
    private static final String ANSWER = "HTTP/1.1 200 OK\r\nContent-Length: 19\r\nConnection: close\r\n\r\nhello from upstream";

    @TempDir
    Path tmp;

    private StockadeCa stockade;
    private StockadeCa upstreamCa;
    private Path extraTrust;
    private InterceptingTls tls;
    private ServerSocket listener;
    private ExecutorService sandbox;

    @BeforeEach
    void setUp() throws Exception {
        stockade = StockadeCa.loadOrCreate(tmp.resolve("stockade-ca"));
        upstreamCa = StockadeCa.loadOrCreate(tmp.resolve("upstream-ca"));
        extraTrust = tmp.resolve("extra-trust.pem");
        // Bundles carry comments between blocks; they must not get in the way.
        Files.writeString(extraTrust, "# upstream test CA\n" + upstreamCa.certificatePem());
        tls = new InterceptingTls(stockade, extraTrust);
        listener = new ServerSocket(0, 8, LOOPBACK);
        listener.setSoTimeout(10_000);
        sandbox = Executors.newVirtualThreadPerTaskExecutor();
    }

    @AfterEach
    void tearDown() throws Exception {
        sandbox.shutdownNow();
        assertTrue(sandbox.awaitTermination(15, TimeUnit.SECONDS), "sandbox client threads ended");
        listener.close();
    }

    @Test
    void relaysARequestFromTheSandboxToTheRealHostAndBack() throws Exception {
        try (Upstream upstream = new Upstream(upstreamCa.issue(UPSTREAM_HOST))) {
            Future<String> client = sandbox.submit(() -> {
                try (SSLSocket s = sandboxClient(UPSTREAM_HOST, "h2", "http/1.1")) {
                    s.startHandshake();
                    X509Certificate seen = (X509Certificate) s.getSession().getPeerCertificates()[0];
                    assertEquals(stockade.certificate().getSubjectX500Principal(), seen.getIssuerX500Principal());
                    assertEquals("http/1.1", s.getApplicationProtocol());
                    write(s.getOutputStream(), "GET /v1/models HTTP/1.1\r\nHost: upstream.test\r\n"
                            + "Authorization: Bearer sk-real\r\n\r\n");
                    return readAll(s.getInputStream());
                }
            });

            try (Socket down = acceptIntercepted(tls, UPSTREAM_HOST);
                 Socket up = tls.clientSide(upstream.address(), UPSTREAM_HOST, 5_000)) {
                assertEquals("http/1.1", ((SSLSocket) down).getApplicationProtocol());
                assertEquals(0, down.getSoTimeout(), "the handshake timeout is not left on the socket");
                write(up.getOutputStream(), readHead(down.getInputStream()));
                write(down.getOutputStream(), readAll(up.getInputStream()));
            }

            assertEquals(ANSWER, client.get(10, TimeUnit.SECONDS));
            String received = upstream.requests.poll(5, TimeUnit.SECONDS);
            assertTrue(received != null && received.startsWith("GET /v1/models HTTP/1.1\r\n")
                    && received.contains("\r\nAuthorization: Bearer sk-real\r\n"), String.valueOf(received));
        }
    }

    @Test
    void interceptsAndVerifiesIpLiteralHosts() throws Exception {
        String ip = LOOPBACK.getHostAddress();
        try (Upstream upstream = new Upstream(upstreamCa.issue(ip))) {
            Future<String> client = sandbox.submit(() -> {
                try (SSLSocket s = sandboxClient(ip, "http/1.1")) {
                    write(s.getOutputStream(), "GET / HTTP/1.1\r\nHost: " + ip + "\r\n\r\n");
                    return readAll(s.getInputStream());
                }
            });
            try (Socket down = acceptIntercepted(tls, ip); Socket up = tls.clientSide(upstream.address(), ip, 5_000)) {
                write(up.getOutputStream(), readHead(down.getInputStream()));
                write(down.getOutputStream(), readAll(up.getInputStream()));
            }
            assertEquals(ANSWER, client.get(10, TimeUnit.SECONDS));
        }
    }

    @Test
    void clientSideRefusesACertificateForAnotherHost() throws Exception {
        try (Upstream upstream = new Upstream(upstreamCa.issue(UPSTREAM_HOST))) {
            IOException e = assertThrows(IOException.class, () -> tls.clientSide(upstream.address(), "other.test", 5_000));
            assertTrue(e.getMessage().startsWith("TLS to other.test (" + upstream.address().getAddress().getHostAddress()
                    + ":" + upstream.address().getPort() + ") failed: its certificate is not valid for other.test ("),
                    e.getMessage());
            assertNull(upstream.requests.poll(200, TimeUnit.MILLISECONDS), "nothing was sent to the wrong host");
        }
    }

    @Test
    void clientSideRefusesACertificateNoTrustedCaSigned() throws Exception {
        InterceptingTls jdkTrustOnly = new InterceptingTls(stockade, null);
        try (Upstream upstream = new Upstream(upstreamCa.issue(UPSTREAM_HOST))) {
            IOException e = assertThrows(IOException.class,
                    () -> jdkTrustOnly.clientSide(upstream.address(), UPSTREAM_HOST, 5_000));
            assertTrue(e.getMessage().contains("is not trusted: it is not signed by a CA in the JDK trust store or the"
                    + " extra trust file"), e.getMessage());
            assertNull(upstream.requests.poll(200, TimeUnit.MILLISECONDS));
        }
    }

    @Test
    void clientSideRefusesAnExpiredCertificate() throws Exception {
        Clock past = Clock.fixed(Instant.now().minus(Duration.ofDays(30)), ZoneOffset.UTC);
        StockadeCa oldCa = StockadeCa.loadOrCreate(tmp.resolve("old-ca"), past, 10);
        Path trust = tmp.resolve("old-ca.pem");
        Files.writeString(trust, oldCa.certificatePem());
        InterceptingTls trusting = new InterceptingTls(stockade, trust);
        try (Upstream upstream = new Upstream(oldCa.issue(UPSTREAM_HOST))) {
            IOException e = assertThrows(IOException.class,
                    () -> trusting.clientSide(upstream.address(), UPSTREAM_HOST, 5_000));
            assertTrue(e.getMessage().contains("has expired"), e.getMessage());
        }
    }

    @Test
    void clientSideReportsARefusedConnection() throws Exception {
        int port;
        try (ServerSocket closed = new ServerSocket(0, 1, LOOPBACK)) {
            port = closed.getLocalPort();
        }
        IOException e = assertThrows(IOException.class,
                () -> tls.clientSide(new InetSocketAddress(LOOPBACK, port), UPSTREAM_HOST, 2_000));
        assertTrue(e.getMessage().startsWith("cannot connect to upstream.test ("), e.getMessage());
    }

    @Test
    void serverSideRefusesAClientThatInsistsOnHttp2() throws Exception {
        Future<Exception> client = sandbox.submit(() -> {
            try (SSLSocket s = sandboxClient(UPSTREAM_HOST, "h2")) {
                s.startHandshake();
                return null;
            } catch (IOException e) {
                return e;
            }
        });
        IOException e = assertThrows(IOException.class, () -> acceptIntercepted(tls, UPSTREAM_HOST));
        assertTrue(e.getMessage().contains("offered only [h2]") && e.getMessage().contains("http/1.1"), e.getMessage());
        assertInstanceOf(SSLException.class, client.get(10, TimeUnit.SECONDS));
    }

    @Test
    void serverSideFailsAtOnceOnAClientThatDoesNotSpeakTls() throws Exception {
        Future<byte[]> client = sandbox.submit(() -> {
            try (Socket s = TlsTestKit.connect(listener)) {
                s.setSoTimeout(10_000);
                write(s.getOutputStream(), "GET / HTTP/1.1\r\nHost: upstream.test\r\n\r\n");
                return s.getInputStream().readNBytes(1024); // TLS alerts at most, then end of stream
            }
        });
        long start = System.nanoTime();
        IOException e = assertThrows(IOException.class, () -> acceptIntercepted(tls, UPSTREAM_HOST));
        assertTrue(Duration.ofNanos(System.nanoTime() - start).toSeconds() < 5);
        assertTrue(e.getMessage().contains("not speaking TLS"), e.getMessage());
        assertOnlyAlertsThenClosed(client.get(10, TimeUnit.SECONDS));
    }

    @Test
    void serverSideGivesUpOnASilentClient() throws Exception {
        InterceptingTls quick = new InterceptingTls(stockade, null, Duration.ofMillis(500));
        Future<byte[]> client = sandbox.submit(() -> {
            try (Socket s = TlsTestKit.connect(listener)) {
                s.setSoTimeout(10_000);
                // A handshake record header announcing 512 bytes, then silence.
                s.getOutputStream().write(new byte[] {0x16, 0x03, 0x01, 0x02, 0x00, 0x01});
                s.getOutputStream().flush();
                return s.getInputStream().readNBytes(1024); // TLS alerts at most, then end of stream
            }
        });
        long start = System.nanoTime();
        IOException e = assertThrows(IOException.class, () -> acceptIntercepted(quick, UPSTREAM_HOST));
        Duration took = Duration.ofNanos(System.nanoTime() - start);
        assertTrue(took.toMillis() >= 450 && took.toMillis() < 3_000, "took " + took);
        assertTrue(e.getMessage().contains("no complete TLS handshake within 500 ms"), e.getMessage());
        assertOnlyAlertsThenClosed(client.get(10, TimeUnit.SECONDS));
    }

    @Test
    void serverSideGivesUpOnAClientThatTricklesBytes() throws Exception {
        InterceptingTls quick = new InterceptingTls(stockade, null, Duration.ofMillis(800));
        Future<Boolean> client = sandbox.submit(() -> {
            try (Socket s = TlsTestKit.connect(listener)) {
                OutputStream out = s.getOutputStream();
                out.write(new byte[] {0x16, 0x03, 0x01, 0x02, 0x00});
                // One byte every 200 ms keeps every single read under the 800 ms read timeout.
                for (int i = 0; i < 100; i++) {
                    Thread.sleep(200);
                    out.write(0x01);
                    out.flush();
                }
                return false;
            } catch (IOException closedByServer) {
                return true;
            }
        });
        long start = System.nanoTime();
        IOException e = assertThrows(IOException.class, () -> acceptIntercepted(quick, UPSTREAM_HOST));
        Duration took = Duration.ofNanos(System.nanoTime() - start);
        assertTrue(took.toMillis() >= 750 && took.toMillis() < 3_000, "took " + took);
        assertTrue(e.getMessage().contains("no complete TLS handshake within 800 ms"), e.getMessage());
        assertTrue(client.get(15, TimeUnit.SECONDS), "the trickling client's connection was closed");
    }

    @Test
    void refusesHostsThatAreNotNames() throws Exception {
        try (Socket a = new Socket()) {
            IOException e = assertThrows(IOException.class, () -> tls.serverSide(a, new byte[0], "bad host"));
            assertTrue(e.getMessage().contains("not a valid host name"), e.getMessage());
            assertTrue(a.isClosed(), "a failed serverSide closes the sandbox's socket");
        }
        IOException e = assertThrows(IOException.class,
                () -> tls.clientSide(new InetSocketAddress(LOOPBACK, 1), "bad_.-host", 1_000));
        assertTrue(e.getMessage().contains("not a valid host name"), e.getMessage());
    }

    @Test
    void refusesAnExtraTrustFileWithoutCertificates() throws Exception {
        Path empty = Files.writeString(tmp.resolve("empty.pem"), "# nothing here\n");
        IOException none = assertThrows(IOException.class, () -> new InterceptingTls(stockade, empty));
        assertTrue(none.getMessage().contains("holds no certificate"), none.getMessage());

        Path withKey = Files.writeString(tmp.resolve("key.pem"),
                upstreamCa.certificatePem() + Files.readString(tmp.resolve("upstream-ca/ca.key")));
        IOException key = assertThrows(IOException.class, () -> new InterceptingTls(stockade, withKey));
        assertTrue(key.getMessage().contains("contains a private key"), key.getMessage());

        IOException missing = assertThrows(IOException.class,
                () -> new InterceptingTls(stockade, tmp.resolve("missing.pem")));
        assertTrue(missing.getMessage().contains("is not a regular file"), missing.getMessage());
    }

    @Test
    void publishesTheCaCertificate() {
        assertEquals(stockade.certificatePem(), tls.caCertificatePem());
        assertFalse(tls.caCertificatePem().contains("PRIVATE"));
    }

    /** The sandbox got nothing but TLS alert records (7 bytes each before encryption), then end of stream. */
    private static void assertOnlyAlertsThenClosed(byte[] got) {
        assertTrue(got.length % 7 == 0 && got.length <= 21, "alert records at most: " + got.length + " bytes");
        for (int i = 0; i < got.length; i += 7) assertEquals(21, got[i], "record " + i / 7 + " is an alert");
    }

    /** What the proxy does after answering CONNECT: read the start of the ClientHello, then hand over. */
    private Socket acceptIntercepted(InterceptingTls interception, String host) throws IOException {
        Socket accepted = listener.accept();
        byte[] prefix;
        try {
            accepted.setSoTimeout(10_000);
            prefix = accepted.getInputStream().readNBytes(5);
            accepted.setSoTimeout(0);
        } catch (IOException e) {
            accepted.close();
            throw e;
        }
        return interception.serverSide(accepted, prefix, host);
    }

    private SSLSocket sandboxClient(String host, String... alpn) throws Exception {
        return TlsTestKit.client(TlsTestKit.clientTrusting(stockade.certificate()), TlsTestKit.connect(listener), host,
                alpn);
    }

    /** A TLS server answering each connection's first request with {@link #ANSWER}. */
    private static final class Upstream implements AutoCloseable {
        final BlockingQueue<String> requests = new LinkedBlockingQueue<>();
        private final SSLServerSocket server;
        private final Thread thread;

        Upstream(StockadeCa.Leaf leaf) throws Exception {
            server = (SSLServerSocket) TlsTestKit.serverContext(leaf).getServerSocketFactory()
                    .createServerSocket(0, 8, LOOPBACK);
            thread = Thread.ofVirtual().name("test-upstream").start(this::serve);
        }

        InetSocketAddress address() {
            return new InetSocketAddress(LOOPBACK, server.getLocalPort());
        }

        private void serve() {
            while (!server.isClosed()) {
                try (Socket s = server.accept()) {
                    s.setSoTimeout(10_000);
                    InputStream in = s.getInputStream();
                    requests.add(readHead(in));
                    write(s.getOutputStream(), ANSWER);
                } catch (IOException e) {
                    // a client that refused our certificate, or the server socket closing
                }
            }
        }

        @Override
        public void close() throws IOException {
            server.close();
            try {
                if (!thread.join(Duration.ofSeconds(10))) throw new IOException("the test upstream did not stop");
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted while stopping the test upstream", e);
            }
        }
    }
}
