package dev.stockade.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.runtime.Capabilities;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.Socket;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * File metadata as E2B's envd 0.6.2 keeps it: {@code X-Metadata-<key>} headers of an upload stored
 * with the file as {@code user.e2b.<key>} extended attributes, shown by the write answer, Stat,
 * ListDir and Move, replaced by an overwrite, visible to and settable by code in the sandbox, kept
 * by pause and snapshots; the limits (key 246 bytes, 4096 in all) and hostile headers refused with
 * a 400 before anything is written. A runtime without {@code user-xattrs} must refuse metadata.
 */
public abstract class FileMetadataContract extends RuntimeContract {
    /** The sandbox of the running test ({@link #inABox}). */
    RawClient.Box box;

    @BeforeAll
    void up() {
        startServer();
    }

    /** Runs {@code test} with {@link #box} a new sandbox, killed afterwards. */
    void inABox(Runnable test) {
        box = c.create(Map.of("templateID", "base", "timeout", 120));
        try {
            test.run();
        } finally {
            c.kill(box);
            box = null;
        }
    }

    RawClient.Response upload(RawClient.Box b, String path, String content, Map<String, String> metadata) {
        Map<String, String> h = new HashMap<>(c.envd(b));
        h.put("Content-Type", "application/octet-stream");
        metadata.forEach((k, v) -> h.put("X-Metadata-" + k, v));
        return c.call("POST", "/files?path=" + URLEncoder.encode(path, StandardCharsets.UTF_8),
                content.getBytes(StandardCharsets.UTF_8), h);
    }

    Map<String, String> metadataOf(JsonNode entry) {
        Map<String, String> found = new LinkedHashMap<>();
        entry.path("metadata").properties().forEach(e -> found.put(e.getKey(), e.getValue().asText()));
        return found;
    }

    Map<String, String> stat(RawClient.Box b, String path) {
        RawClient.Response st = c.rpc(b, "filesystem.Filesystem/Stat", Map.of("path", path));
        assertEquals(200, st.status(), st.body());
        assertFalse(st.json().path("entry").has("metadata") && st.json().path("entry").path("metadata").isEmpty(),
                "no metadata is an absent field: " + st.body());
        return metadataOf(st.json().path("entry"));
    }

    String sh(String cmd) {
        RawClient.Run r = c.run(box, cmd);
        assertEquals(0, r.exitCode(), () -> cmd + " → " + r.stderr());
        return r.stdout();
    }

