package dev.stockade.server.egress;

import static dev.stockade.server.egress.EgressTestKit.PREAMBLE;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.server.egress.EgressTestKit.Raw;
import dev.stockade.server.egress.EgressTestKit.TcpRelay;
import dev.stockade.server.egress.EgressTestKit.Upstream;
import dev.stockade.server.egress.NetworkPolicy.Mode;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * The proxy end to end over a real unix socket: upstream sites on 127.0.0.1 and ::1 reached by
 * name through the operator's static hosts, a relay that writes the preamble, and the sandbox's
 * clients (raw bytes, SSLSocket through a TCP relay).
 */
@Timeout(value = 30, unit = TimeUnit.SECONDS)
class EgressProxyTest {
    static final String PLACEHOLDER = "stockade-secret-" + "0123456789abcdef".repeat(2);
    static final String SECRET_VALUE = "sk-live-0000-very-secret";

    @TempDir
    Path tmp;

    private Upstream http4;
    private Upstream http6;
    private Upstream https4;
    private StockadeCa upstreamCa;
    private EgressProxy proxy;
    private SandboxEgress sandbox;
    private Path socket;
    private final List<Decision> sunk = new CopyOnWriteArrayList<>();
    private final List<AutoCloseable> cleanup = new ArrayList<>();

    /** A tiny internal site: answers with the sandbox id and target, records a package decision. */
    static final class TestSite implements InternalSite {
        @Override
        public String host() {
            return "pypi.stockade";
        }

        @Override
        public InternalResponse handle(String sandboxId, InternalRequest request, DecisionSink sink) {
            sink.record(new Decision(java.time.Instant.now(), sandboxId, null, null, "package", "requests", 0, null,
                    true, "package-allowlist", "requests is allowed"));
            return InternalResponse.text(200, "index for " + sandboxId + " " + request.method() + " " + request.target()
                    + " ua=" + request.headers().get("user-agent"));
        }
    }

    @BeforeEach
    void setUp() throws Exception {
        http4 = Upstream.plain(InetAddress.getByName("127.0.0.1"));
        http6 = Upstream.plain(InetAddress.getByName("::1"));
        upstreamCa = StockadeCa.loadOrCreate(tmp.resolve("upstream-ca"));
        SSLContext server = TlsTestKit.serverContext(upstreamCa.issue("allowed.test"));
        SSLServerSocket tlsServer = (SSLServerSocket) server.getServerSocketFactory()
                .createServerSocket(0, 50, InetAddress.getByName("127.0.0.1"));
        https4 = new Upstream(tlsServer);
        socket = tmp.resolve("egress.sock");
        proxy = newProxy(true, 8);
    }

    private EgressProxy newProxy(boolean withTls, int maxConnections) throws IOException {
        return newProxy(withTls, maxConnections, Duration.ofSeconds(10));
    }

