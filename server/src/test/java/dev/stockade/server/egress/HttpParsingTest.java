package dev.stockade.server.egress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Bounded, strict head parsing; exact body framing; secret substitution; authorities. */
class HttpParsingTest {
    private static HttpHead head(String text) throws IOException {
        return HttpHead.read(new ByteArrayInputStream(text.getBytes(StandardCharsets.ISO_8859_1)));
    }

    private static int status(String text) {
        return assertThrows(HttpHead.Malformed.class, () -> head(text)).status();
    }

    @Test
    void parsesAHead() throws IOException {
        HttpHead h = head("GET http://a.test/x?q=1 HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive, X-Drop\r\n"
                + "X-Drop: 1\r\nProxy-Authorization: b\r\nX-Keep:  v  \r\n\r\n");
        assertEquals("GET http://a.test/x?q=1 HTTP/1.1", h.startLine());
        assertEquals(List.of(new HttpHead.Field("Host", "a.test"), new HttpHead.Field("X-Keep", "v")), h.endToEnd());
        assertNull(head(""));
        assertEquals("GET / HTTP/1.1", head("\r\nGET / HTTP/1.1\n\n").startLine());
    }

    @Test
    void refusesOversizedAndMalformedHeads() {
        assertEquals(414, status("GET /" + "a".repeat(9000) + " HTTP/1.1\r\n\r\n"));
        assertEquals(431, status("GET / HTTP/1.1\r\n" + "X: y\r\n".repeat(101) + "\r\n"));
        assertEquals(431, status("GET / HTTP/1.1\r\n" + ("X: " + "y".repeat(8000) + "\r\n").repeat(9) + "\r\n"));
        assertEquals(400, status("GET / HTTP/1.1\r\nX : y\r\n\r\n"));
        assertEquals(400, status("GET / HTTP/1.1\r\nX: y\r\n z\r\n\r\n"));
        assertEquals(400, status("GET / HTTP/1.1\r\nX: a\rb\r\n\r\n"));
        assertEquals(400, status("GET / HTTP/1.1\r\nX: a\u0000b\r\n\r\n"));
        assertThrows(IOException.class, () -> head("GET / HTTP/1.1\r\nX: y\r\n"));
        for (String line : List.of("GET /", "GET  / HTTP/1.1", "G@T / HTTP/1.1", "GET / HTTP/2", "GET /\u00e9 HTTP/1.1")) {
            assertThrows(HttpHead.Malformed.class, () -> HttpHead.RequestLine.parse(line), line);
        }
    }