    @Test
    void metadataLivesWithTheFile() {
        requires(Capabilities.USER_XATTRS, "it stores metadata as user.e2b.* extended attributes");
        inABox(() -> {
            RawClient.Response w = upload(box, "md/a.txt", "one", Map.of("Author", "mish", "purpose", "upload"));
            assertEquals(200, w.status(), w.body());
            Map<String, String> md = Map.of("author", "mish", "purpose", "upload");
            assertEquals(md, metadataOf(w.json().get(0)), "keys are lowercased: " + w.body());
            assertEquals(md, stat(box, "md/a.txt"));
            // On the file, owned by the user, as code in the sandbox sees it.
            assertEquals("user mish\n", sh("stat -c %U /home/user/md/a.txt | tr -d '\\n'; echo -n ' ';"
                    + " python3 -c \"import os; print(os.getxattr('/home/user/md/a.txt', 'user.e2b.author').decode())\""));

            RawClient.Response list = c.rpc(box, "filesystem.Filesystem/ListDir", Map.of("path", "md"));
            assertEquals(md, metadataOf(list.json().path("entries").get(0)), list.body());
            RawClient.Response moved = c.rpc(box, "filesystem.Filesystem/Move",
                    Map.of("source", "md/a.txt", "destination", "md/b.txt"));
            assertEquals(md, metadataOf(moved.json().path("entry")), moved.body());

            assertEquals(Map.of("stage", "2"), metadataOf(upload(box, "md/b.txt", "two", Map.of("stage", "2")).json().get(0)));
            RawClient.Response plain = upload(box, "md/b.txt", "three", Map.of());
            assertFalse(plain.json().get(0).has("metadata"), "an overwrite without metadata clears it: " + plain.body());
            assertEquals(Map.of(), stat(box, "md/b.txt"));

            // Multipart: the request's pairs go to every file; a repeated header keeps its first value.
            byte[] body = ("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/home/user/md/m1.txt\"\r\n\r\nx\r\n"
                    + "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"/home/user/md/m2.txt\"\r\n\r\ny\r\n--b--\r\n")
                    .getBytes(StandardCharsets.UTF_8);
            String head = "POST /files HTTP/1.1\r\nHost: x\r\nE2b-Sandbox-Id: " + box.id() + "\r\nE2b-Sandbox-Port: 49983\r\n"
                    + "X-Access-Token: " + box.token() + "\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                    + "X-Metadata-Source: first\r\nx-metadata-source: second\r\nContent-Length: " + body.length + "\r\n\r\n";
            String answer = raw(head, body);
            assertTrue(answer.startsWith("HTTP/1.1 200"), answer);
            assertEquals(Map.of("source", "first"), stat(box, "md/m1.txt"));
            assertEquals(Map.of("source", "first"), stat(box, "md/m2.txt"));

            // Set by code in the sandbox: shown, others' user.* attributes not; what is shown is bounded.
            sh("cd /home/user/md && echo z > own.txt && python3 -c \"import os\n"
                    + "os.setxattr('own.txt', 'user.e2b.by', b'code'); os.setxattr('own.txt', 'user.other', b'x')\n"
                    + "os.setxattr('own.txt', 'user.e2b.huge', b'h' * 60000)\n"
                    + "[os.setxattr('own.txt', 'user.e2b.k%d' % i, b'v' * 900) for i in range(8)]\"");
            Map<String, String> own = stat(box, "md/own.txt");
            assertEquals("code", own.get("by"), own.toString());
            assertFalse(own.containsKey("other") || own.containsKey("huge"), own.keySet().toString());
            int total = own.entrySet().stream().mapToInt(e -> 9 + e.getKey().length() + e.getValue().length()).sum();
            assertTrue(total <= 4096, "shown metadata stays within 4096 bytes: " + total);

            // The limits, exactly: the longest key and the largest total are stored.
            String key = "k".repeat(246);
            assertEquals(200, upload(box, "md/longkey.txt", "k", Map.of(key, "v")).status());
            String fill = "f".repeat(4096 - 9 - 1);
            RawClient.Response full = upload(box, "md/full.txt", "f", Map.of("f", fill));
            assertEquals(200, full.status(), full.body());
            assertEquals(Map.of("f", fill), stat(box, "md/full.txt"));
        });
    }

    @Test
    void limitsAndHostileHeadersAreRefusedBeforeAnythingIsWritten() {
        inABox(() -> {
            String path = "/home/user/refused.txt";
            List<Map<String, String>> bad = List.of(
                    Map.of("k".repeat(247), "v"),
                    Map.of("a", "x".repeat(2100), "b", "y".repeat(2100)));
            for (Map<String, String> md : bad) {
                RawClient.Response r = upload(box, path, "x", md);
                ApiAssertions.assertError(r, 400);
            }
            // What an HTTP client library would not send: raw bytes on the wire. (The HTTP server reads a
            // tab inside a value as a space and trims control characters at a value's ends.)
            for (String header : List.of("X-Metadata-: empty-key", "X-Metadata-k: caf\u00e9", "X-Metadata-k: v\u0001w",
                    "X-Metadata-k\u00e9y: v", "X-Metadata-k: v\u007f", "X-Metadata-k/v: slash")) {
                String head = "POST /files?path=" + URLEncoder.encode(path, StandardCharsets.UTF_8) + " HTTP/1.1\r\nHost: x\r\n"
                        + "E2b-Sandbox-Id: " + box.id() + "\r\nE2b-Sandbox-Port: 49983\r\nX-Access-Token: " + box.token()
                        + "\r\nContent-Type: application/octet-stream\r\n" + header + "\r\nContent-Length: 1\r\n\r\n";
                String answer = raw(head, new byte[] {'x'});
                assertTrue(answer.startsWith("HTTP/1.1 400"), header + " → " + answer);
            }
            assertEquals("absent\n", sh("test -e " + path + " && echo present || echo absent"));
        });
    }

