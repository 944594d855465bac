package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.protocol.AgentException;
import dev.stockade.protocol.EntryInfo;
import dev.stockade.protocol.link.AgentClient;
import dev.stockade.protocol.link.FileRead;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/** File operations against the real agent script. */
class AgentFilesTest {
    private AgentProcess agent;
    private AgentClient client;

    @BeforeEach
    void start() throws IOException {
        agent = AgentProcess.start();
        client = agent.client;
    }

    @AfterEach
    void stop() throws IOException {
        agent.close();
    }

    private byte[] read(String path) throws IOException {
        try (FileRead read = client.readFile(path, "user")) {
            byte[] bytes = read.content().readAllBytes();
            assertEquals(read.size(), bytes.length);
            return bytes;
        }
    }

    @Test
    void everyByteValueRoundTrips() throws IOException {
        byte[] all = new byte[256];
        for (int i = 0; i < 256; i++) {
            all[i] = (byte) i;
        }
        EntryInfo written = client.writeFile("bytes.bin", new ByteArrayInputStream(all), "user");
        assertEquals(agent.userHome.resolve("bytes.bin").toString(), written.path());
        assertEquals("bytes.bin", written.name());
        assertEquals("file", written.type());
        assertEquals(256, written.size());
        assertEquals(0644, written.mode());
        assertEquals("-rw-r--r--", written.permissions());
        assertArrayEquals(all, read("bytes.bin"));
        assertArrayEquals(all, Files.readAllBytes(agent.userHome.resolve("bytes.bin")));
        if (AgentProcess.ROOT) {
            assertEquals(1000, Files.getAttribute(agent.userHome.resolve("bytes.bin"), "unix:uid"));
        }
    }

