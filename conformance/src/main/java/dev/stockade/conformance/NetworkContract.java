package dev.stockade.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.sun.net.httpserver.HttpServer;
import dev.stockade.runtime.Capabilities;
import dev.stockade.server.egress.EgressConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Egress policy against a real server, real sandboxes of the runtime under test and real sites on the host's loopback
 * (issue 4): host HTTP servers on 127.0.0.1 and ::1 stand for an allowed and a forbidden site, reached
 * by names the operator maps to them ({@code allowed.test}, {@code forbidden.test}). Every probe runs
 * inside the sandbox as the user and reports what it saw (errno, status, body), so a broken probe
 * cannot pass as a wall.
 */
public abstract class NetworkContract extends RuntimeContract {
    Site allowed;
    Site forbidden;
    Site allowed6;

    /** A host HTTP server that records each request's first line and Authorization header. */
    public record Site(HttpServer http, String name, List<String> seen) {
        public int port() {
            return http.getAddress().getPort();
        }

        public static Site start(String bind, String name) {
            try {
                HttpServer h = HttpServer.create(new InetSocketAddress(InetAddress.getByName(bind), 0), 16);
                List<String> seen = Collections.synchronizedList(new ArrayList<>());
                h.createContext("/", ex -> {
                    String auth = ex.getRequestHeaders().getFirst("Authorization");
                    seen.add(ex.getRequestMethod() + " " + ex.getRequestURI() + " auth=" + auth);
                    byte[] body = ("hello from " + name + " auth=" + auth).getBytes(StandardCharsets.UTF_8);
                    ex.sendResponseHeaders(200, body.length);
                    ex.getResponseBody().write(body);
                    ex.close();
                });
                h.start();
                return new Site(h, name, seen);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    @BeforeAll
    void up() {
        allowed = Site.start("127.0.0.1", "allowed");
        forbidden = Site.start("127.0.0.1", "forbidden");
        allowed6 = Site.start("::1", "allowed6");
        startServer(cfg -> cfg.withEgress(egressConfig()));
    }

    /**
     * The operator's side: the test sites' names, and loopback as a private range sandboxes may reach
     * (an operator lists internal services the same way). Everything else is the default.
     */
    public static EgressConfig egressConfig() {
        EgressConfig d = EgressConfig.defaults();
        return new EgressConfig(false, List.of("127.0.0.1/32", "::1/128"),
                Map.of("allowed.test", List.of("127.0.0.1"), "forbidden.test", List.of("127.0.0.1"),
                        "allowed6.test", List.of("::1"), "metadata.test", List.of("169.254.169.254"),
                        "intranet.test", List.of("10.1.2.3")),
                d.connectTimeout(), d.idleTimeout(), d.maxConnectionsPerSandbox(), d.logCapacity(), null);
    }

    @AfterAll
    void down() {
        stopServer();
        for (Site s : new Site[] {allowed, forbidden, allowed6}) if (s != null) s.http.stop(0);
    }

    RawClient.Box create(Map<String, Object> network) {
        return c.create(network == null ? Map.of("templateID", "base", "timeout", 120)
                : Map.of("templateID", "base", "timeout", 120, "network", network));
    }

    RawClient.Run py(RawClient.Box b, String code) {
        return c.start(b, Map.of("process", Map.of("cmd", "/usr/bin/python3", "args", List.of("-c", code))), "user");
    }

    /**
     * GET url through the proxy named by the sandbox's HTTP_PROXY (set for every process); prints
     * "STATUS BODY". The proxy is used even for loopback addresses, which NO_PROXY otherwise keeps
     * inside the sandbox (its own services), because the test sites are the host's.
     */
    String fetch(RawClient.Box b, String url) {
        RawClient.Run r = py(b, """
                import os, urllib.request, urllib.error
                proxy = os.environ["HTTP_PROXY"]
                os.environ.pop("NO_PROXY", None); os.environ.pop("no_proxy", None)  # urllib would bypass it for loopback
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy, "https": proxy}))
                try:
                    with opener.open(%s, timeout=15) as r:
                        print(r.status, r.read().decode())
                except urllib.error.HTTPError as e:
                    print(e.code, e.read().decode().strip())
                except OSError as e:
                    print("ERR", e)
                """.formatted(pyString(url)));
        assertEquals(0, r.exitCode(), r.stderr());
        return r.stdout().strip();
    }

    String pyString(String s) {
        return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'";
    }

    JsonNode log(RawClient.Box b) {
        RawClient.Response r = c.call("GET", "/sandboxes/" + b.id() + "/network/log?limit=1000", null);
        assertEquals(200, r.status(), r.body());
        return r.json();
    }

    @Test
    void byDefaultNothingLeavesOnAnyProtocolAndEveryAttemptFailsFast() {
        RawClient.Box b = create(null);
        try {
            int seenBefore = allowed.seen().size();
            long t0 = System.nanoTime();
            RawClient.Run r = py(b, """
                    import errno, socket, time
                    def attempt(name, fn):
                        t = time.monotonic()
                        try:
                            fn()
                            print(name, "OK")
                        except OSError as e:
                            print(name, errno.errorcode.get(e.errno, e.errno) if e.errno else type(e).__name__, "%%.2f" %% (time.monotonic() - t))
                    def tcp(host, port, fam=socket.AF_INET):
                        s = socket.socket(fam, socket.SOCK_STREAM); s.settimeout(5)
                        try: s.connect((host, port))
                        finally: s.close()
                    def udp():
                        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                        try: s.sendto(b"x", ("1.1.1.1", 53))
                        finally: s.close()
                    def raw():
                        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP).close()
                    def dns():
                        socket.getaddrinfo("example.com", 443)
                    attempt("tcp-public", lambda: tcp("1.1.1.1", 443))
                    attempt("tcp-metadata", lambda: tcp("169.254.169.254", 80))
                    attempt("tcp-host-loopback-site", lambda: tcp("127.0.0.1", %d))
                    attempt("tcp6-public", lambda: tcp("2606:4700:4700::1111", 443, socket.AF_INET6))
                    attempt("udp", udp)
                    attempt("raw", raw)
                    attempt("dns", dns)
                    def egress_socket():  # the proxy's socket is the sandbox root's (0600), the relay's only
                        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                        try: s.connect("/run/stockade-egress/proxy.sock")
                        finally: s.close()
                    attempt("egress-socket", egress_socket)
                    """.formatted(allowed.port()));
            long ms = (System.nanoTime() - t0) / 1_000_000;
            String out = r.stdout();
            // No route out: ENETUNREACH (Linux) or EHOSTUNREACH (gVisor's netstack), at once.
            Set<String> noRoute = answers("ENETUNREACH", "EHOSTUNREACH");
            assertTrue(noRoute.stream().anyMatch(e -> out.contains("tcp-public " + e)), out);
            assertTrue(noRoute.stream().anyMatch(e -> out.contains("tcp-metadata " + e)), out);
            // The sandbox's own loopback: the host's site on that port is not there.
            assertTrue(out.contains("tcp-host-loopback-site ECONNREFUSED"), out);
            assertTrue(noRoute.stream().anyMatch(e -> out.contains("tcp6-public " + e)), out);
            assertTrue(noRoute.stream().anyMatch(e -> out.contains("udp " + e)), out);
            assertTrue(out.contains("raw EPERM"), out);
            assertTrue(out.lines().anyMatch(l -> l.startsWith("dns ") && !l.contains("OK")), out);
            assertTrue(out.contains("egress-socket EACCES"), out);
            assertTrue(ms < 5000, "failures must be fast, took " + ms + " ms: " + out);

            // Through the proxy (HTTP_PROXY is set for every process): refused with the reason.
            String viaProxy = fetch(b, "http://allowed.test:" + allowed.port() + "/");
            assertTrue(viaProxy.startsWith("403 "), viaProxy);
            assertTrue(viaProxy.contains("none"), "the refusal names the policy: " + viaProxy);
            assertEquals(seenBefore, allowed.seen().size(), "nothing reached the site: " + allowed.seen());
            JsonNode d = log(b).get("decisions");
            assertTrue(d.size() >= 1, d.toString());
            JsonNode last = d.get(d.size() - 1);
            assertFalse(last.get("allowed").asBoolean());
            assertEquals("allowed.test", last.get("host").asText());
        } finally {
            c.kill(b);
        }
    }

    @Test
    void anAllowListAdmitsExactlyWhatItListsByNameAndByIp() {
        requires(Capabilities.NETWORK_ALLOWLIST, "it sends the sandbox's traffic through the host's egress proxy and its allow-list");
        String a = "allowed.test:" + allowed.port();
        int forbiddenBefore = forbidden.seen().size();
        RawClient.Box b = create(Map.of("allowOut", List.of(a, "[::1]:" + allowed6.port())));
        try {
            String ok = fetch(b, "http://" + a + "/hello");
            assertEquals("200 hello from allowed auth=null", ok);
            assertTrue(allowed.seen().stream().anyMatch(s -> s.startsWith("GET /hello")), allowed.seen().toString());
            // A name not listed, though it resolves to the same address.
            String other = fetch(b, "http://forbidden.test:" + forbidden.port() + "/");
            assertTrue(other.startsWith("403 "), other);
            assertEquals(forbiddenBefore, forbidden.seen().size());
            // The listed name's address, asked for by IP, is not on the list.
            String byIp = fetch(b, "http://127.0.0.1:" + allowed.port() + "/");
            assertTrue(byIp.startsWith("403 "), byIp);
            // The same name on a port not listed.
            assertTrue(fetch(b, "http://allowed.test:" + forbidden.port() + "/").startsWith("403 "));
            // IPv6 by address.
            assertEquals("200 hello from allowed6 auth=null", fetch(b, "http://[::1]:" + allowed6.port() + "/"));
            // Code that ignores the proxy variables reaches nothing.
            RawClient.Run direct = py(b, """
                    import urllib.request
                    o = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                    try:
                        o.open("http://127.0.0.1:%d/", timeout=5); print("OK")
                    except OSError as e:
                        print("ERR", e)
                    """.formatted(allowed.port()));
            assertTrue(direct.stdout().contains("ERR") && direct.stdout().contains("refused"), direct.stdout());

            // Now by IP only, live in the same sandbox: the address works (and, as in E2B's address
            // firewall, any name the host resolves to it); the IPv6 site, no longer listed, does not.
            RawClient.Response put = c.call("PUT", "/sandboxes/" + b.id() + "/network",
                    Map.of("allowOut", List.of("127.0.0.1:" + allowed.port())));
            assertEquals(204, put.status(), put.body());
            assertEquals("200 hello from allowed auth=null", fetch(b, "http://127.0.0.1:" + allowed.port() + "/"));
            assertTrue(fetch(b, "http://[::1]:" + allowed6.port() + "/").startsWith("403 "));
            assertTrue(fetch(b, "http://allowed6.test:" + allowed6.port() + "/").startsWith("403 "));
            JsonNode shown = c.call("GET", "/sandboxes/" + b.id(), null).json();
            assertEquals("allowlist", shown.at("/network/mode").asText());
            assertEquals("127.0.0.1:" + allowed.port(), shown.at("/network/allowOut/0").asText());
        } finally {
            c.kill(b);
        }
    }

    @Test
    void metadataAndPrivateAddressesStayBlockedWhateverTheNameSays() {
        requires(Capabilities.NETWORK_ALLOWLIST, "it sends the sandbox's traffic through the host's egress proxy and its allow-list");
        RawClient.Box b = create(Map.of("allowOut", List.of("*.test")));
        try {
            String meta = fetch(b, "http://metadata.test/latest/meta-data/");
            assertTrue(meta.startsWith("403 ") && meta.contains("169.254"), meta);
            String intranet = fetch(b, "http://intranet.test/");
            assertTrue(intranet.startsWith("403 ") && intranet.contains("10."), intranet);
            String metaIp = fetch(b, "http://169.254.169.254/latest/meta-data/");
            assertTrue(metaIp.startsWith("403 "), metaIp);
            JsonNode d = log(b).get("decisions");
            List<String> rules = new ArrayList<>();
            d.forEach(x -> rules.add(x.get("host").asText() + " " + x.get("allowed").asBoolean() + " " + x.get("rule").asText()));
            assertTrue(rules.stream().anyMatch(s -> s.startsWith("metadata.test false") && s.contains("169.254")), rules.toString());
        } finally {
            c.kill(b);
        }
    }

    @Test
    void theDecisionLogNamesTheProcessAndTheRule() {
        requires(Capabilities.NETWORK_ALLOWLIST, "it sends the sandbox's traffic through the host's egress proxy and its allow-list");
        RawClient.Box b = create(Map.of("allowOut", List.of("allowed.test:" + allowed.port())));
        try {
            RawClient.Run r = py(b, """
                    import os, urllib.request, urllib.error
                    print(os.getpid())
                    for u in ["http://allowed.test:%d/a", "http://forbidden.test:%d/b"]:
                        try:
                            urllib.request.urlopen(u, timeout=10).read()  # HTTP_PROXY from the environment
                        except urllib.error.HTTPError as e:
                            pass
                    """.formatted(allowed.port(), forbidden.port()));
            int pid = Integer.parseInt(r.stdout().strip());
            JsonNode log = log(b);
            JsonNode d = log.get("decisions");
            JsonNode ok = null;
            JsonNode no = null;
            for (JsonNode x : d) {
                if (x.get("host").asText().equals("allowed.test")) ok = x;
                if (x.get("host").asText().equals("forbidden.test")) no = x;
            }
            assertTrue(ok != null && no != null, d.toString());
            assertTrue(ok.get("allowed").asBoolean());
            assertEquals(allowed.port(), ok.get("port").asInt());
            assertEquals("127.0.0.1", ok.get("address").asText());
            assertFalse(no.get("allowed").asBoolean());
            assertFalse(no.get("rule").asText().isEmpty());
            assertFalse(no.get("reason").asText().isEmpty());
            assertEquals(pid, ok.get("pid").asInt(), "the process that connected");
            assertEquals(1000, ok.get("uid").asInt());
            assertTrue(log.get("allowed").asLong() >= 1 && log.get("refused").asLong() >= 1, log.toString());
            // No query strings or paths of the request in the log.
            assertFalse(d.toString().contains("/a") || d.toString().contains("/b"), d.toString());
            String metrics = c.call("GET", "/metrics", null).body();
            assertTrue(metrics.contains("stockade_egress_decisions_total{decision=\"refused\"}"), metrics);
        } finally {
            c.kill(b);
        }
    }

    @Test
    void aPolicyChangeTakesEffectInTheRunningSandbox() {
        requires(Capabilities.NETWORK_ALLOWLIST, "it sends the sandbox's traffic through the host's egress proxy and its allow-list");
        RawClient.Box b = create(null);
        try {
            String url = "http://allowed.test:" + allowed.port() + "/";
            assertTrue(fetch(b, url).startsWith("403 "));
            assertEquals(204, c.call("PUT", "/sandboxes/" + b.id() + "/network",
                    Map.of("allowOut", List.of("allowed.test:" + allowed.port()))).status());
            assertTrue(fetch(b, url).startsWith("200 "));
            assertEquals(204, c.call("PUT", "/sandboxes/" + b.id() + "/network", Map.of()).status());
            assertTrue(fetch(b, url).startsWith("403 "), "an empty update clears the rules (E2B): no network");
            // Bad input: a clear 400, the policy unchanged.
            RawClient.Response bad = c.call("PUT", "/sandboxes/" + b.id() + "/network", Map.of("allowOut", List.of("*")));
            assertEquals(400, bad.status(), bad.body());
            RawClient.Response open = c.call("PUT", "/sandboxes/" + b.id() + "/network", Map.of("allow_internet_access", true));
            assertEquals(400, open.status(), open.body());
            assertTrue(open.body().contains("allowOpen"), open.body());
            assertEquals("none", c.call("GET", "/sandboxes/" + b.id() + "/network", null).json().get("mode").asText());
        } finally {
            c.kill(b);
        }
    }

    @Test
    void badNetworkRequestsAreRefusedWithReasons() {
        for (Object network : List.<Object>of(
                Map.of("allowOut", "example.com"),
                Map.of("allowOut", List.of("*")),
                Map.of("allowOut", List.of("exa mple.com")),
                Map.of("denyOut", List.of("example.com")),
                Map.of("mode", "sideways"),
                Map.of("egressProxy", Map.of("address", "proxy:1080")),
                Map.of("allowOut", List.of("10.0.0.0/99")),
                // "All traffic" as an allow-list entry is open access in disguise: refused without allowOpen.
                Map.of("allowOut", List.of("0.0.0.0/0")),
                Map.of("allowOut", List.of("[::/0]:443")))) {
            RawClient.Response r = c.call("POST", "/sandboxes", Map.of("templateID", "base", "network", network));
            assertEquals(400, r.status(), network + " → " + r.body());
            assertFalse(r.json().path("message").asText().isEmpty());
        }
        // Open access asked by name, without the operator's permission. (E2B's implied allow_internet_access
        // is downgraded instead: OpenNetworkDowngradeIT.)
        RawClient.Response r = c.call("POST", "/sandboxes", Map.of("templateID", "base", "network", Map.of("mode", "open")));
        assertEquals(400, r.status(), r.body());
        assertTrue(r.body().contains("allowOpen"), r.body());
    }

    @Test
    void connectTunnelsCarryOnlyTls() {
        requires(Capabilities.NETWORK_ALLOWLIST, "it sends the sandbox's traffic through the host's egress proxy and its allow-list");
        // A TLS site is the most common case (HTTPS); plain TCP through CONNECT is refused.
        RawClient.Box b = create(Map.of("allowOut", List.of("allowed.test:" + allowed.port())));
        int before = allowed.seen().size();
        try {
            RawClient.Run r = py(b, """
                    import socket
                    s = socket.create_connection(("127.0.0.1", 49990), timeout=10)
                    s.sendall(b"CONNECT allowed.test:%d HTTP/1.1\\r\\nHost: allowed.test:%d\\r\\n\\r\\n")
                    print(s.recv(200).split(b"\\r\\n")[0].decode())
                    s.sendall(b"GET / HTTP/1.1\\r\\nHost: allowed.test\\r\\n\\r\\n")
                    print(repr(s.recv(200)))
                    """.formatted(allowed.port(), allowed.port()));
            String out = r.stdout();
            assertTrue(out.startsWith("HTTP/1.1 200"), out);
            assertFalse(out.contains("hello from allowed"), "plain text through a tunnel must not reach the site: " + out);
            assertEquals(before, allowed.seen().size(), "the site saw nothing: " + allowed.seen());
        } finally {
            c.kill(b);
        }
    }
}