    @Test
    void framingIsUnambiguous() throws IOException {
        assertInstanceOf(HttpBody.None.class, HttpBody.ofRequest(head("GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1"));
        assertEquals(new HttpBody.Fixed(5), HttpBody.ofRequest(head("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\n"),
                "HTTP/1.1"));
        assertInstanceOf(HttpBody.Chunked.class, HttpBody.ofRequest(
                head("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"), "HTTP/1.1"));
        for (String bad : List.of("Content-Length: 5\r\nTransfer-Encoding: chunked", "Content-Length: 5\r\nContent-Length: 6",
                "Content-Length: -1", "Content-Length: 1e3", "Transfer-Encoding: gzip, chunked",
                "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked")) {
            assertThrows(HttpHead.Malformed.class,
                    () -> HttpBody.ofRequest(head("POST / HTTP/1.1\r\n" + bad + "\r\n\r\n"), "HTTP/1.1"), bad);
        }
        assertInstanceOf(HttpBody.UntilClose.class, HttpBody.ofResponse(head("HTTP/1.1 200 OK\r\n\r\n"), "GET", 200));
        assertInstanceOf(HttpBody.None.class, HttpBody.ofResponse(head("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"),
                "HEAD", 200));
    }

    @Test
    void chunkedBodiesAreCopiedExactlyAndNoFurther() throws IOException {
        String wire = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\nGET /next HTTP/1.1\r\n\r\n";
        ByteArrayInputStream in = new ByteArrayInputStream(wire.getBytes(StandardCharsets.ISO_8859_1));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        new HttpBody.Chunked().copy(in, out);
        assertEquals("5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n", out.toString(StandardCharsets.ISO_8859_1));
        assertEquals("GET /next HTTP/1.1\r\n\r\n", new String(in.readAllBytes(), StandardCharsets.ISO_8859_1));
        for (String bad : List.of("zz\r\n", "5\r\nhelloX\r\n0\r\n\r\n", "fffffffffffffffff\r\n", "5\r\nhel")) {
            assertThrows(IOException.class, () -> new HttpBody.Chunked().copy(
                    new ByteArrayInputStream(bad.getBytes(StandardCharsets.ISO_8859_1)), new ByteArrayOutputStream()), bad);
        }
    }

    @Test
    void authoritiesAreNormalized() throws IOException {
        assertEquals(new Authority("example.com", null, 80), Authority.parse("Example.COM.", 80));
        Authority v6 = Authority.parse("[::1]:8080", 0);
        assertEquals("::1", v6.host());
        assertEquals(8080, v6.port());
        assertEquals("10.0.0.1", Authority.parse("10.0.0.1:443", 0).host());
        for (String bad : List.of("example.com", "user@example.com:443", "::1:443", "example.com:0", "example.com:99999",
                "2130706433:80", "ex ample.com:80", "[example.com]:80")) {
            assertThrows(HttpHead.Malformed.class, () -> Authority.parse(bad, 0), bad);
        }
    }

    @Test
    void placeholdersAreSubstitutedForTheirHostsOnly() throws Exception {
        String ph = "stockade-secret-" + "0123456789abcdef".repeat(2);
        SecretBinding token = new SecretBinding("GITHUB_TOKEN", ph, "ghp_realvalue", List.of("api.github.com", "*.githubusercontent.com"));
        assertFalse(token.toString().contains("ghp_realvalue"));
        Secrets secrets = new Secrets(List.of(token));
        assertEquals("Bearer ghp_realvalue", secrets.apply("Bearer " + ph, "https", "api.github.com", 443));
        assertEquals("x ghp_realvalue y ghp_realvalue", secrets.apply("x " + ph + " y " + ph, "https",
                "raw.githubusercontent.com", 443));
        assertEquals("no placeholder", secrets.apply("no placeholder", "http", "evil.test", 80));
        Secrets.Refused refused = assertThrows(Secrets.Refused.class, () -> secrets.apply("Bearer " + ph, "https", "evil.test", 443));
        assertEquals("secret GITHUB_TOKEN", refused.rule());
        assertFalse(refused.getMessage().contains("ghp_realvalue"));
        assertThrows(Secrets.Refused.class, () -> secrets.apply("stockade-secret-unknown", "https", "api.github.com", 443));
        assertThrows(Secrets.Refused.class, () -> secrets.apply(ph.toUpperCase(), "https", "api.github.com", 443));
        assertTrue(secrets.boundTo("api.github.com"));
        assertFalse(secrets.boundTo("github.com"));
    }

    @Test
    void secretBindingsAreValidated() {
        String ph = "stockade-secret-" + "a".repeat(32);
        assertThrows(IllegalArgumentException.class, () -> new SecretBinding("X", "stockade-secret-abc", "v", List.of("a.test")));
        assertThrows(IllegalArgumentException.class, () -> new SecretBinding("X", ph, "v\r\nX-Evil: 1", List.of("a.test")));
        assertThrows(IllegalArgumentException.class, () -> new SecretBinding("X", ph, "v", List.of()));
        for (String bad : List.of("ftp://a.test", "10.0.0.1", "https://[::1]:443", "https://a.test/path", "user@a.test",
                "http://a.test:0", "*")) {
            assertThrows(IllegalArgumentException.class, () -> new SecretBinding("X", ph, "v", List.of(bad)), bad);
        }
        assertEquals(List.of("a.test", "a.test", "https://a.test:8443", "http://a.test:80", "http://*.a.test:8080"),
                new SecretBinding("X", ph, "v", List.of("a.test:443", "HTTPS://A.test/", "a.test:8443", "http://a.test",
                        "http://*.a.test:8080")).hosts(), "canonical: a bare host is https on 443");
        assertThrows(IllegalArgumentException.class, () -> new SecretBinding(" ", ph, "v", List.of("a.test")));
        SecretBinding a = new SecretBinding("A", ph, "v", List.of("a.test"));
        assertThrows(IllegalArgumentException.class, () -> new Secrets(List.of(a, a)));
    }

    @Test
    void aSecretIsBoundToItsSchemeAndPortNotOnlyItsHost() throws Exception {
        String ph = "stockade-secret-" + "c".repeat(32);
        Secrets secrets = new Secrets(List.of(new SecretBinding("KEY", ph, "k3y", List.of("api.test", "http://plain.test:8080"))));
        assertEquals("k3y", secrets.apply(ph, "https", "api.test", 443));
        for (Object[] elsewhere : new Object[][] {{"http", "api.test", 443}, {"http", "api.test", 80}, {"https", "api.test", 8443},
                {"http", "plain.test", 80}, {"https", "plain.test", 8080}}) {
            Secrets.Refused r = assertThrows(Secrets.Refused.class,
                    () -> secrets.apply(ph, (String) elsewhere[0], (String) elsewhere[1], (int) elsewhere[2]));
            assertTrue(r.getMessage().contains("not to " + elsewhere[0] + "://" + elsewhere[1] + ":" + elsewhere[2]), r.getMessage());
        }
        assertEquals("k3y", secrets.apply(ph, "http", "plain.test", 8080));
        assertTrue(secrets.boundTo("plain.test"), "TLS to a bound name is intercepted on any port, so a placeholder there is refused");
    }

    @Test
    void rewriteSetsHeaderRulesThenSubstitutes() throws Exception {
        String ph = "stockade-secret-" + "b".repeat(32);
        Secrets secrets = new Secrets(List.of(new SecretBinding("KEY", ph, "k3y", List.of("api.test"))));
        NetworkPolicy policy = NetworkPolicy.of(NetworkPolicy.Mode.ALLOWLIST, List.of("api.test"), List.of(),
                Map.of("api.test", Map.of("X-Api-Key", ph, "X-Team", "blue")));
        HttpExchange.Request r = HttpExchange.rewrite(secrets, policy, "https", "api.test", 443, "GET", "/v1?key=" + ph,
                List.of(new HttpHead.Field("x-team", "red"), new HttpHead.Field("Accept", "*/*")), new HttpBody.None());
        assertEquals("/v1?key=k3y", r.target());
        assertTrue(r.fields().contains(new HttpHead.Field("X-Api-Key", "k3y")));
        assertTrue(r.fields().contains(new HttpHead.Field("X-Team", "blue")));
        assertFalse(r.fields().contains(new HttpHead.Field("x-team", "red")));
    }

    /** Issue 15, finding 7: placeholders are substituted in the target and header values only; elsewhere in the head or trailer, refused. */
    @Test
    void aPlaceholderInAHeaderNameOrATrailerIsRefusedNotPassedOn() {
        String ph = "stockade-secret-" + "d".repeat(32);
        Secrets secrets = new Secrets(List.of(new SecretBinding("KEY", ph, "k3y", List.of("api.test"))));
        NetworkPolicy policy = NetworkPolicy.of(NetworkPolicy.Mode.ALLOWLIST, List.of("api.test"), List.of(), Map.of());
        Secrets.Refused r = assertThrows(Secrets.Refused.class, () -> HttpExchange.rewrite(secrets, policy, "https", "api.test", 443,
                "GET", "/", List.of(new HttpHead.Field("X-" + ph.toUpperCase(java.util.Locale.ROOT), "v")), new HttpBody.None()));
        assertTrue(r.getMessage().contains("header name"), r.getMessage());
        var out = new java.io.ByteArrayOutputStream();
        IOException e = assertThrows(IOException.class, () -> new HttpBody.Chunked().copy(new java.io.ByteArrayInputStream(
                ("1\r\nx\r\n0\r\nX-Trailer: " + ph + "\r\n\r\n").getBytes(java.nio.charset.StandardCharsets.US_ASCII)), out));
        assertTrue(e.getMessage().contains("trailer"), e.getMessage());
        assertFalse(out.toString(java.nio.charset.StandardCharsets.ISO_8859_1).contains(ph), "the trailer is not passed on");
    }
}
