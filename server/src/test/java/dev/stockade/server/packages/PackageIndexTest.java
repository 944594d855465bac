package dev.stockade.server.packages;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.server.egress.Decision;
import dev.stockade.server.egress.EgressConfig;
import dev.stockade.server.egress.InternalRequest;
import dev.stockade.server.egress.InternalResponse;
import dev.stockade.server.egress.ServerFetchGate;
import java.io.IOException;
import java.io.InputStream;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PackageIndexTest {
    static final Upstream.Timeouts FAST = new Upstream.Timeouts(Duration.ofSeconds(2), Duration.ofSeconds(5),
            Duration.ofSeconds(5), Duration.ofSeconds(30), Duration.ofMinutes(5));
    /** The egress gate with the default settings: loopback, link-local and private addresses refused. */
    static final UpstreamHttp.Destinations GATE = ServerFetchGate.from(EgressConfig.defaults())::admit;
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String JSON_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;"
            + " q=0.1, text/html; q=0.01";

    @TempDir
    Path dir;
    private FakeUpstream upstream;
    private PackageIndex index;
    private final List<Decision> decisions = new CopyOnWriteArrayList<>();
    private Path wheelhouse;
    private Path cache;
    private byte[] local;
    private byte[] up1;
    private byte[] signed11;

    @BeforeEach
    void setUp() throws Exception {
        wheelhouse = Files.createDirectory(dir.resolve("wheelhouse"));
        cache = dir.resolve("cache");
        local = Files.readAllBytes(TestWheels.write(wheelhouse, "local-pkg", "1.0", ">=3.8"));
        upstream = new FakeUpstream();
        up1 = TestWheels.bytes("uppkg", "1.0", null);
        upstream.add("uppkg", TestWheels.filename("uppkg", "1.0"), up1);
        upstream.add("uppkg", TestWheels.filename("uppkg", "2.0"), TestWheels.bytes("uppkg", "2.0", null));
        upstream.add("signed", TestWheels.filename("signed", "1.0"), TestWheels.bytes("signed", "1.0", null));
        signed11 = TestWheels.bytes("signed", "1.1", null);
        upstream.add("signed", TestWheels.filename("signed", "1.1"), signed11);
        // same file name as the wheelhouse's, other bytes: the wheelhouse must win
        upstream.add("local-pkg", TestWheels.filename("local-pkg", "1.0"), TestWheels.bytes("local-pkg", "1.0", "<3"));
        upstream.add("local-pkg", TestWheels.filename("local-pkg", "1.1"), TestWheels.bytes("local-pkg", "1.1", null));
        Path allow = dir.resolve("allow.txt");
        Files.writeString(allow, "UpPkg==1.0\nsigned --hash=sha256:" + TestWheels.sha256(signed11) + "\nlocal-pkg\n");
        index = new PackageIndex(new PackageConfig(wheelhouse, upstream.simpleUrl(), allow, cache), FAST, GATE);
    }

    @AfterEach
    void tearDown() {
        index.close();
        upstream.close();
    }

    record Got(int status, Map<String, String> headers, long length, byte[] body) {
        String text() {
            return new String(body, StandardCharsets.UTF_8);
        }
    }

    private Got request(PackageIndex idx, String method, String target, String accept) throws IOException {
        InternalResponse r = idx.handle("sbx-1", new InternalRequest(method, target, accept == null ? Map.of()
                : Map.of("accept", accept)), decisions::add);
        try (InputStream in = r.body()) {
            return new Got(r.status(), r.headers(), r.length(), in.readAllBytes());
        }
    }

    private Got get(String target) throws IOException {
        return request(index, "GET", target, null);
    }

    private Got getJson(String target) throws IOException {
        return request(index, "GET", target, JSON_ACCEPT);
    }

    @Test
    void rootListsAllowedProjects() throws Exception {
        Got html = get("/simple/");
        assertEquals(200, html.status());
        assertEquals("text/html; charset=utf-8", html.headers().get("Content-Type"));
        for (String p : List.of("local-pkg", "signed", "uppkg")) assertTrue(html.text().contains("<a href=\"/simple/" + p + "/\">" + p + "</a>"));
        assertFalse(html.text().contains("evil"));
        Got json = getJson("/simple/");
        assertEquals(SimplePages.JSON_V1, json.headers().get("Content-Type"));
        JsonNode root = JSON.readTree(json.body());
        assertEquals("1.1", root.at("/meta/api-version").asText());
        List<String> names = new ArrayList<>();
        root.get("projects").forEach(p -> names.add(p.get("name").asText()));
        assertEquals(List.of("local-pkg", "signed", "uppkg"), names);
        assertEquals(json.body().length, json.length());
    }

    @Test
    void projectPageListsOnlyPinnedUpstreamFilesWithHashes() throws Exception {
        Got html = get("/simple/uppkg/");
        assertEquals(200, html.status());
        String expected = "<a href=\"/files/uppkg/uppkg-1.0-py3-none-any.whl#sha256=" + TestWheels.sha256(up1) + "\">"
                + "uppkg-1.0-py3-none-any.whl</a>";
        assertTrue(html.text().contains(expected), html.text());
        assertFalse(html.text().contains("uppkg-2.0"), "an unpinned version was listed");
        assertFalse(html.text().contains("127.0.0.1"), "the upstream's address leaked to the sandbox");
        assertEquals("Accept", html.headers().get("Vary"));
        JsonNode json = JSON.readTree(getJson("/simple/uppkg/").body());
        assertEquals("1.0", json.at("/meta/api-version").asText(), "sizes from an HTML upstream are unknown");
        assertEquals("uppkg", json.get("name").asText());
        assertEquals(1, json.get("files").size());
        JsonNode f = json.get("files").get(0);
        assertEquals("/files/uppkg/uppkg-1.0-py3-none-any.whl", f.get("url").asText());
        assertEquals(TestWheels.sha256(up1), f.at("/hashes/sha256").asText());
        assertFalse(f.get("yanked").asBoolean());
        assertTrue(decisions.stream().anyMatch(d -> d.host().equals("uppkg") && d.allowed() && d.rule().equals("allowlist")
                && d.kind().equals("package") && d.port() == 0 && d.sandboxId().equals("sbx-1")));
    }

    @Test
    void hashesOnTheAllowListFilterFiles() throws Exception {
        String page = get("/simple/signed/").text();
        assertTrue(page.contains("signed-1.1-py3-none-any.whl#sha256=" + TestWheels.sha256(signed11)), page);
        assertFalse(page.contains("signed-1.0"), page);
        Got direct = get("/files/signed/signed-1.0-py3-none-any.whl");
        assertEquals(403, direct.status());
        assertTrue(direct.text().contains("its sha256 is not among the allow-list's hashes"), direct.text());
    }

    @Test
    void wheelhouseFilesCarryRequiresPythonAndSizesAndWinOverUpstream() throws Exception {
        String html = get("/simple/local-pkg/").text();
        assertTrue(html.contains("local_pkg-1.0-py3-none-any.whl#sha256=" + TestWheels.sha256(local) + "\" data-requires-python=\"&gt;=3.8\""), html);
        assertTrue(html.contains("local_pkg-1.1-py3-none-any.whl"), "the allow-listed upstream file is listed too");
        assertEquals(1, html.split("local_pkg-1.0-py3-none-any.whl#").length - 1, "the same file name is listed once");
        Got file = get("/files/local-pkg/local_pkg-1.0-py3-none-any.whl");
        assertEquals(200, file.status());
        assertArrayEquals(local, file.body());
        assertEquals(local.length, file.length());
        assertFalse(upstream.requests.contains("GET /packages/local_pkg-1.0-py3-none-any.whl"));

        try (PackageIndex wheelhouseOnly = new PackageIndex(new PackageConfig(wheelhouse, null, null, null), FAST, GATE)) {
            JsonNode json = JSON.readTree(request(wheelhouseOnly, "GET", "/simple/local-pkg/", JSON_ACCEPT).body());
            assertEquals("1.1", json.at("/meta/api-version").asText());
            assertEquals(local.length, json.at("/files/0/size").asLong());
            assertEquals(">=3.8", json.at("/files/0/requires-python").asText());
            assertEquals("1.0", json.at("/versions/0").asText());
        }
    }

    @Test
    void upstreamJsonPagesAreReadToo() throws Exception {
        upstream.json = true;
        JsonNode json = JSON.readTree(getJson("/simple/uppkg/").body());
        assertEquals(1, json.get("files").size());
        assertEquals("uppkg-1.0-py3-none-any.whl", json.at("/files/0/filename").asText());
        assertArrayEquals(up1, get("/files/uppkg/uppkg-1.0-py3-none-any.whl").body());
    }

    @Test
    void upstreamDownloadsAreVerifiedAndCached() throws Exception {
        Got first = get("/files/uppkg/uppkg-1.0-py3-none-any.whl");
        assertEquals(200, first.status());
        assertEquals(up1.length, first.length());
        assertArrayEquals(up1, first.body());
        Path cached = cache.resolve(TestWheels.sha256(up1));
        assertArrayEquals(up1, Files.readAllBytes(cached));
        long fetches = upstream.requests.stream().filter(r -> r.startsWith("GET /packages/")).count();
        assertArrayEquals(up1, get("/files/uppkg/uppkg-1.0-py3-none-any.whl").body());
        assertEquals(fetches, upstream.requests.stream().filter(r -> r.startsWith("GET /packages/")).count(), "served from the cache");
        try (var files = Files.list(cache)) {
            assertEquals(List.of(cached), files.toList(), "no partial files are left behind");
        }
        Got head = request(index, "HEAD", "/files/uppkg/uppkg-1.0-py3-none-any.whl", null);
        assertEquals(200, head.status());
        assertEquals(up1.length, head.length());
        assertEquals(0, head.body().length);
    }

    @Test
    void aTamperedUpstreamFileIsA502WithNoneOfItsBytes() throws Exception {
        byte[] real = TestWheels.bytes("tampered", "1.0", null);
        byte[] served = real.clone();
        served[served.length / 2] ^= 1;
        upstream.add(new FakeUpstream.Served(TestWheels.filename("tampered", "1.0"), served, TestWheels.sha256(real), null, false),
                "tampered");
        Files.writeString(dir.resolve("allow2.txt"), "tampered\n");
        try (PackageIndex idx = new PackageIndex(new PackageConfig(null, upstream.simpleUrl(), dir.resolve("allow2.txt"), cache), FAST, GATE)) {
            assertTrue(request(idx, "GET", "/simple/tampered/", null).text().contains("tampered-1.0-py3-none-any.whl"));
            Got r = request(idx, "GET", "/files/tampered/tampered-1.0-py3-none-any.whl", null);
            assertEquals(502, r.status(), "a mismatch is refused before the answer starts");
            assertTrue(r.headers().get("Content-Type").startsWith("text/plain"), r.headers().toString());
            assertTrue(r.text().contains("sha256") && r.text().contains("was not delivered"), r.text());
            assertTrue(r.body().length < 1024 && !startsWith(r.body(), served, 4), "none of the file's bytes reach the client");
            try (var files = Files.list(cache)) {
                assertEquals(0, files.count(), "a mismatching file must not be cached");
            }
            assertTrue(decisions.stream().anyMatch(d -> d.host().equals("tampered") && !d.allowed() && d.rule().equals("hash-mismatch")));
        }
    }

    /** Lists {@code project} 1.0 on the upstream and serves the same file from {@code host}; its file name. */
    private String servedByBoth(FakeUpstream host, String project) throws IOException {
        byte[] bytes = TestWheels.bytes(project, "1.0", null);
        String name = TestWheels.filename(project, "1.0");
        host.add(project, name, bytes);
        upstream.add(project, name, bytes);
        return name;
    }

    /** An index of the upstream alone, allowing {@code projects}. */
    private PackageIndex upstreamOnly(String... projects) throws IOException {
        Path allow = Files.writeString(dir.resolve("allow-" + String.join("-", projects) + ".txt"), String.join("\n", projects) + "\n");
        return new PackageIndex(new PackageConfig(null, upstream.simpleUrl(), allow, null), FAST, GATE);
    }

    private static void assertRefusedAddress(Got r) {
        assertEquals(502, r.status());
        assertTrue(r.text().contains("does not fetch from"), r.text());
        assertFalse(r.text().contains("127.0.0.1"), "the address stays in the server log");
    }

    private static boolean startsWith(byte[] body, byte[] file, int n) {
        return body.length >= n && java.util.Arrays.equals(body, 0, n, file, 0, n);
    }

    @Test
    void aPageLinkingToAnotherLoopbackOriginIsNotFetched() throws Exception {
        try (FakeUpstream host = new FakeUpstream()) {
            // The loopback service holds a perfectly valid file: what is refused is the address, not the bytes.
            String name = servedByBoth(host, "lured");
            upstream.hrefs.put(name, host.fileUrl(name));
            try (PackageIndex idx = upstreamOnly("lured")) {
                assertRefusedAddress(request(idx, "GET", "/files/lured/" + name, null));
                assertTrue(host.requests.isEmpty(), "the server never connected: " + host.requests);
            }
        }
    }

    @Test
    void redirectsAreJudgedAtEveryHopAndBounded() throws Exception {
        try (FakeUpstream host = new FakeUpstream()) {
            String hopName = servedByBoth(host, "hop");
            upstream.redirects.put("/packages/" + hopName, host.fileUrl(hopName));
            // A redirect within the configured upstream is followed.
            byte[] moved = TestWheels.bytes("moved", "1.0", null);
            String movedName = TestWheels.filename("moved", "1.0");
            upstream.add("moved", movedName, moved);
            upstream.add(new FakeUpstream.Served("blob.whl", moved, TestWheels.sha256(moved), null, false), "zzz-store");
            upstream.redirects.put("/packages/" + movedName, "/packages/blob.whl");
            String loopName = TestWheels.filename("loop", "1.0");
            upstream.add("loop", loopName, TestWheels.bytes("loop", "1.0", null));
            upstream.redirects.put("/packages/" + loopName, "/packages/" + loopName);
            try (PackageIndex idx = upstreamOnly("hop", "moved", "loop")) {
                assertRefusedAddress(request(idx, "GET", "/files/hop/" + hopName, null));
                assertTrue(host.requests.isEmpty(), "the redirect's target was never contacted: " + host.requests);
                Got followed = request(idx, "GET", "/files/moved/" + movedName, null);
                assertEquals(200, followed.status(), followed.text());
                assertArrayEquals(moved, followed.body());
                Got loop = request(idx, "GET", "/files/loop/" + loopName, null);
                assertEquals(502, loop.status());
                long hops = upstream.requests.stream().filter(x -> x.equals("GET /packages/" + loopName)).count();
                assertEquals(UpstreamHttp.MAX_REDIRECTS + 1, hops, "redirects are bounded");
            }
        }
    }

    @Test
    void verifyingStreamHoldsBackTheLastChunk() throws Exception {
        byte[] data = new byte[200_000];
        new java.util.Random(1).nextBytes(data);
        String good = TestWheels.sha256(data);
        try (VerifyingStream ok = new VerifyingStream(new java.io.ByteArrayInputStream(data), good, data.length, 1 << 20, null, null, "x")) {
            assertArrayEquals(data, ok.readAllBytes());
        }
        List<String> mismatches = new ArrayList<>();
        try (VerifyingStream bad = new VerifyingStream(new java.io.ByteArrayInputStream(data), "00".repeat(32), -1, 1 << 20, null,
                () -> mismatches.add("x"), "x")) {
            byte[] buf = new byte[8192];
            long n = 0;
            IOException e = null;
            try {
                for (int k; (k = bad.read(buf)) >= 0; ) n += k;
            } catch (IOException ex) {
                e = ex;
            }
            assertTrue(e != null && e.getMessage().contains("sha256"));
            assertTrue(n < data.length, "only " + n + " of " + data.length + " bytes may be delivered");
            assertThrows(IOException.class, () -> bad.read(buf), "the failure sticks");
        }
        assertEquals(List.of("x"), mismatches);
        try (VerifyingStream shortOne = new VerifyingStream(new java.io.ByteArrayInputStream(data), good, data.length + 1, 1 << 20,
                null, null, "x")) {
            assertThrows(IOException.class, shortOne::readAllBytes);
        }
        try (VerifyingStream big = new VerifyingStream(new java.io.ByteArrayInputStream(data), good, -1, 1000, null, null, "x")) {
            assertThrows(IOException.class, big::readAllBytes);
        }
    }

    @Test
    void upstreamWithoutContentLengthIsSpooledAndVerifiedFirst() throws Exception {
        byte[] real = TestWheels.bytes("chunky", "1.0", null);
        upstream.add(new FakeUpstream.Served(TestWheels.filename("chunky", "1.0"), real, TestWheels.sha256(real), null, true), "chunky");
        byte[] other = TestWheels.bytes("chunky", "2.0", null);
        upstream.add(new FakeUpstream.Served(TestWheels.filename("chunky", "2.0"), other, "11".repeat(32), null, true), "chunky");
        Files.writeString(dir.resolve("allow3.txt"), "chunky\n");
        try (PackageIndex idx = new PackageIndex(new PackageConfig(null, upstream.simpleUrl(), dir.resolve("allow3.txt"), null), FAST, GATE)) {
            Got ok = request(idx, "GET", "/files/chunky/chunky-1.0-py3-none-any.whl", null);
            assertEquals(200, ok.status());
            assertEquals(real.length, ok.length());
            assertArrayEquals(real, ok.body());
            Got bad = request(idx, "GET", "/files/chunky/chunky-2.0-py3-none-any.whl", null);
            assertEquals(502, bad.status());
            assertTrue(bad.text().contains("sha256"), bad.text());
        }
    }

    @Test
    void refusedProjectsListAPlaceholderWhoseDownloadExplains() throws Exception {
        Got page = get("/simple/evil/");
        assertEquals(200, page.status());
        String placeholder = "evil-0%2Brefused.by.package.policy-py2.py3-none-any.whl";
        assertTrue(page.text().contains("<a href=\"/files/evil/" + placeholder + "\">"), page.text());
        JsonNode json = JSON.readTree(getJson("/simple/evil/").body());
        assertEquals("evil-0+refused.by.package.policy-py2.py3-none-any.whl", json.at("/files/0/filename").asText());
        Got file = get("/files/evil/" + placeholder);
        assertEquals(403, file.status());
        String reason = "package 'evil' is not allowed by this server's package policy: it is neither in the wheelhouse nor on the allow-list";
        assertEquals(reason, file.headers().get(PackageIndex.REASON_HEADER));
        assertEquals(reason + "\n", file.text());
        Decision d = decisions.getLast();
        assertEquals("package", d.kind());
        assertEquals("evil", d.host());
        assertEquals(0, d.port());
        assertFalse(d.allowed());
        assertEquals("not-allowed", d.rule());
        assertEquals("sbx-1", d.sandboxId());
        assertEquals(3, decisions.stream().filter(x -> x.host().equals("evil")).count(), "two pages and a download, each recorded");
        Got other = get("/simple/other-evil/");
        assertTrue(other.text().contains("other_evil-0%2Brefused.by.package.policy"), "wheel names use underscores");
        assertEquals(403, get("/files/uppkg/uppkg-2.0-py3-none-any.whl").status(), "unpinned version of an allowed project");
    }

    @Test
    void namesAreRedirectedToTheirNormalizedForm() throws Exception {
        assertRedirect("/simple/UpPkg/", "/simple/uppkg/");
        assertRedirect("/simple/Up_Pkg/", "/simple/up-pkg/");
        assertRedirect("/simple/uppkg", "/simple/uppkg/");
        assertRedirect("/simple/up.pkg?x=1", "/simple/up-pkg/");
        assertRedirect("/simple", "/simple/");
        assertRedirect("/", "/simple/");
        assertEquals(404, get("/files/UpPkg/uppkg-1.0-py3-none-any.whl").status());
    }

    private void assertRedirect(String from, String to) throws IOException {
        Got r = get(from);
        assertEquals(301, r.status(), from);
        assertEquals(to, r.headers().get("Location"), from);
    }

    @Test
    void contentNegotiationFollowsPep691() {
        assertEquals(SimplePages.Format.LEGACY_HTML, SimplePages.negotiate(null));
        assertEquals(SimplePages.Format.LEGACY_HTML, SimplePages.negotiate("*/*"));
        assertEquals(SimplePages.Format.LEGACY_HTML, SimplePages.negotiate("application/xml"));
        assertEquals(SimplePages.Format.JSON, SimplePages.negotiate(JSON_ACCEPT));
        assertEquals(SimplePages.Format.JSON, SimplePages.negotiate("application/vnd.pypi.simple.latest+json"));
        assertEquals(SimplePages.Format.HTML, SimplePages.negotiate("application/vnd.pypi.simple.v1+json;q=0.2, application/vnd.pypi.simple.v1+html"));
        assertEquals(SimplePages.Format.LEGACY_HTML, SimplePages.negotiate("application/vnd.pypi.simple.v1+json;q=0, text/html"));
        assertEquals(SimplePages.Format.LEGACY_HTML, SimplePages.negotiate("application/vnd.pypi.simple.v1+json;q=abc"));
        assertEquals(SimplePages.Format.LEGACY_HTML, SimplePages.negotiate("x,".repeat(5000)));
    }

    @Test
    void hostilePathsAreAnsweredCleanly() throws Exception {
        String[] targets = {
                "/files/local-pkg/..%2f..%2fetc%2fpasswd", "/files/local-pkg/%2e%2e", "/files/local-pkg/..",
                "/simple/%2e%2e/", "/simple/../", "/files/../../etc/passwd", "/simple/a%00b/", "/simple/a%2fb/",
                "/files/local-pkg/local_pkg-1.0-py3-none-any.whl%00", "/%ff/", "/simple/%c3%a4/", "/simple/%zz/",
                "/simple/%", "/files/local-pkg/x/y", "relative", "", "/simple//", "//simple/", "/simple/a b/",
                "/simple/" + "a".repeat(5000) + "/", "/files/local-pkg/" + "a".repeat(300) + ".whl",
                "/simple/" + "a".repeat(PackageNames.MAX_LENGTH + 1) + "/", "/files/local-pkg/..%5c..%5cwin.ini",
                "/simple/\u00e4/", "/files/local-pkg/local_pkg-1.0-py3-none-any.whl/", "/etc/passwd", "/files/",
        };
        for (String t : targets) {
            Got r = get(t);
            assertTrue(r.status() == 400 || r.status() == 404, t + " -> " + r.status() + " " + r.text());
            assertFalse(r.text().contains("root:"), t);
        }
        assertEquals(405, request(index, "POST", "/simple/", null).status());
        assertEquals(405, request(index, "DELETE", "/files/local-pkg/local_pkg-1.0-py3-none-any.whl", null).status());
        assertTrue(decisions.stream().noneMatch(d -> d.host().contains("/") || d.host().contains("..")));
    }

    @Test
    void headAnswersWithoutABody() throws Exception {
        Got get = get("/simple/uppkg/");
        Got head = request(index, "HEAD", "/simple/uppkg/", null);
        assertEquals(200, head.status());
        assertEquals(get.length(), head.length());
        assertEquals(0, head.body().length);
        Got file = request(index, "HEAD", "/files/local-pkg/local_pkg-1.0-py3-none-any.whl", null);
        assertEquals(local.length, file.length());
        assertEquals(0, file.body().length);
        Got refused = request(index, "HEAD", "/files/evil/evil-0%2Brefused.by.package.policy-py2.py3-none-any.whl", null);
        assertEquals(403, refused.status());
        assertEquals(0, refused.body().length);
    }

    @Test
    void anUnreachableUpstreamIsA502UnlessTheWheelhouseHasFiles() throws Exception {
        int closedPort;
        try (ServerSocket s = new ServerSocket(0)) {
            closedPort = s.getLocalPort();
        }
        Files.writeString(dir.resolve("allow4.txt"), "uppkg\nlocal-pkg\n");
        try (PackageIndex idx = new PackageIndex(new PackageConfig(wheelhouse, URI.create("http://127.0.0.1:" + closedPort + "/simple/"),
                dir.resolve("allow4.txt"), null), FAST, GATE)) {
            Got r = request(idx, "GET", "/simple/uppkg/", null);
            assertEquals(502, r.status());
            assertTrue(r.text().contains("package 'uppkg' is allowed, but the upstream index could not be read"), r.text());
            assertFalse(r.text().contains("127.0.0.1"), "the upstream's address stays in the server log");
            Got local = request(idx, "GET", "/simple/local-pkg/", null);
            assertEquals(200, local.status());
            assertTrue(local.text().contains("local_pkg-1.0-py3-none-any.whl"));
        }
    }

    @Test
    void upstreamHtmlIsParsedDefensively() {
        String sha = "ab".repeat(32);
        String html = "<html><body>"
                + "<a href=\"/packages/foo-1.0-py3-none-any.whl#sha256=" + sha + "\" data-requires-python=\"&gt;=3.8\">x</a>"
                + "<A HREF='../../packages/foo-1.1.tar.gz#sha256=" + sha + "' data-yanked>y</A>"
                + "<a href=\"https://files.example/foo-1.2-py3-none-any.whl#sha256=" + sha + "\" data-yanked=\"broken &amp; bad\">z</a>"
                + "<a href=\"/packages/foo-1.3-py3-none-any.whl\">no hash: dropped</a>"
                + "<a href=\"/packages/foo-1.4-py3-none-any.whl#md5=abc\">md5 only: dropped</a>"
                + "<a href=\"/packages/bar-1.0-py3-none-any.whl#sha256=" + sha + "\">other project: dropped</a>"
                + "<a href=\"javascript:alert(1)#sha256=" + sha + "\">foo-1.5-py3-none-any.whl</a>"
                + "<a href=\"file:///etc/foo-1.6-py3-none-any.whl#sha256=" + sha + "\">file scheme: dropped</a>"
                + "<a href=\"bad uri ^^ foo-1.7-py3-none-any.whl#sha256=" + sha + "\">unparseable: dropped</a>"
                + "<a name=\"nohref\">no href</a><a href=\"/packages/foo-1.8.exe#sha256=" + sha + "\">not a distribution</a>"
                + "</body></html>";
        List<IndexFile> files = Upstream.parseHtml("foo", URI.create("http://mirror.example/simple/foo/"),
                html.getBytes(StandardCharsets.UTF_8));
        assertEquals(List.of("foo-1.0-py3-none-any.whl", "foo-1.1.tar.gz", "foo-1.2-py3-none-any.whl"),
                files.stream().map(IndexFile::filename).toList());
        assertEquals(">=3.8", files.get(0).requiresPython());
        assertEquals(URI.create("http://mirror.example/packages/foo-1.0-py3-none-any.whl"), files.get(0).upstreamUrl());
        assertEquals(null, files.get(0).yanked());
        assertEquals("", files.get(1).yanked());
        assertEquals("broken & bad", files.get(2).yanked());
        assertEquals(URI.create("http://mirror.example/packages/foo-1.1.tar.gz"), files.get(1).upstreamUrl());
        assertThrows(IOException.class, () -> Upstream.parseJson("foo", URI.create("http://m/simple/foo/"), "{not json".getBytes()));
        assertThrows(IOException.class, () -> Upstream.parseJson("foo", URI.create("http://m/simple/foo/"), "[]".getBytes()));
    }

    @Test
    void upstreamAnswersAreBoundedInSizeAndTime() throws Exception {
        Upstream.Timeouts quick = new Upstream.Timeouts(Duration.ofSeconds(2), Duration.ofMillis(500), Duration.ofMillis(300),
                Duration.ofSeconds(5), Duration.ofMinutes(5));
        String stall = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc";
        String hugeHead = "HTTP/1.1 200 OK\r\nX-Pad: " + "x".repeat(UpstreamHttp.MAX_HEAD_BYTES) + "\r\n\r\n";
        String chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-T: 1\r\n\r\n";
        String badChunk = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFF\r\n";
        for (String answer : List.of(stall, hugeHead, chunked, badChunk)) {
            try (ServerSocket listener = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
                Thread peer = Thread.ofVirtual().start(() -> {
                    try (java.net.Socket s = listener.accept()) {
                        s.getOutputStream().write(answer.getBytes(StandardCharsets.ISO_8859_1));
                        s.getOutputStream().flush();
                        Thread.sleep(3_000);
                    } catch (IOException | InterruptedException ignored) {
                        // the client went away: expected
                    }
                });
                URI uri = URI.create("http://127.0.0.1:" + listener.getLocalPort() + "/simple/x/");
                UpstreamHttp http = new UpstreamHttp(uri, GATE, quick);
                long start = System.nanoTime();
                if (answer == chunked) {
                    try (UpstreamHttp.Response r = http.get(uri, null)) {
                        assertEquals("hello", new String(r.body().readAllBytes(), StandardCharsets.ISO_8859_1));
                    }
                } else {
                    IOException e = assertThrows(IOException.class, () -> {
                        try (UpstreamHttp.Response r = http.get(uri, null)) {
                            r.body().readAllBytes();
                        }
                    });
                    String m = e.getMessage();
                    assertTrue(answer == stall ? m.contains("sent nothing") : answer == hugeHead ? m.contains("longer than")
                            : m.contains("malformed chunked"), m);
                }
                assertTrue(System.nanoTime() - start < 2_500_000_000L, "answered within the bounds");
                peer.interrupt();
            }
        }
    }

    @Test
    void anEmptyConfigurationRefusesEverything() throws Exception {
        try (PackageIndex none = new PackageIndex(PackageConfig.none(), ServerFetchGate.from(EgressConfig.defaults()))) {
            assertEquals(PackageIndex.HOST, none.host());
            Got root = request(none, "GET", "/simple/", null);
            assertEquals(200, root.status());
            assertFalse(root.text().contains("<a "));
            Got page = request(none, "GET", "/simple/requests/", null);
            assertTrue(page.text().contains("requests-0%2Brefused.by.package.policy"));
            Got file = request(none, "GET", "/files/requests/requests-0%2Brefused.by.package.policy-py2.py3-none-any.whl", null);
            assertEquals(403, file.status());
            assertNotEquals(-1, file.text().indexOf("allows no packages"));
        }
    }
}