    @Test
    void keptByPauseAndSnapshots() {
        requires(Capabilities.USER_XATTRS, "it stores metadata as user.e2b.* extended attributes");
        requires(Capabilities.SNAPSHOT, "it snapshots a sandbox with metadata on its files");
        RawClient.Box origin = c.create(Map.of("templateID", "base", "timeout", 120));
        RawClient.Box fork = null;
        String snapId = null;
        try {
            assertEquals(200, upload(origin, "kept.txt", "k", Map.of("tag", "kept")).status());
            if (capabilities().contains(Capabilities.PAUSE)) {
                assertEquals(200, c.call("POST", "/sandboxes/" + origin.id() + "/pause", Map.of()).status());
                assertEquals(200, c.call("POST", "/v2/sandboxes/" + origin.id() + "/connect", Map.of("timeout", 120)).status());
                assertEquals(Map.of("tag", "kept"), stat(origin, "kept.txt"), "after pause and resume");
            }
            RawClient.Response made = c.call("POST", "/sandboxes/" + origin.id() + "/snapshots", Map.of());
            assertEquals(201, made.status(), made.body());
            snapId = made.json().path("snapshotID").asText();
            RawClient.Response cr = c.call("POST", "/v2/sandboxes", Map.of("templateID", snapId, "timeout", 120));
            assertEquals(201, cr.status(), cr.body());
            fork = new RawClient.Box(cr.json().get("sandboxID").asText(), cr.json().get("envdAccessToken").asText());
            assertEquals(Map.of("tag", "kept"), stat(fork, "kept.txt"), "in a sandbox started from a snapshot");
        } finally {
            if (fork != null) c.kill(fork);
            c.kill(origin);
            if (snapId != null) c.call("DELETE", "/templates/" + snapId, null);
        }
    }

    @Test
    void withoutUserXattrsMetadataIsRefusedAndNothingWritten() {
        if (capabilities().contains(Capabilities.USER_XATTRS)) return; // metadataLivesWithTheFile covers it
        inABox(() -> {
            RawClient.Response r = upload(box, "/home/user/nometa.txt", "x", Map.of("author", "mish"));
            ApiAssertions.assertError(r, 400);
            assertTrue(r.json().path("message").asText().contains("extended attributes"), r.body());
            assertEquals("absent\n", sh("test -e /home/user/nometa.txt && echo present || echo absent"));
            RawClient.Response plain = upload(box, "/home/user/nometa.txt", "x", Map.of());
            assertEquals(200, plain.status(), plain.body());
            assertEquals(Map.of(), stat(box, "/home/user/nometa.txt"));
        });
    }

    /** One request written byte by byte (ISO-8859-1, as a hostile client may), the answer's head. */
    String raw(String head, byte[] body) {
        try (Socket s = new Socket(c.base.getHost(), c.base.getPort())) {
            s.setSoTimeout(60_000);
            OutputStream out = s.getOutputStream();
            out.write(head.getBytes(StandardCharsets.ISO_8859_1));
            out.write(body);
            out.flush();
            InputStream in = s.getInputStream();
            ByteArrayOutputStream got = new ByteArrayOutputStream();
            byte[] buf = new byte[8192];
            int n;
            while ((n = in.read(buf)) > 0) {
                got.write(buf, 0, n);
                if (got.toString(StandardCharsets.ISO_8859_1).contains("\r\n\r\n")) break;
            }
            return got.toString(StandardCharsets.ISO_8859_1);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
