package dev.stockade.conformance;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URLEncoder;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.zip.GZIPOutputStream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The file API as the E2B SDK uses it: /files downloads and uploads (octet-stream, gzip, multipart
 * with the full path in the filename), binary and 50 MiB contents, the filesystem.Filesystem RPCs with
 * their exact EntryInfo fields, errors, relative paths, ownership and atomic replacement.
 */
public abstract class FilesContract extends RuntimeContract {
    RawClient.Box box;

    @BeforeAll
    void up() {
        startServer();
        box = c.create(Map.of("templateID", "base", "timeout", 300));
    }

    @AfterAll
    void down() {
        try {
            if (box != null) c.kill(box);
        } finally {
            stopServer();
        }
    }

    String q(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    String sh(String cmd) {
        RawClient.Run r = c.run(box, cmd);
        assertEquals(0, r.exitCode(), () -> cmd + " → " + r.stderr());
        return r.stdout();
    }

    void assertWritten(RawClient.Response r, String... paths) {
        assertEquals(200, r.status(), r::body);
        assertTrue(r.json().isArray(), r::body);
        assertEquals(paths.length, r.json().size(), r::body);
        for (int i = 0; i < paths.length; i++) {
            JsonNode e = r.json().get(i);
            assertEquals(paths[i], e.path("path").asText(), r::body);
            assertEquals(paths[i].substring(paths[i].lastIndexOf('/') + 1), e.path("name").asText(), r::body);
            assertEquals("file", e.path("type").asText(), r::body);
        }
    }

    void assertError(RawClient.Response r, int status) {
        ApiAssertions.assertError(r, status);
    }

    void assertConnectError(RawClient.Response r, int status, String code) {
        assertEquals(status, r.status(), r::body);
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"));
        assertEquals(code, r.json().path("code").asText(), r::body);
        assertFalse(r.json().path("message").asText("").isBlank(), r::body);
    }

    /** POSTs /files with a streamed (chunked) body, as the SDK does. */
    RawClient.Response post(String query, String contentType, Map<String, String> extra, InputStream body) {
        try {
            HttpRequest.Builder rb = HttpRequest.newBuilder(c.base.resolve("/files" + query)).timeout(Duration.ofSeconds(120))
                    .POST(HttpRequest.BodyPublishers.ofInputStream(() -> body));
            c.envd(box).forEach(rb::header);
            rb.header("Content-Type", contentType);
            extra.forEach(rb::header);
            HttpResponse<String> r = c.http.send(rb.build(), HttpResponse.BodyHandlers.ofString());
            JsonNode json = null;
            try {
                json = RawClient.JSON.readTree(r.body());
            } catch (IOException notJson) {
                // left null
            }
            return new RawClient.Response(r.statusCode(), json, r.body(), r.headers());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    static final String BOUNDARY = "----formdata-undici-031415926535";

    /** A multipart/form-data body built by hand the way undici builds the SDK's uploads. */
    byte[] multipart(List<Object[]> parts) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (Object[] p : parts) {
            String name = (String) p[0], filename = (String) p[1];
            byte[] content = (byte[]) p[2];
            StringBuilder h = new StringBuilder("--").append(BOUNDARY).append("\r\n")
                    .append("Content-Disposition: form-data; name=\"").append(name).append('"');
            if (filename != null) {
                h.append("; filename=\"").append(filename.replace("\"", "%22").replace("\r", "%0D").replace("\n", "%0A")).append('"');
                h.append("\r\nContent-Type: application/octet-stream");
            }
            h.append("\r\n\r\n");
            b.writeBytes(h.toString().getBytes(StandardCharsets.UTF_8));
            b.writeBytes(content);
            b.writeBytes("\r\n".getBytes(StandardCharsets.UTF_8));
        }
        b.writeBytes(("--" + BOUNDARY + "--\r\n").getBytes(StandardCharsets.UTF_8));
        return b.toByteArray();
    }

    RawClient.Response postMultipart(String query, byte[] body) {
        return post(query, "multipart/form-data; boundary=" + BOUNDARY, Map.of(), new java.io.ByteArrayInputStream(body));
    }

    byte[] read(String path) {
        HttpResponse<byte[]> r = c.download(box, path);
        assertEquals(200, r.statusCode(), () -> path + ": " + new String(r.body(), StandardCharsets.UTF_8));
        return r.body();
    }

    @Test
    void allByteValuesRoundTripThroughOctetStream() throws Exception {
        byte[] all = new byte[256 * 3];
        for (int i = 0; i < all.length; i++) all[i] = (byte) i;
        assertWritten(c.upload(box, "/home/user/bytes.bin", all), "/home/user/bytes.bin");
        assertArrayEquals(all, read("/home/user/bytes.bin"));
        String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(all));
        assertEquals(sha + "\n", sh("sha256sum /home/user/bytes.bin | cut -d' ' -f1"));
        // Empty files too.
        assertWritten(c.upload(box, "/home/user/empty", new byte[0]), "/home/user/empty");
        assertEquals(0, read("/home/user/empty").length);
        assertEquals("0\n", sh("stat -c %s /home/user/empty"));
    }

    /** Deterministic pseudo-random bytes, generated as they are read, hashed on the way. */
    static final class RandomStream extends InputStream {
        private final SplittableRandom random;
        private long left;

        RandomStream(long seed, long size) {
            this.random = new SplittableRandom(seed);
            this.left = size;
        }

        @Override
        public int read() {
            if (left <= 0) return -1;
            left--;
            return random.nextInt(256);
        }

        @Override
        public int read(byte[] b, int off, int len) {
            if (left <= 0) return -1;
            int n = (int) Math.min(len, left);
            for (int i = 0; i < n; i++) b[off + i] = (byte) random.nextInt(256);
            left -= n;
            return n;
        }
    }

    @Test
    void fiftyMebibytesRoundTripWithEqualSha256() throws Exception {
        long size = 50L * 1024 * 1024;
        MessageDigest up = MessageDigest.getInstance("SHA-256");
        RawClient.Response w = post("?path=" + q("/home/user/big/fifty.bin"), "application/octet-stream", Map.of(),
                new DigestInputStream(new RandomStream(42, size), up));
        assertWritten(w, "/home/user/big/fifty.bin");
        String sent = HexFormat.of().formatHex(up.digest());

        assertEquals(sent + "\n", sh("sha256sum /home/user/big/fifty.bin | cut -d' ' -f1"));
        JsonNode st = c.rpc(box, "filesystem.Filesystem/Stat", Map.of("path", "/home/user/big/fifty.bin")).json();
        assertEquals(Long.toString(size), st.path("entry").path("size").asText());

        HttpRequest.Builder rb = HttpRequest.newBuilder(c.base.resolve("/files?path=" + q("/home/user/big/fifty.bin")))
                .timeout(Duration.ofSeconds(120)).GET();
        c.envd(box).forEach(rb::header);
        HttpResponse<InputStream> r = c.http.send(rb.build(), HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, r.statusCode());
        MessageDigest down = MessageDigest.getInstance("SHA-256");
        long n = 0;
        try (InputStream in = new DigestInputStream(r.body(), down)) {
            byte[] buf = new byte[1 << 16];
            int k;
            while ((k = in.read(buf)) >= 0) n += k;
        }
        assertEquals(size, n);
        assertEquals(sent, HexFormat.of().formatHex(down.digest()));
        sh("rm -rf /home/user/big");
    }

    @Test
    void multipartUploadsAsTheSdkSendsThem() {
        // Content that tries to look like a delimiter: a CRLF and a near-boundary, a lone "--".
        byte[] tricky = ("line1\r\n--" + BOUNDARY.substring(0, BOUNDARY.length() - 1) + "\r\n--\r\nend\r\n").getBytes(StandardCharsets.UTF_8);

        // The full path travels in filename, not just a basename; parents are created.
        assertWritten(postMultipart("", multipart(List.<Object[]>of(new Object[] {"file", "/home/user/mp/deep/a.txt", tricky}))),
                "/home/user/mp/deep/a.txt");
        assertArrayEquals(tricky, read("/home/user/mp/deep/a.txt"));

        // Single-path writes also carry ?path=, which wins over the filename.
        assertWritten(postMultipart("?path=" + q("/tmp/by-query.txt"),
                multipart(List.<Object[]>of(new Object[] {"file", "/tmp/by-query.txt", "Q".getBytes()}))), "/tmp/by-query.txt");
        assertEquals("Q", new String(read("/tmp/by-query.txt")));
        assertWritten(postMultipart("?path=" + q("/tmp/wins.txt"),
                multipart(List.<Object[]>of(new Object[] {"file", "/tmp/loses.txt", "W".getBytes()}))), "/tmp/wins.txt");
        assertEquals("W", new String(read("/tmp/wins.txt")));
        assertEquals(404, c.download(box, "/tmp/loses.txt").statusCode());

        // Several files in one request, answered in order; a relative filename resolves against home;
        // non-file form fields are ignored.
        byte[] bin = new byte[3 * 1024 * 1024 + 17];
        new SplittableRandom(7).nextBytes(bin);
        RawClient.Response multi = postMultipart("", multipart(List.of(
                new Object[] {"meta", null, "not a file".getBytes()},
                new Object[] {"file", "/tmp/multi/one.txt", "one".getBytes()},
                new Object[] {"file", "rel/two.bin", bin},
                new Object[] {"file", "/tmp/multi/wörld \"q\".txt", "unicode".getBytes(StandardCharsets.UTF_8)},
                new Object[] {"file", "/tmp/multi/semi;colon=1.txt", "semi".getBytes()})));
        assertWritten(multi, "/tmp/multi/one.txt", "/home/user/rel/two.bin", "/tmp/multi/wörld \"q\".txt",
                "/tmp/multi/semi;colon=1.txt");
        assertEquals("one", new String(read("/tmp/multi/one.txt")));
        assertArrayEquals(bin, read("/home/user/rel/two.bin"));
        assertEquals("unicode", new String(read("/tmp/multi/wörld \"q\".txt"), StandardCharsets.UTF_8));
        assertEquals("semi", new String(read("/tmp/multi/semi;colon=1.txt")));
        assertEquals("/tmp/multi/one.txt\n/tmp/multi/semi;colon=1.txt\n/tmp/multi/wörld \"q\".txt\n", sh("ls -1 /tmp/multi/* | sort"));

        // A body without any file part, or cut short, is a 400, not a 500 or a half-written file.
        assertError(postMultipart("", multipart(List.<Object[]>of(new Object[] {"meta", null, "x".getBytes()}))), 400);
        byte[] full = multipart(List.<Object[]>of(new Object[] {"file", "/tmp/truncated.txt", "abcdef".getBytes()}));
        assertError(postMultipart("", Arrays.copyOf(full, full.length - 20)), 400);
        assertEquals(404, c.download(box, "/tmp/truncated.txt").statusCode(), "a truncated upload leaves no file behind");
        assertEquals("", sh("ls -a /tmp | grep stockade-tmp || true"), "no temporary files left behind");
    }

    @Test
    void gzipEncodedUploadsAreStoredDecoded() throws IOException {
        byte[] plain = "compressible ".repeat(10_000).getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream gz = new ByteArrayOutputStream();
        try (GZIPOutputStream z = new GZIPOutputStream(gz)) {
            z.write(plain);
        }
        RawClient.Response r = post("?path=" + q("/home/user/gz.txt"), "application/octet-stream", Map.of("Content-Encoding", "gzip"),
                new java.io.ByteArrayInputStream(gz.toByteArray()));
        assertWritten(r, "/home/user/gz.txt");
        assertArrayEquals(plain, read("/home/user/gz.txt"));
        // Not gzip at all under a gzip header: 400.
        RawClient.Response bad = post("?path=" + q("/home/user/notgz.txt"), "application/octet-stream",
                Map.of("Content-Encoding", "gzip"), new java.io.ByteArrayInputStream("plain".getBytes()));
        assertError(bad, 400);
        assertEquals(404, c.download(box, "/home/user/notgz.txt").statusCode());
    }

    @Test
    void filesystemRpcsWithExactFields() {
        Instant before = Instant.now().minusSeconds(5);
        sh("rm -rf /home/user/fs");
        assertWritten(c.upload(box, "/home/user/fs/a.txt", "hello".getBytes()), "/home/user/fs/a.txt");

        // Stat (relative path: against /home/user)
        RawClient.Response st = c.rpc(box, "filesystem.Filesystem/Stat", Map.of("path", "fs/a.txt"));
        assertEquals(200, st.status(), st.body());
        JsonNode e = st.json().path("entry");
        assertEquals("a.txt", e.path("name").asText());
        assertEquals("FILE_TYPE_FILE", e.path("type").asText());
        assertEquals("/home/user/fs/a.txt", e.path("path").asText());
        assertTrue(e.path("size").isTextual(), "int64 size is a JSON string: " + e);
        assertEquals("5", e.path("size").asText());
        assertEquals(420, e.path("mode").asInt(), e.toString());
        assertEquals("-rw-r--r--", e.path("permissions").asText());
        assertEquals("user", e.path("owner").asText());
        assertEquals("user", e.path("group").asText());
        Instant mtime = Instant.parse(e.path("modifiedTime").asText());
        assertTrue(mtime.isAfter(before) && mtime.isBefore(Instant.now().plusSeconds(5)), mtime.toString());
        assertFalse(e.has("symlinkTarget"), e.toString());

        // MakeDir: created once, already_exists the second time; over a file: invalid_argument.
        RawClient.Response mk = c.rpc(box, "filesystem.Filesystem/MakeDir", Map.of("path", "/home/user/fs/sub"));
        assertEquals(200, mk.status(), mk.body());
        JsonNode d = mk.json().path("entry");
        assertEquals("sub", d.path("name").asText());
        assertEquals("FILE_TYPE_DIRECTORY", d.path("type").asText());
        assertEquals("/home/user/fs/sub", d.path("path").asText());
        assertEquals("user", d.path("owner").asText());
        assertEquals("drwxr-xr-x", d.path("permissions").asText());
        assertConnectError(c.rpc(box, "filesystem.Filesystem/MakeDir", Map.of("path", "/home/user/fs/sub")), 409, "already_exists");
        assertConnectError(c.rpc(box, "filesystem.Filesystem/MakeDir", Map.of("path", "/home/user/fs/a.txt")), 400, "invalid_argument");
        // Parents are created.
        assertEquals(200, c.rpc(box, "filesystem.Filesystem/MakeDir", Map.of("path", "fs/p/q/r")).status());
        assertEquals("user user\n", sh("stat -c '%U %G' /home/user/fs/p/q"));

        assertWritten(c.upload(box, "/home/user/fs/sub/b.txt", "bb".getBytes()), "/home/user/fs/sub/b.txt");

        // ListDir depth 1: direct children only, sorted, full paths, never the directory itself.
        RawClient.Response l1 = c.rpc(box, "filesystem.Filesystem/ListDir", Map.of("path", "/home/user/fs", "depth", 1));
        assertEquals(200, l1.status(), l1.body());
        List<String> paths1 = new ArrayList<>();
        for (JsonNode n : l1.json().path("entries")) paths1.add(n.path("path").asText());
        assertEquals(List.of("/home/user/fs/a.txt", "/home/user/fs/p", "/home/user/fs/sub"), paths1);
        JsonNode first = l1.json().path("entries").get(0);
        assertEquals("a.txt", first.path("name").asText());
        assertEquals("FILE_TYPE_FILE", first.path("type").asText());
        assertEquals("5", first.path("size").asText());
        assertEquals("user", first.path("owner").asText());
        assertEquals("FILE_TYPE_DIRECTORY", l1.json().path("entries").get(2).path("type").asText());

        // Depth 2 adds the grandchildren, and no further.
        RawClient.Response l2 = c.rpc(box, "filesystem.Filesystem/ListDir", Map.of("path", "fs", "depth", 2));
        List<String> paths2 = new ArrayList<>();
        for (JsonNode n : l2.json().path("entries")) paths2.add(n.path("path").asText());
        assertEquals(List.of("/home/user/fs/a.txt", "/home/user/fs/p", "/home/user/fs/p/q", "/home/user/fs/sub",
                "/home/user/fs/sub/b.txt"), paths2.stream().sorted().toList());
        assertEquals(5, paths2.size(), paths2.toString());
        // Default depth (absent) is 1.
        assertEquals(3, c.rpc(box, "filesystem.Filesystem/ListDir", Map.of("path", "/home/user/fs")).json().path("entries").size());
        assertConnectError(c.rpc(box, "filesystem.Filesystem/ListDir", Map.of("path", "/home/user/fs/a.txt", "depth", 1)), 400,
                "invalid_argument");
        assertConnectError(c.rpc(box, "filesystem.Filesystem/ListDir", Map.of("path", "/home/user/nope", "depth", 1)), 404, "not_found");

        // Move: to a new directory (created), the entry describes the destination.
        RawClient.Response mv = c.rpc(box, "filesystem.Filesystem/Move",
                Map.of("source", "/home/user/fs/a.txt", "destination", "/home/user/fs/sub/moved/c.txt"));
        assertEquals(200, mv.status(), mv.body());
        JsonNode m = mv.json().path("entry");
        assertEquals("c.txt", m.path("name").asText());
        assertEquals("/home/user/fs/sub/moved/c.txt", m.path("path").asText());
        assertEquals("FILE_TYPE_FILE", m.path("type").asText());
        assertEquals("5", m.path("size").asText());
        assertConnectError(c.rpc(box, "filesystem.Filesystem/Stat", Map.of("path", "/home/user/fs/a.txt")), 404, "not_found");
        assertEquals("hello", new String(read("/home/user/fs/sub/moved/c.txt")));
        assertConnectError(c.rpc(box, "filesystem.Filesystem/Move",
                Map.of("source", "/home/user/fs/nope", "destination", "/home/user/fs/x")), 404, "not_found");
        // Move overwrites like rename(2).
        assertWritten(c.upload(box, "/home/user/fs/over.txt", "new".getBytes()), "/home/user/fs/over.txt");
        assertEquals(200, c.rpc(box, "filesystem.Filesystem/Move",
                Map.of("source", "/home/user/fs/over.txt", "destination", "/home/user/fs/sub/b.txt")).status());
        assertEquals("new", new String(read("/home/user/fs/sub/b.txt")));

        // Remove: recursive for directories; a missing path is success (envd).
        RawClient.Response rm = c.rpc(box, "filesystem.Filesystem/Remove", Map.of("path", "/home/user/fs/sub"));
        assertEquals(200, rm.status(), rm.body());
        assertTrue(rm.json().isObject());
        assertConnectError(c.rpc(box, "filesystem.Filesystem/Stat", Map.of("path", "/home/user/fs/sub")), 404, "not_found");
        assertEquals(200, c.rpc(box, "filesystem.Filesystem/Remove", Map.of("path", "/home/user/fs/sub")).status(),
                "removing a missing path succeeds, as in envd");
        assertEquals("p\n", sh("ls /home/user/fs"));

        // Symlinks are reported as such, with their target.
        sh("ln -sfn /home/user/fs/p /home/user/fs/link");
        JsonNode link = c.rpc(box, "filesystem.Filesystem/Stat", Map.of("path", "/home/user/fs/link")).json().path("entry");
        assertEquals("/home/user/fs/p", link.path("symlinkTarget").asText(), link.toString());
    }

    @Test
    void missingFilesAndDirectoriesOnFiles() {
        RawClient.Response missing = c.call("GET", "/files?path=" + q("/home/user/does-not-exist"), null, c.envd(box));
        assertError(missing, 404);
        RawClient.Response dir = c.call("GET", "/files?path=" + q("/home/user"), null, c.envd(box));
        assertError(dir, 400);
        RawClient.Response noPath = c.call("GET", "/files", null, c.envd(box));
        assertError(noPath, 400);
        // Writing over a directory is refused.
        sh("mkdir -p /home/user/a-dir");
        assertError(c.upload(box, "/home/user/a-dir", "x".getBytes()), 400);
        assertEquals("directory\n", sh("stat -c %F /home/user/a-dir"));
        // A file in the way of a parent directory.
        assertWritten(c.upload(box, "/home/user/plain", "x".getBytes()), "/home/user/plain");
        RawClient.Response under = c.upload(box, "/home/user/plain/child.txt", "x".getBytes());
        assertTrue(under.status() == 400 || under.status() == 404, under.body());
        assertError(under, under.status());
    }

    @Test
    void relativePathsResolveAgainstHome() {
        assertWritten(c.upload(box, "rel/x.txt", "rx".getBytes()), "/home/user/rel/x.txt");
        assertWritten(c.upload(box, "~/rel/y.txt", "ry".getBytes()), "/home/user/rel/y.txt");
        assertWritten(c.upload(box, "rel/../rel/./z.txt", "rz".getBytes()), "/home/user/rel/z.txt");
        assertEquals("rx ry rz\n", sh("echo $(cat /home/user/rel/x.txt) $(cat /home/user/rel/y.txt) $(cat /home/user/rel/z.txt)"));
        assertEquals("rx", new String(read("rel/x.txt")));
        assertEquals("ry", new String(read("~/rel/y.txt")));
        assertEquals("/home/user/rel/x.txt",
                c.rpc(box, "filesystem.Filesystem/Stat", Map.of("path", "rel/x.txt")).json().path("entry").path("path").asText());
        // ".." is clamped at the sandbox root: it lands in the sandbox's /tmp, not anywhere on the host.
        assertWritten(c.upload(box, "../../../../../../tmp/clamped.txt", "c".getBytes()), "/tmp/clamped.txt");
        assertEquals("c", sh("cat /tmp/clamped.txt"));
    }

    @Test
    void filesWrittenThroughTheApiBelongToTheUser() {
        assertWritten(c.upload(box, "/home/user/owned/deep/f.txt", "x".getBytes()), "/home/user/owned/deep/f.txt");
        assertWritten(c.upload(box, "/tmp/owned-tmp/g.txt", "y".getBytes()), "/tmp/owned-tmp/g.txt");
        assertEquals("1000:1000\n1000:1000\n1000:1000\n1000:1000\n1000:1000\n",
                sh("stat -c %u:%g /home/user/owned /home/user/owned/deep /home/user/owned/deep/f.txt /tmp/owned-tmp /tmp/owned-tmp/g.txt"));
        // ...so the user's commands can change and delete them.
        sh("echo more >> /home/user/owned/deep/f.txt && rm /tmp/owned-tmp/g.txt && rmdir /tmp/owned-tmp");
        assertEquals("xmore\n", new String(read("/home/user/owned/deep/f.txt")));
        // Uploading as root (username=root, as the SDK's files.write(..., {user: 'root'})) gives a root file.
        RawClient.Response asRoot = c.call("POST", "/files?path=" + q("/home/user/rootfile") + "&username=root",
                "r".getBytes(), new java.util.HashMap<>(Map.of("Content-Type", "application/octet-stream",
                        "E2b-Sandbox-Id", box.id(), "X-Access-Token", box.token())));
        assertWritten(asRoot, "/home/user/rootfile");
        assertEquals("0:0\n", sh("stat -c %u:%g /home/user/rootfile"));
        // Overwriting keeps the existing file's owner and mode.
        sh("chmod 600 /home/user/owned/deep/f.txt");
        assertWritten(c.upload(box, "/home/user/owned/deep/f.txt", "replaced".getBytes()), "/home/user/owned/deep/f.txt");
        assertEquals("1000:1000 600 replaced\n", sh("echo $(stat -c '%u:%g %a' /home/user/owned/deep/f.txt) $(cat /home/user/owned/deep/f.txt)"));
    }

    @Test
    void theFilesApiActsWithTheRequestedUsersPermissions() {
        // A file only the sandbox's root may read, in root's 0700 home, made by a command as root.
        RawClient.Run made = c.run(box, "echo root-only > /root/secret && chmod 600 /root/secret && echo ok", "root");
        assertEquals("ok\n", made.stdout(), made.toString());
        // As the default user (uid 1000), the files API is refused, as the user's own commands are.
        HttpResponse<byte[]> asUser = c.download(box, "/root/secret");
        assertTrue(asUser.statusCode() >= 400 && asUser.statusCode() < 500, asUser.statusCode() + " " + new String(asUser.body()));
        assertFalse(new String(asUser.body()).contains("root-only"));
        RawClient.Response writeAsUser = c.upload(box, "/root/planted", "x".getBytes());
        assertTrue(writeAsUser.status() >= 400 && writeAsUser.status() < 500, writeAsUser.status() + " " + writeAsUser.body());
        assertEquals("absent\n", c.run(box, "test -e /root/planted && echo present || echo absent", "root").stdout());
        // As root (username=root, what the SDKs send for {user: 'root'}), it is allowed.
        Map<String, String> h = Map.of("E2b-Sandbox-Id", box.id(), "X-Access-Token", box.token());
        RawClient.Response asRoot = c.call("GET", "/files?path=" + q("/root/secret") + "&username=root", null, h);
        assertEquals(200, asRoot.status(), asRoot.body());
        assertEquals("root-only\n", asRoot.body());
    }

    @Test
    void overwritingIsAtomic() throws Exception {
        int size = 1024 * 1024;
        byte[] a = new byte[size], b = new byte[size];
        Arrays.fill(a, (byte) 'A');
        Arrays.fill(b, (byte) 'B');
        assertWritten(c.upload(box, "/home/user/atomic.bin", a), "/home/user/atomic.bin");
        String reader = """
                python3 -c '
                import time, sys
                p = "/home/user/atomic.bin"
                n = %d
                A = b"A" * n
                B = b"B" * n
                print("ready", flush=True)
                end = time.time() + 4
                reads = bad = 0
                kinds = set()
                while time.time() < end:
                    try:
                        with open(p, "rb") as f:
                            d = f.read()
                    except FileNotFoundError:
                        bad += 1
                        continue
                    reads += 1
                    if d == A:
                        kinds.add("A")
                    elif d == B:
                        kinds.add("B")
                    else:
                        bad += 1
                print(reads, bad, "".join(sorted(kinds)))
                '
                """.formatted(size);
        CompletableFuture<Void> ready = new CompletableFuture<>();
        CompletableFuture<RawClient.Streamed> inside = CompletableFuture.supplyAsync(() ->
                c.startLive(box, RawClient.bash(reader, Map.of()), null, f -> {
                    if ("data".equals(f.kind())) ready.complete(null);
                }));
        ready.get(30, TimeUnit.SECONDS);
        AtomicBoolean stop = new AtomicBoolean();
        AtomicInteger downloads = new AtomicInteger(), torn = new AtomicInteger();
        CompletableFuture<Void> outside = CompletableFuture.runAsync(() -> {
            while (!stop.get()) {
                byte[] got = c.download(box, "/home/user/atomic.bin").body();
                downloads.incrementAndGet();
                if (!Arrays.equals(got, a) && !Arrays.equals(got, b)) torn.incrementAndGet();
            }
        });
        int writes = 0;
        long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(3000);
        while (System.nanoTime() < until) {
            assertEquals(200, c.upload(box, "/home/user/atomic.bin", writes % 2 == 0 ? b : a).status());
            writes++;
        }
        stop.set(true);
        outside.get(30, TimeUnit.SECONDS);
        RawClient.Streamed r = inside.get(30, TimeUnit.SECONDS);
        assertNotNull(r.end());
        String[] result = r.out().lines().toList().getLast().split(" ");
        assertTrue(writes > 4, "writes " + writes);
        assertTrue(Integer.parseInt(result[0]) > 10, "reads inside: " + r.out());
        assertEquals("0", result[1], "torn or missing reads inside the sandbox while " + writes + " overwrites ran: " + r.out());
        assertEquals("AB", result[2], "the reader saw both versions: " + r.out());
        assertEquals(0, torn.get(), "torn downloads among " + downloads.get());
        assertTrue(downloads.get() > 0);
        assertEquals("", sh("ls -a /home/user | grep stockade-tmp || true"), "no temporary files left behind");
    }
}