    @Test
    void twentyMebibytesBothWays() throws Exception {
        int size = 20 << 20;
        byte[] data = new byte[size];
        new Random(42).nextBytes(data);
        String sha = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));

        long start = System.nanoTime();
        EntryInfo entry = client.writeFile(agent.userHome + "/big/../big/data.bin", new ByteArrayInputStream(data), "root");
        long wrote = System.nanoTime();
        assertEquals(size, entry.size());
        assertEquals(agent.userHome + "/big/data.bin", entry.path());

        MessageDigest digest = MessageDigest.getInstance("SHA-256");
        long count;
        try (FileRead read = client.readFile(agent.userHome + "/big/data.bin", "user");
             InputStream in = new DigestInputStream(read.content(), digest)) {
            assertEquals(size, read.size());
            count = in.transferTo(OutputSink.INSTANCE);
        }
        long readDone = System.nanoTime();
        assertEquals(size, count);
        assertEquals(sha, HexFormat.of().formatHex(digest.digest()));
        System.out.printf("20 MiB: write %d ms, read %d ms%n", (wrote - start) / 1_000_000, (readDone - wrote) / 1_000_000);
    }

    @Test
    void writeReplacesAtomicallyAndWritesThroughSymlinks() throws IOException {
        client.writeFile("a.txt", stream("one"), "user");
        Files.setPosixFilePermissions(agent.userHome.resolve("a.txt"),
                java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"));
        EntryInfo replaced = client.writeFile(agent.userHome + "/a.txt", stream("two"), "root");
        assertEquals(0700, replaced.mode()); // a replaced file keeps its mode
        assertEquals("two", new String(read("a.txt"), StandardCharsets.UTF_8));

        Files.createSymbolicLink(agent.userHome.resolve("link.txt"), agent.userHome.resolve("a.txt"));
        client.writeFile("link.txt", stream("three"), "user");
        assertTrue(Files.isSymbolicLink(agent.userHome.resolve("link.txt")));
        assertEquals("three", Files.readString(agent.userHome.resolve("a.txt")));
        try (var names = Files.list(agent.userHome)) {
            assertTrue(names.noneMatch(p -> p.getFileName().toString().contains("stockade-tmp")));
        }

        client.makeDir("somedir", "user");
        assertCode(AgentException.Code.IS_A_DIRECTORY, () -> client.writeFile("somedir", stream("x"), "user"));
        client.writeFile("plain", stream("x"), "user");
        assertCode(AgentException.Code.NOT_A_DIRECTORY, () -> client.writeFile("plain/child", stream("x"), "user"));
        // A refused upload larger than the socket buffers: the answer still arrives.
        assertCode(AgentException.Code.IS_A_DIRECTORY,
                () -> client.writeFile("somedir", new ByteArrayInputStream(new byte[5 << 20]), "user"));
    }

    @Test
    void statListMkdirMoveRemove() throws IOException {
        assertTrue(client.makeDir("d1/d2/d3", "user"));
        assertFalse(client.makeDir("d1/d2", "user"));
        client.writeFile("d1/f1.txt", stream("hello"), "user");
        client.writeFile("d1/d2/f2.txt", stream("hi"), "user");
        Files.createSymbolicLink(agent.userHome.resolve("d1/link"), agent.userHome.resolve("d1/d2"));

        EntryInfo dir = client.stat("d1", "user");
        assertEquals("dir", dir.type());
        assertEquals("d1", dir.name());
        assertEquals(agent.userHome.resolve("d1").toString(), dir.path());
        assertNull(dir.symlinkTarget());
        assertTrue(dir.permissions().startsWith("d"));
        if (AgentProcess.ROOT) {
            assertEquals(1000, Files.getAttribute(agent.userHome.resolve("d1/d2/d3"), "unix:uid"));
        }
        EntryInfo link = client.stat("d1/link", "user");
        assertEquals("dir", link.type());
        assertEquals(agent.userHome.resolve("d1/d2").toString(), link.symlinkTarget());

        List<String> depth1 = client.listDir("d1", 1, "user").stream().map(EntryInfo::name).toList();
        assertEquals(List.of("d2", "f1.txt", "link"), depth1);
        List<String> depth2 = client.listDir("~/d1", 2, "user").stream()
                .map(e -> agent.userHome.resolve("d1").relativize(Path.of(e.path())).toString()).toList();
        assertEquals(List.of("d2", "d2/d3", "d2/f2.txt", "f1.txt", "link"), depth2);
        assertEquals(5, client.listDir(agent.userHome.resolve("d1").toString(), 9, "root").size());
        assertCode(AgentException.Code.NOT_A_DIRECTORY, () -> client.listDir("d1/f1.txt", 1, "user"));
        assertCode(AgentException.Code.INVALID_ARGUMENT, () -> client.listDir("d1", 0, "user"));

        EntryInfo moved = client.move("d1/f1.txt", "elsewhere/f1-moved.txt", "user");
        assertEquals(agent.userHome.resolve("elsewhere/f1-moved.txt").toString(), moved.path());
        assertEquals("hello", new String(read("elsewhere/f1-moved.txt"), StandardCharsets.UTF_8));
        assertCode(AgentException.Code.NOT_FOUND, () -> client.stat("d1/f1.txt", "user"));

        client.remove("d1", "user");
        assertCode(AgentException.Code.NOT_FOUND, () -> client.stat("d1", "user"));
        client.remove("elsewhere/f1-moved.txt", "user");
        assertCode(AgentException.Code.NOT_FOUND, () -> client.remove("elsewhere/f1-moved.txt", "user"));
        assertCode(AgentException.Code.INVALID_ARGUMENT, () -> client.remove("/", "root"));
    }

    @Test
    void errorsHaveCodes() {
        assertCode(AgentException.Code.NOT_FOUND, () -> client.stat("/no/such/file", "user"));
        assertCode(AgentException.Code.NOT_FOUND, () -> client.readFile("missing.txt", "user"));
        assertCode(AgentException.Code.NOT_FOUND, () -> client.listDir("missing", 1, "user"));
        assertCode(AgentException.Code.NOT_FOUND, () -> client.move("missing", "other", "user"));
        assertCode(AgentException.Code.IS_A_DIRECTORY, () -> client.readFile("~", "user"));
        assertCode(AgentException.Code.INVALID_ARGUMENT, () -> client.readFile("/dev/null", "user"));
        assertCode(AgentException.Code.INVALID_ARGUMENT, () -> client.stat("", "user"));
        assertCode(AgentException.Code.INVALID_ARGUMENT, () -> client.stat("a\0b", "user"));
        assertCode(AgentException.Code.INVALID_ARGUMENT, () -> client.stat("x", "nobody"));
        AgentException e = assertThrows(AgentException.class, () -> client.stat("/no/such/file", "user"));
        assertEquals("cannot stat /no/such/file: No such file or directory", e.getMessage());
    }

    @Test
    void pseudoFilesReadWhole() throws IOException {
        byte[] version = read("/proc/version"); // stat says 0 bytes
        assertTrue(new String(version, StandardCharsets.UTF_8).startsWith("Linux version"));
    }

    @Test
    void emptyFile() throws IOException {
        assertEquals(0, client.writeFile("empty", InputStream.nullInputStream(), "user").size());
        assertEquals(0, read("empty").length);
    }

    private static InputStream stream(String text) {
        return new ByteArrayInputStream(text.getBytes(StandardCharsets.UTF_8));
    }

    private static void assertCode(AgentException.Code code, Executable call) {
        AgentException e = assertThrows(AgentException.class, call);
        assertEquals(code, e.code(), e.getMessage());
    }

    private static final class OutputSink extends java.io.OutputStream {
        static final OutputSink INSTANCE = new OutputSink();

        @Override
        public void write(int b) {}

        @Override
        public void write(byte[] b, int off, int len) {}
    }
}
