package dev.stockade.server.egress;

import static dev.stockade.server.egress.TlsTestKit.LOOPBACK;
import static dev.stockade.server.egress.TlsTestKit.readHead;
import static dev.stockade.server.egress.TlsTestKit.write;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The clients sandboxes really run accept the Stockade CA and its leaves when trusted the way a
 * sandbox is set up: Python's ssl through SSL_CERT_FILE, with the strict X.509 checks that
 * Python 3.13 turns on by default; curl through CURL_CA_BUNDLE, offering h2 and getting
 * http/1.1; Node through NODE_EXTRA_CA_CERTS. Skipped where the client is not installed.
 */
class InterceptingTlsClientsTest {
    private static final Path PYTHON = Path.of("/usr/bin/python3");
    private static final Path CURL = Path.of("/usr/bin/curl");
    private static final Path NODE = Path.of("/usr/bin/node");

    private static final String PYTHON_CLIENT = """
            import socket, ssl, sys
            host, port = sys.argv[1], int(sys.argv[2])
            ctx = ssl.create_default_context()  # trusts SSL_CERT_FILE
            ctx.verify_flags |= ssl.VERIFY_X509_STRICT | ssl.VERIFY_X509_PARTIAL_CHAIN  # Python 3.13's defaults
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname=host) as s:
                    alpn = s.selected_alpn_protocol()
                    s.sendall(b"GET / HTTP/1.1\\r\\nHost: " + host.encode() + b"\\r\\n\\r\\n")
                    data = b""
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        data += chunk
            print(alpn, data.decode().split("\\r\\n\\r\\n", 1)[1])
            """;

    private static final String NODE_CLIENT = """
            const https = require('https');
            const lookup = (h, o, cb) => o && o.all ? cb(null, [{address: '127.0.0.1', family: 4}]) : cb(null, '127.0.0.1', 4);
            https.get({host: 'upstream.test', port: +process.env.PORT, path: '/', lookup, timeout: 10000}, res => {
              let d = '';
              res.on('data', c => d += c);
              res.on('end', () => console.log(res.statusCode, d));
            }).on('error', e => { console.log('ERROR', e.message); process.exit(1); });
            """;

    @TempDir
    Path tmp;

    private InterceptingTls tls;
    private Path caFile;
    private ServerSocket listener;
    private ExecutorService proxy;

    @BeforeEach
    void setUp() throws Exception {
        StockadeCa ca = StockadeCa.loadOrCreate(tmp.resolve("ca"));
        tls = new InterceptingTls(ca, null);
        caFile = Files.writeString(tmp.resolve("stockade-ca.pem"), tls.caCertificatePem());
        listener = new ServerSocket(0, 8, LOOPBACK);
        listener.setSoTimeout(20_000);
        proxy = Executors.newVirtualThreadPerTaskExecutor();
    }

    @AfterEach
    void tearDown() throws Exception {
        listener.close();
        proxy.shutdownNow();
        assertTrue(proxy.awaitTermination(15, TimeUnit.SECONDS));
    }

    @Test
    void pythonWithStrictChecksAcceptsANameLeaf() throws Exception {
        assumeTrue(Files.isExecutable(PYTHON), "needs " + PYTHON);
        String out = run(List.of(PYTHON.toString(), "-c", PYTHON_CLIENT, "upstream.test", port()),
                Map.of("SSL_CERT_FILE", caFile.toString()), "upstream.test");
        assertEquals("http/1.1 intercepted upstream.test", out.strip());
    }

    @Test
    void pythonWithStrictChecksAcceptsAnIpLeaf() throws Exception {
        assumeTrue(Files.isExecutable(PYTHON), "needs " + PYTHON);
        String out = run(List.of(PYTHON.toString(), "-c", PYTHON_CLIENT, "127.0.0.1", port()),
                Map.of("SSL_CERT_FILE", caFile.toString()), "127.0.0.1");
        assertEquals("http/1.1 intercepted 127.0.0.1", out.strip());
    }

    @Test
    void curlOfferingHttp2GetsHttp11() throws Exception {
        assumeTrue(Files.isExecutable(CURL), "needs " + CURL);
        String port = port();
        String out = run(List.of(CURL.toString(), "-sS", "--noproxy", "*", "--max-time", "20", "--resolve",
                        "upstream.test:" + port + ":127.0.0.1", "https://upstream.test:" + port + "/"),
                Map.of("CURL_CA_BUNDLE", caFile.toString()), "upstream.test");
        assertEquals("intercepted upstream.test", out.strip());
    }

    @Test
    void nodeTrustsTheCaThroughNodeExtraCaCerts() throws Exception {
        assumeTrue(Files.isExecutable(NODE), "needs " + NODE);
        String out = run(List.of(NODE.toString(), "-e", NODE_CLIENT),
                Map.of("NODE_EXTRA_CA_CERTS", caFile.toString(), "PORT", port()), "upstream.test");
        assertEquals("200 intercepted upstream.test", out.strip());
    }

    private String port() {
        return Integer.toString(listener.getLocalPort());
    }

    /**
     * Runs {@code command} while one connection is intercepted for {@code host} and answered with
     * {@code intercepted <host>}; returns the command's output after checking it succeeded.
     */
    private String run(List<String> command, Map<String, String> env, String host) throws Exception {
        Future<String> served = proxy.submit(() -> {
            try (Socket accepted = listener.accept()) {
                accepted.setSoTimeout(10_000);
                byte[] prefix = accepted.getInputStream().readNBytes(5);
                accepted.setSoTimeout(0);
                try (Socket plain = tls.serverSide(accepted, prefix, host)) {
                    plain.setSoTimeout(10_000);
                    String head = readHead(plain.getInputStream());
                    String body = "intercepted " + host;
                    write(plain.getOutputStream(), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                            + body.length() + "\r\nConnection: close\r\n\r\n" + body);
                    return ((SSLSocket) plain).getApplicationProtocol() + " " + head.lines().findFirst().orElse("");
                }
            }
        });
        Path output = tmp.resolve("client-output.txt");
        ProcessBuilder pb = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(output.toFile());
        pb.environment().keySet().removeIf(k -> k.toLowerCase().endsWith("_proxy"));
        pb.environment().putAll(env);
        Process p = pb.start();
        try {
            if (!p.waitFor(30, TimeUnit.SECONDS)) throw new AssertionError("client did not finish: " + command);
        } finally {
            p.destroyForcibly();
            p.waitFor(10, TimeUnit.SECONDS);
        }
        String out = Files.readString(output, StandardCharsets.UTF_8);
        assertEquals(0, p.exitValue(), "client output: " + out);
        String seen = served.get(10, TimeUnit.SECONDS);
        assertTrue(seen.startsWith("http/1.1 GET / HTTP/1.1") || seen.startsWith(" GET / HTTP/1.1"), seen);
        return out;
    }
}