    private EgressProxy newProxy(boolean withTls, int maxConnections, Duration idle) throws IOException {
        Path extraTrust = tmp.resolve("extra-trust.pem");
        Files.writeString(extraTrust, upstreamCa.certificatePem());
        EgressConfig config = new EgressConfig(false, List.of("127.0.0.1/32", "::1/128"), Map.of(
                "allowed.test", List.of("127.0.0.1", "::1"),
                "forbidden.test", List.of("127.0.0.1", "::1"),
                "v6only.test", List.of("::1"),
                "metadata.test", List.of("169.254.169.254")),
                Duration.ofSeconds(2), idle, maxConnections, 100, extraTrust);
        TlsInterception tls = withTls
                ? new InterceptingTls(StockadeCa.loadOrCreate(tmp.resolve("stockade-ca")), extraTrust) : null;
        EgressProxy p = new EgressProxy(config, List.of(new TestSite()), tls, Duration.ofSeconds(2));
        p.onDecision(sunk::add);
        return p;
    }

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable c : cleanup.reversed()) {
            c.close();
        }
        proxy.close();
        assertFalse(Files.exists(socket), "closing deletes the socket file");
        http4.close();
        http6.close();
        https4.close();
    }

    private SandboxEgress attach(NetworkPolicy policy, SecretBinding... secrets) throws IOException {
        sandbox = proxy.attach("sbx-1", socket, currentUid(), policy, List.of(secrets));
        return sandbox;
    }

    private static long currentUid() throws IOException {
        return ((Number) Files.getAttribute(Path.of("/proc/self"), "unix:uid")).longValue();
    }

    private static NetworkPolicy allow(String... entries) {
        return NetworkPolicy.of(Mode.ALLOWLIST, List.of(entries), List.of(), Map.of());
    }

    private String get(String url, String host, String... headers) throws IOException {
        try (Raw raw = new Raw(socket, PREAMBLE)) {
            return raw.send("GET " + url + " HTTP/1.1\r\nHost: " + host + "\r\n" + String.join("", headers) + "\r\n")
                    .readAll();
        }
    }

    private Decision lastDecision() {
        List<Decision> log = sandbox.log(1);
        assertEquals(1, log.size());
        return log.getFirst();
    }

    private static void await(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out waiting for " + what);
            }
            Thread.sleep(10);
        }
    }

    // ---- socket ----

    @Test
    void socketIsPrivateToTheOwnerAndRefusesAnExistingPath() throws Exception {
        attach(NetworkPolicy.none());
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(socket)));
        assertEquals((int) currentUid(), Files.getAttribute(socket, "unix:uid"));
        IOException e = assertThrows(IOException.class,
                () -> proxy.attach("sbx-2", socket, currentUid(), NetworkPolicy.none(), List.of()));
        assertTrue(e.getMessage().contains("already exists"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> proxy.attach("sbx-3", tmp.resolve("other.sock"), currentUid(),
                NetworkPolicy.of(Mode.OPEN, List.of(), List.of(), Map.of()), List.of()), "open mode is off");
        sandbox.close();
        assertFalse(Files.exists(socket));
    }

    // ---- policy ----

    @Test
    void modeNoneRefusesWithReasonRuleAndReportedIdentity() throws Exception {
        attach(NetworkPolicy.none());
        String answer = get("http://allowed.test:" + http4.port() + "/x?token=abc", "allowed.test:" + http4.port());
        assertTrue(answer.startsWith("HTTP/1.1 403 Forbidden\r\n"), answer);
        assertTrue(answer.contains("X-Stockade-Egress: refused; rule=\"mode none\""), answer);
        assertTrue(answer.contains("Content-Type: text/plain"), answer);
        assertTrue(answer.endsWith("stockade egress: refused allowed.test:" + http4.port()
                + ": the sandbox's network policy is none (no network access); ask for an allow-list (network.allowOut)\n"), answer);
        Decision d = lastDecision();
        assertEquals(new Decision(d.time(), "sbx-1", 42, 1000, "http", "allowed.test", http4.port(), null, false,
                "mode none", "the sandbox's network policy is none (no network access); ask for an allow-list (network.allowOut)"), d);
        assertFalse(d.toString().contains("token"), "no query strings in decisions");
        assertEquals(1, sandbox.refused());
        assertEquals(1, proxy.refusedTotal());
        assertEquals(List.of(d), sunk);
        assertNull(http4.requests.poll(200, TimeUnit.MILLISECONDS), "nothing reached the upstream");
    }

    @Test
    void allowListByNameForwardsInOriginFormAndRefusesOthers() throws Exception {
        attach(allow("allowed.test:" + http4.port()));
        String answer = get("http://allowed.test:" + http4.port() + "/path?q=1", "allowed.test:" + http4.port(),
                "Proxy-Authorization: Basic eA==\r\n", "Proxy-Connection: keep-alive\r\n", "Connection: keep-alive\r\n");
        assertTrue(answer.startsWith("HTTP/1.1 200 OK\r\n"), answer);
        assertTrue(answer.contains("Connection: close\r\n"), answer);
        assertFalse(answer.contains("Keep-Alive"), answer);
        assertTrue(answer.endsWith("hello /path?q=1"), answer);
        String request = http4.nextRequest();
        assertTrue(request.startsWith("GET /path?q=1 HTTP/1.1\r\n"), request);
        assertTrue(request.contains("Connection: close\r\n"), request);
        assertFalse(request.toLowerCase().contains("proxy-"), request);
        Decision ok = lastDecision();
        assertTrue(ok.allowed());
        assertEquals("127.0.0.1", ok.address());
        assertEquals("allow allowed.test:" + http4.port(), ok.rule());

        String refused = get("http://forbidden.test:" + http4.port() + "/", "forbidden.test:" + http4.port());
        assertTrue(refused.startsWith("HTTP/1.1 403 "), refused);
        assertEquals("mode allowlist", lastDecision().rule());
        String wrongPort = get("http://allowed.test/", "allowed.test");
        assertTrue(wrongPort.startsWith("HTTP/1.1 403 "), wrongPort);
        assertEquals(1, sandbox.allowed());
        assertEquals(2, sandbox.refused());
    }

    @Test
    void allowListByIpV4AndV6() throws Exception {
        attach(allow("127.0.0.1:" + http4.port(), "[::1]:" + http6.port()));
        assertTrue(get("http://127.0.0.1:" + http4.port() + "/four", "127.0.0.1:" + http4.port()).endsWith("hello /four"));
        assertTrue(get("http://[::1]:" + http6.port() + "/six", "[::1]:" + http6.port()).endsWith("hello /six"));
        assertEquals("::1", lastDecision().address());
        assertTrue(get("http://v6only.test:" + http6.port() + "/byname", "v6only.test:" + http6.port())
                .endsWith("hello /byname"), "a name resolving to an allowed address is admitted by the address entry");
        String other = get("http://[::1]:" + http4.port() + "/", "[::1]:" + http4.port());
        assertTrue(other.startsWith("HTTP/1.1 403 "), other);
    }

    @Test
    void metadataIsRefusedEvenUnderAWildcard() throws Exception {
        attach(allow("*.test:80", "*.test:" + http4.port()));
        String answer = get("http://metadata.test/latest/meta-data/", "metadata.test");
        assertTrue(answer.startsWith("HTTP/1.1 403 "), answer);
        assertTrue(answer.contains("rule=\"private-range 169.254.0.0/16\""), answer);
        assertEquals("169.254.169.254", lastDecision().address());
        assertTrue(get("http://allowed.test:" + http4.port() + "/", "allowed.test:" + http4.port())
                .startsWith("HTTP/1.1 200 "));
    }

    @Test
    void hostHeaderMustMatchTheUrl() throws Exception {
        attach(allow("allowed.test:" + http4.port()));
        String answer = get("http://allowed.test:" + http4.port() + "/", "forbidden.test:" + http4.port());
        assertTrue(answer.startsWith("HTTP/1.1 400 "), answer);
        assertNull(http4.requests.poll(200, TimeUnit.MILLISECONDS));
    }

    // ---- plain HTTP framing ----

    @Test
    void chunkedRequestBodiesAreForwardedExactly() throws Exception {
        attach(allow("allowed.test:" + http4.port()));
        String authority = "allowed.test:" + http4.port();
        try (Raw raw = new Raw(socket, PREAMBLE)) {
            raw.send("POST http://" + authority + "/upload HTTP/1.1\r\nHost: " + authority
                    + "\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7;x=y\r\n, world\r\n0\r\n\r\n");
            String answer = raw.readAll();
            assertTrue(answer.startsWith("HTTP/1.1 200 "), answer);
        }
        String request = http4.nextRequest();
        assertTrue(request.startsWith("POST /upload HTTP/1.1\r\n"), request);
        assertTrue(request.endsWith("\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n"), request);
    }

    @Test
    void aPipelinedSecondRequestNeverReachesTheUpstream() throws Exception {
        attach(allow("allowed.test:" + http4.port()));
        String authority = "allowed.test:" + http4.port();
        try (Raw raw = new Raw(socket, PREAMBLE)) {
            raw.send("POST http://" + authority + "/first HTTP/1.1\r\nHost: " + authority
                    + "\r\nContent-Length: 3\r\n\r\nabc"
                    + "GET http://forbidden.test:" + http4.port() + "/second HTTP/1.1\r\nHost: " + authority + "\r\n\r\n");
            String answer = raw.readAll();
            assertTrue(answer.endsWith("hello /first"), answer);
            assertFalse(answer.contains("second"), answer);
        }
        String seen = http4.finishedConnections.poll(10, TimeUnit.SECONDS);
        assertNotNull(seen);
        assertTrue(seen.startsWith("POST /first HTTP/1.1\r\n"), seen);
        assertTrue(seen.endsWith("\r\n\r\nabc"), seen);
        assertFalse(seen.contains("second"), seen);
    }

    @Test
    void upstreamFailureAnswers502AndIsRecordedAsAllowed() throws Exception {
        int closedPort;
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName("127.0.0.1"))) {
            closedPort = s.getLocalPort();
        }
        attach(allow("allowed.test:" + closedPort));
        String answer = get("http://allowed.test:" + closedPort + "/", "allowed.test:" + closedPort);
        assertTrue(answer.startsWith("HTTP/1.1 502 "), answer);
        Decision d = lastDecision();
        assertTrue(d.allowed());
        assertTrue(d.reason().startsWith("upstream failed: "), d.reason());
    }

    @Test
    void nonProxyRequestsGetAnExplanation() throws Exception {
        attach(allow("allowed.test"));
        try (Raw raw = new Raw(socket, PREAMBLE)) {
            String answer = raw.send("GET / HTTP/1.1\r\nHost: allowed.test\r\n\r\n").readAll();
            assertTrue(answer.startsWith("HTTP/1.1 400 "), answer);
            assertTrue(answer.contains("Stockade's egress proxy"), answer);
        }
        try (Raw raw = new Raw(socket, PREAMBLE)) {
            String answer = raw.send("GET https://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n").readAll();
            assertTrue(answer.startsWith("HTTP/1.1 400 "), answer);
            assertTrue(answer.contains("CONNECT"), answer);
        }
    }

    // ---- CONNECT ----

    private SSLSocket tunnel(TcpRelay relay, String connectTarget, String sni, SSLContext trust) throws IOException {
        Socket s = relay.connect();
        s.getOutputStream().write(("CONNECT " + connectTarget + " HTTP/1.1\r\nHost: " + connectTarget + "\r\n\r\n")
                .getBytes(StandardCharsets.US_ASCII));
        String head = EgressTestKit.readHead(s.getInputStream());
        assertEquals("HTTP/1.1 200 Connection Established\r\n\r\n", head);
        SSLSocket ssl = TlsTestKit.client(trust, s, sni);
        return ssl;
    }

    private static String httpsGet(SSLSocket ssl, String host, String path, String... headers) throws IOException {
        ssl.getOutputStream().write(("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" + String.join("", headers)
                + "\r\n").getBytes(StandardCharsets.ISO_8859_1));
        ssl.getOutputStream().flush();
        InputStream in = ssl.getInputStream();
        String head = EgressTestKit.readHead(in);
        if (head == null) {
            throw new IOException("the tunnel was closed");
        }
        int at = head.toLowerCase().indexOf("content-length: ") + 16;
        int n = Integer.parseInt(head.substring(at, head.indexOf('\r', at)));
        return head + new String(in.readNBytes(n), StandardCharsets.UTF_8);
    }

    @Test
    void connectPassesTlsThroughUntouched() throws Exception {
        attach(allow("allowed.test:" + https4.port()));
        SSLContext trustUpstream = TlsTestKit.clientTrusting(upstreamCa.certificate());
        try (TcpRelay relay = new TcpRelay(socket);
             SSLSocket ssl = tunnel(relay, "allowed.test:" + https4.port(), "allowed.test", trustUpstream)) {
            String answer = httpsGet(ssl, "allowed.test", "/secure");
            assertTrue(answer.endsWith("hello /secure"), answer);
            assertTrue(httpsGet(ssl, "allowed.test", "/again").endsWith("hello /again"), "keep-alive in the tunnel");
            Decision d = lastDecision();
            assertEquals("connect", d.kind());
            assertTrue(d.allowed());
            assertEquals("127.0.0.1", d.address());
            assertEquals(1, sandbox.openConnections());
        }
        await(() -> sandbox.openConnections() == 0, "the tunnel to close");
    }

    @Test
    void connectRefusalsAnswer403() throws Exception {
        attach(allow("allowed.test:" + https4.port()));
        try (Raw raw = new Raw(socket, PREAMBLE)) {
            String answer = raw.send("CONNECT forbidden.test:443 HTTP/1.1\r\nHost: forbidden.test:443\r\n\r\n").readAll();
            assertTrue(answer.startsWith("HTTP/1.1 403 "), answer);
            assertTrue(answer.contains("refused forbidden.test:443: "), answer);
        }
        try (Raw raw = new Raw(socket, PREAMBLE)) {
            String answer = raw.send("CONNECT allowed.test HTTP/1.1\r\n\r\n").readAll();
            assertTrue(answer.startsWith("HTTP/1.1 400 "), answer);
        }
    }

    @Test
    void sniMismatchAndDomainFrontingAreRefused() throws Exception {
        attach(allow("allowed.test:" + https4.port(), "127.0.0.1:" + https4.port()));
        SSLContext trustUpstream = TlsTestKit.clientTrusting(upstreamCa.certificate());
        try (TcpRelay relay = new TcpRelay(socket)) {
            try (SSLSocket ssl = tunnel(relay, "allowed.test:" + https4.port(), "other.test", trustUpstream)) {
                assertThrows(IOException.class, ssl::startHandshake);
            }
            Decision d = lastDecision();
            assertFalse(d.allowed());
            assertEquals("SNI other.test does not match CONNECT host allowed.test", d.reason());
            try (SSLSocket ssl = tunnel(relay, "127.0.0.1:" + https4.port(), "allowed.test", trustUpstream)) {
                assertThrows(IOException.class, ssl::startHandshake);
            }
            assertTrue(lastDecision().reason().contains("domain fronting"), lastDecision().reason());
        }
        assertTrue(https4.requests.isEmpty());
    }

    @Test
    void connectCarriesTlsOnly() throws Exception {
        attach(allow("allowed.test:" + http4.port()));
        try (Raw raw = new Raw(socket, PREAMBLE)) {
            String authority = "allowed.test:" + http4.port();
            String answer = raw.send("CONNECT " + authority + " HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nHost: " + authority
                    + "\r\n\r\n").readAll();
            assertEquals("HTTP/1.1 200 Connection Established\r\n\r\n", answer, "then closed");
        }
        Decision d = lastDecision();
        assertFalse(d.allowed());
        assertEquals("tls-only", d.rule());
        assertTrue(d.reason().startsWith("CONNECT carries TLS only"), d.reason());
        assertNull(http4.requests.poll(200, TimeUnit.MILLISECONDS), "no plaintext reached the upstream");
    }

    @Test
    void setPolicyCutsOpenTunnelsItNowRefuses() throws Exception {
        attach(allow("allowed.test:" + https4.port()));
        SSLContext trustUpstream = TlsTestKit.clientTrusting(upstreamCa.certificate());
        try (TcpRelay relay = new TcpRelay(socket);
             SSLSocket ssl = tunnel(relay, "allowed.test:" + https4.port(), "allowed.test", trustUpstream)) {
            assertTrue(httpsGet(ssl, "allowed.test", "/before").endsWith("hello /before"));
            sandbox.setPolicy(allow("allowed.test:" + https4.port(), "example.com"));
            assertTrue(httpsGet(ssl, "allowed.test", "/still").endsWith("hello /still"), "still admitted: kept open");
            sandbox.setPolicy(NetworkPolicy.none());
            Decision cut = lastDecision();
            assertFalse(cut.allowed());
            assertEquals("mode none", cut.rule());
            assertTrue(cut.reason().startsWith("closed: the sandbox's new network policy refuses"), cut.reason());
            assertThrows(IOException.class, () -> httpsGet(ssl, "allowed.test", "/after"));
        }
        await(() -> sandbox.openConnections() == 0, "the cut tunnel to go");
        assertEquals(NetworkPolicy.none(), sandbox.policy());
    }

    // ---- secrets and interception ----

    private SecretBinding apiKey(String... hosts) {
        return new SecretBinding("API_KEY", PLACEHOLDER, SECRET_VALUE, List.of(hosts));
    }

    @Test
    void placeholdersAreSubstitutedForTheirHostAndRefusedElsewhere() throws Exception {
        attach(allow("allowed.test:" + http4.port(), "forbidden.test:" + http4.port()), apiKey("http://allowed.test:" + http4.port()));
        String authority = "allowed.test:" + http4.port();
        String answer = get("http://" + authority + "/v1?key=" + PLACEHOLDER, authority,
                "Authorization: Bearer " + PLACEHOLDER + "\r\n");
        assertTrue(answer.startsWith("HTTP/1.1 200 "), answer);
        String request = http4.nextRequest();
        assertTrue(request.startsWith("GET /v1?key=" + SECRET_VALUE + " HTTP/1.1"), request);
        assertTrue(request.contains("Authorization: Bearer " + SECRET_VALUE + "\r\n"), request);
        assertFalse(request.contains(PLACEHOLDER), request);

        String other = "forbidden.test:" + http4.port();
        String refused = get("http://" + other + "/", other, "X-Token: " + PLACEHOLDER + "\r\n");
        assertTrue(refused.startsWith("HTTP/1.1 403 "), refused);
        assertTrue(refused.contains("rule=\"secret API_KEY\""), refused);
        assertFalse(refused.contains(SECRET_VALUE));
        Decision d = lastDecision();
        assertEquals("secret API_KEY", d.rule());
        assertFalse(d.allowed());
        assertNull(http4.requests.poll(200, TimeUnit.MILLISECONDS));
        for (Decision each : sandbox.log(100)) {
            assertFalse(each.toString().contains(SECRET_VALUE), each.toString());
        }
        for (Decision each : sunk) {
            assertFalse(each.toString().contains(SECRET_VALUE), each.toString());
        }
    }

    @Test
    void aSecretBoundToAHostIsNotSentInPlainHttpOrToAnotherPort() throws Exception {
        attach(allow("allowed.test:" + http4.port()), apiKey("allowed.test", "https://allowed.test:" + http4.port()));
        String authority = "allowed.test:" + http4.port();
        String refused = get("http://" + authority + "/v1", authority, "Authorization: Bearer " + PLACEHOLDER + "\r\n");
        assertTrue(refused.startsWith("HTTP/1.1 403 "), refused);
        assertTrue(refused.contains("rule=\"secret API_KEY\""), refused);
        assertFalse(refused.contains(SECRET_VALUE));
        assertNull(http4.requests.poll(200, TimeUnit.MILLISECONDS), "nothing left in clear text");
    }

    @Test
    void interceptedTlsSubstitutesPlaceholdersAndAppliesHeaderRules() throws Exception {
        NetworkPolicy policy = NetworkPolicy.of(Mode.ALLOWLIST, List.of("allowed.test:" + https4.port()), List.of(),
                Map.of("allowed.test", Map.of("X-Team", "blue")));
        attach(policy, apiKey("https://allowed.test:" + https4.port()));
        StockadeCa stockade = StockadeCa.loadOrCreate(tmp.resolve("stockade-ca"));
        SSLContext trustStockade = TlsTestKit.clientTrusting(stockade.certificate());
        try (TcpRelay relay = new TcpRelay(socket);
             SSLSocket ssl = tunnel(relay, "allowed.test:" + https4.port(), "allowed.test", trustStockade)) {
            String answer = httpsGet(ssl, "allowed.test:" + https4.port(), "/v1/me",
                    "Authorization: Bearer " + PLACEHOLDER + "\r\n", "X-Team: red\r\n");
            assertTrue(answer.endsWith("hello /v1/me"), answer);
            String request = https4.nextRequest();
            assertTrue(request.contains("Authorization: Bearer " + SECRET_VALUE + "\r\n"), request);
            assertTrue(request.contains("X-Team: blue\r\n"), request);
            assertFalse(request.contains("X-Team: red"), request);
            Decision d = lastDecision();
            assertEquals("https", d.kind());
            assertTrue(d.allowed());
            assertTrue(httpsGet(ssl, "allowed.test:" + https4.port(), "/second").endsWith("hello /second"),
                    "keep-alive inside the intercepted tunnel");
        }
        for (Decision each : sandbox.log(100)) {
            assertFalse(each.toString().contains(SECRET_VALUE), each.toString());
        }
    }

    @Test
    void interceptedTunnelsRefuseForeignPlaceholdersAndHosts() throws Exception {
        SecretBinding other = new SecretBinding("OTHER", "stockade-secret-" + "f".repeat(32), "other-value",
                List.of("elsewhere.test"));
        attach(allow("allowed.test:" + https4.port()), apiKey("https://allowed.test:" + https4.port()), other);
        SSLContext trustStockade = TlsTestKit.clientTrusting(
                StockadeCa.loadOrCreate(tmp.resolve("stockade-ca")).certificate());
        try (TcpRelay relay = new TcpRelay(socket);
             SSLSocket ssl = tunnel(relay, "allowed.test:" + https4.port(), "allowed.test", trustStockade)) {
            ssl.getOutputStream().write(("GET / HTTP/1.1\r\nHost: allowed.test:" + https4.port() + "\r\nX-Key: "
                    + other.placeholder()
                    + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            String answer = new String(ssl.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(answer.startsWith("HTTP/1.1 403 "), answer);
            assertTrue(answer.contains("secret OTHER"), answer);
        }
        assertEquals("secret OTHER", lastDecision().rule());
        try (TcpRelay relay = new TcpRelay(socket);
             SSLSocket ssl = tunnel(relay, "allowed.test:" + https4.port(), "allowed.test", TlsTestKit.clientTrusting(
                     StockadeCa.loadOrCreate(tmp.resolve("stockade-ca")).certificate()))) {
            ssl.getOutputStream().write("GET / HTTP/1.1\r\nHost: forbidden.test\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            String answer = new String(ssl.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(answer.startsWith("HTTP/1.1 400 "), answer);
        }
        assertTrue(https4.requests.isEmpty());
    }

    @Test
    void withoutInterceptionBoundHostsAreRefused() throws Exception {
        proxy.close();
        proxy = newProxy(false, 8);
        attach(allow("allowed.test:" + https4.port()), apiKey("allowed.test"));
        try (Raw raw = new Raw(socket, PREAMBLE)) {
            String answer = raw.send("CONNECT allowed.test:" + https4.port() + " HTTP/1.1\r\n\r\n").readAll();
            assertTrue(answer.startsWith("HTTP/1.1 403 "), answer);
            assertTrue(answer.contains("no TLS interception"), answer);
        }
        assertEquals("tls-interception", lastDecision().rule());
    }

    // ---- internal sites ----

    @Test
    void internalSitesAreServedWhateverTheMode() throws Exception {
        attach(NetworkPolicy.none());
        String answer = get("http://pypi.stockade/simple/requests/", "pypi.stockade", "User-Agent: pip/24\r\n");
        assertTrue(answer.startsWith("HTTP/1.1 200 OK\r\n"), answer);
        assertTrue(answer.contains("Connection: close\r\n"), answer);
        assertTrue(answer.contains("Content-Length: "), answer);
        assertTrue(answer.endsWith("index for sbx-1 GET /simple/requests/ ua=pip/24\n"), answer);
        Decision d = lastDecision();
        assertEquals("package", d.kind());
        assertEquals(42, d.pid(), "the proxy fills in the reported pid");
        assertEquals(1000, d.uid());
    }

    // ---- hostile relays and clients ----

    @Test
    void aConnectionWithoutThePreambleIsClosedAsHostile() throws Exception {
        attach(allow("allowed.test:" + http4.port()));
        try (Raw raw = new Raw(socket, null)) {
            String answer = raw.send("GET http://allowed.test:" + http4.port() + "/ HTTP/1.1\r\n\r\n").readAll();
            assertEquals("", answer);
        }
        Decision d = lastDecision();
        assertEquals("?", d.host());
        assertEquals("connect", d.kind());
        assertEquals("relay-preamble", d.rule());
        assertFalse(d.allowed());
        try (Raw raw = new Raw(socket, "STOCKADE-RELAY " + "x".repeat(200) + "\n")) {
            assertEquals("", raw.readAll(), "an over-long preamble is hostile too");
        }
    }

    @Test
    void aGarbledPreambleLeavesPidAndUidUnknown() throws Exception {
        attach(NetworkPolicy.none());
        try (Raw raw = new Raw(socket, "STOCKADE-RELAY 1 pid=abc uid=99999999999\n")) {
            raw.send("GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n").readAll();
        }
        Decision d = lastDecision();
        assertNull(d.pid());
        assertNull(d.uid());
        try (Raw raw = new Raw(socket, "STOCKADE-RELAY 1 pid=- uid=0\n")) {
            raw.send("GET http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n").readAll();
        }
        assertNull(lastDecision().pid());
        assertEquals(0, lastDecision().uid());
    }

    @Test
    void oversizedAndMalformedHeadsAreAnsweredAndClosed() throws Exception {
        attach(allow("allowed.test"));
        try (Raw raw = new Raw(socket, PREAMBLE)) {
            String answer = raw.send("GET http://allowed.test/" + "a".repeat(9000) + " HTTP/1.1\r\n\r\n").readAll();
            assertTrue(answer.startsWith("HTTP/1.1 414 "), answer);
        }
        try (Raw raw = new Raw(socket, PREAMBLE)) {
            String answer = raw.send("GET http://allowed.test/ HTTP/1.1\r\n" + "X-A: b\r\n".repeat(101) + "\r\n").readAll();
            assertTrue(answer.startsWith("HTTP/1.1 431 "), answer);
        }
        try (Raw raw = new Raw(socket, PREAMBLE)) {
            String answer = raw.send("\u0016\u0003\u0001garbage\r\n\r\n").readAll();
            assertTrue(answer.startsWith("HTTP/1.1 400 "), answer);
        }
        try (Raw raw = new Raw(socket, PREAMBLE)) {
            String answer = raw.send("POST http://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\nContent-Length: 3\r\n"
                    + "Transfer-Encoding: chunked\r\n\r\n").readAll();
            assertTrue(answer.startsWith("HTTP/1.1 400 "), answer);
        }
        assertEquals("bad-request", lastDecision().rule());
    }

    @Test
    void aSlowHeadIsCutAtTheHeadTimeout() throws Exception {
        attach(allow("allowed.test"));
        long start = System.nanoTime();
        try (Raw raw = new Raw(socket, PREAMBLE)) {
            raw.send("GET http://allowed.test/ HTTP/1.1\r\n");
            assertEquals("", raw.readAll());
        }
        long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - start);
        assertTrue(seconds < 10, "closed after the 2 s head timeout, took " + seconds + " s");
        await(() -> sandbox.openConnections() == 0, "the connection to be released");
    }

    @Test
    void connectionsOverTheLimitGet503() throws Exception {
        attach(allow("allowed.test"));
        List<Raw> idle = new ArrayList<>();
        try {
            for (int i = 0; i < 8; i++) {
                idle.add(new Raw(socket, PREAMBLE));
            }
            await(() -> sandbox.openConnections() == 8, "8 open connections");
            try (Raw raw = new Raw(socket, null)) {
                String answer = raw.readAll();
                assertTrue(answer.startsWith("HTTP/1.1 503 "), answer);
            }
            assertEquals("connection-limit", lastDecision().rule());
        } finally {
            for (Raw r : idle) {
                r.close();
            }
        }
        await(() -> sandbox.openConnections() == 0, "the idle connections to go");
    }

    @Test
    void theLogIsABoundedRingNewestLast() throws Exception {
        attach(NetworkPolicy.none());
        for (int i = 0; i < 105; i++) {
            get("http://h" + i + ".test/", "h" + i + ".test");
        }
        assertEquals(100, sandbox.log(1000).size());
        List<Decision> two = sandbox.log(2);
        assertEquals("h103.test", two.get(0).host());
        assertEquals("h104.test", two.get(1).host());
        assertEquals(105, sandbox.refused());
    }

    @Test
    void idleTunnelsAreClosed() throws Exception {
        proxy.close();
        proxy = newProxy(true, 8, Duration.ofMillis(1500)); // room for a cold TLS handshake
        attach(allow("allowed.test:" + https4.port()));
        SSLContext trustUpstream = TlsTestKit.clientTrusting(upstreamCa.certificate());
        try (TcpRelay relay = new TcpRelay(socket);
             SSLSocket ssl = tunnel(relay, "allowed.test:" + https4.port(), "allowed.test", trustUpstream)) {
            assertTrue(httpsGet(ssl, "allowed.test", "/one").endsWith("hello /one"));
            await(() -> sandbox.openConnections() == 0, "the idle tunnel to be closed");
            assertThrows(IOException.class, () -> httpsGet(ssl, "allowed.test", "/two"));
        }
    }

    @Test
    void aRealHttpClientWorksThroughTheRelay() throws Exception {
        attach(allow("allowed.test:" + http4.port()));
        try (TcpRelay relay = new TcpRelay(socket);
             java.net.http.HttpClient client = java.net.http.HttpClient.newBuilder()
                     .proxy(java.net.ProxySelector.of(new java.net.InetSocketAddress("127.0.0.1", relay.port())))
                     .version(java.net.http.HttpClient.Version.HTTP_1_1)
                     .connectTimeout(Duration.ofSeconds(5)).build()) {
            java.net.http.HttpResponse<String> response = client.send(java.net.http.HttpRequest.newBuilder(
                    java.net.URI.create("http://allowed.test:" + http4.port() + "/client?x=1"))
                            .timeout(Duration.ofSeconds(10))
                            .POST(java.net.http.HttpRequest.BodyPublishers.ofString("payload")).build(),
                    java.net.http.HttpResponse.BodyHandlers.ofString());
            assertEquals(200, response.statusCode());
            assertEquals("hello /client?x=1", response.body());
            assertTrue(http4.nextRequest().endsWith("\r\n\r\npayload"));
            java.net.http.HttpResponse<String> refused = client.send(java.net.http.HttpRequest.newBuilder(
                    java.net.URI.create("http://forbidden.test:" + http4.port() + "/")).timeout(Duration.ofSeconds(10))
                            .build(), java.net.http.HttpResponse.BodyHandlers.ofString());
            assertEquals(403, refused.statusCode());
            assertEquals("refused; rule=\"mode allowlist\"", refused.headers().firstValue("X-Stockade-Egress").orElseThrow());
        }
    }
}
