package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.conformance.TestServer;
import dev.stockade.sdk.AuthenticationException;
import dev.stockade.sdk.CommandExitException;
import dev.stockade.sdk.CommandHandle;
import dev.stockade.sdk.CommandResult;
import dev.stockade.sdk.CreateOptions;
import dev.stockade.sdk.EntryInfo;
import dev.stockade.sdk.FileType;
import dev.stockade.sdk.InvalidArgumentException;
import dev.stockade.sdk.Limits;
import dev.stockade.sdk.NotFoundException;
import dev.stockade.protocol.Outcome;
import dev.stockade.sdk.ProcessInfo;
import dev.stockade.sdk.RunOptions;
import dev.stockade.sdk.Sandbox;
import dev.stockade.sdk.SandboxInfo;
import dev.stockade.sdk.StockadeClient;
import dev.stockade.sdk.TimeoutException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Stockade's Java SDK against a real server and real runc sandboxes (issue 2, item 3): lifecycle,
 * commands with live streaming, background processes and stdin, timeouts, the Stockade outcome
 * extension, the file API up to 50 MiB, and typed exceptions. One shared sandbox for read-mostly
 * checks; fresh ones where a test changes the sandbox itself. {@link TestServer#close} asserts
 * that nothing is left on the host.
 */
class JavaSdkIT {
    static TestServer ts;
    static StockadeClient client;
    static Sandbox shared;

    @BeforeAll
    static void up() {
        ts = new TestServer();
        client = StockadeClient.builder().apiUrl(ts.url()).apiKey(TestServer.KEY).build();
        shared = client.create(CreateOptions.builder().timeout(Duration.ofMinutes(5)).build());
    }

    @AfterAll
    static void down() {
        try {
            if (shared != null) shared.close();
            if (client != null) client.close();
        } finally {
            if (ts != null) ts.close();
        }
    }

    // --- lifecycle --------------------------------------------------------------------------------

    @Test
    void lifecycleWithOptionsInfoListTimeoutAndClose() {
        Sandbox sb = client.create(CreateOptions.builder()
                .timeout(Duration.ofSeconds(120))
                .metadata("suite", "JavaSdkIT")
                .env("FROM_CREATE", "yes")
                .limits(Limits.builder().memoryMB(256).pids(128).build())
                .build());
        try (sb) {
            SandboxInfo info = sb.info();
            assertEquals(sb.id(), info.sandboxId());
            assertEquals("running", info.state());
            assertEquals("JavaSdkIT", info.metadata().get("suite"));
            assertNotNull(info.envdVersion());
            assertEquals(256, info.memoryMB());
            if (info.limits() != null) assertEquals(128, info.limits().pids());
            assertTrue(info.endAt().isAfter(Instant.now().plusSeconds(60)), "endAt " + info.endAt());

            assertTrue(client.list().stream().anyMatch(s -> s.sandboxId().equals(sb.id())));
            sb.setTimeout(Duration.ofSeconds(30));
            Instant end = sb.info().endAt();
            assertTrue(end.isBefore(Instant.now().plusSeconds(40)) && end.isAfter(Instant.now().plusSeconds(20)), "endAt " + end);

            assertEquals("yes\n", sb.commands().run("echo $FROM_CREATE").stdout());
            Sandbox again = client.connect(sb.id());
            assertEquals(sb.id(), again.id());
            assertEquals("yes\n", again.commands().run("echo $FROM_CREATE").stdout());
        }
        // close() killed it
        assertThrows(NotFoundException.class, sb::info);
        assertFalse(sb.kill(), "a second kill finds nothing");
        assertFalse(client.list().stream().anyMatch(s -> s.sandboxId().equals(sb.id())));
        assertThrows(NotFoundException.class, () -> client.connect(sb.id()));
        assertThrows(NotFoundException.class, () -> sb.commands().run("true"));
    }

    @Test
    void typedErrorsFromTheServer() {
        assertThrows(NotFoundException.class, () -> client.connect("no-such-sandbox"));
        assertFalse(client.kill("no-such-sandbox"));
        try (StockadeClient wrongKey = StockadeClient.builder().apiUrl(ts.url()).apiKey("e2b_00ff").build()) {
            assertThrows(AuthenticationException.class, wrongKey::list);
            assertThrows(AuthenticationException.class, wrongKey::create);
        }
        InvalidArgumentException tooMuch = assertThrows(InvalidArgumentException.class, () -> client.create(
                CreateOptions.builder().limits(Limits.builder().memoryMB(1 << 30).build()).build()));
        assertEquals(400, tooMuch.statusCode());
    }

    // --- commands ---------------------------------------------------------------------------------

    @Test
    void runReturnsOutputAndThrowsOnNonZeroExit() {
        CommandResult ok = shared.commands().run("echo out; echo err >&2");
        assertEquals(0, ok.exitCode());
        assertEquals("out\n", ok.stdout());
        assertEquals("err\n", ok.stderr());
        if (ok.outcome() != null) assertEquals(Outcome.EXITED, ok.outcome());

        CommandExitException e = assertThrows(CommandExitException.class,
                () -> shared.commands().run("echo partial; echo bad >&2; exit 42"));
        assertEquals(42, e.exitCode());
        assertEquals("partial\n", e.stdout());
        assertEquals("bad\n", e.stderr());
    }

    @Test
    void optionsReachTheCommand() {
        CommandResult r = shared.commands().run("pwd; echo $GREETING; whoami", RunOptions.builder()
                .cwd("/tmp").env("GREETING", "héllo wörld").build());
        assertEquals("/tmp\nhéllo wörld\nuser\n", r.stdout());
        assertEquals("root\n", shared.commands().run("whoami", RunOptions.builder().user("root").build()).stdout());
    }

    @Test
    void callbacksFireWhileTheCommandRuns() throws Exception {
        String gate = "/tmp/go-" + System.nanoTime();
        CountDownLatch firstLine = new CountDownLatch(1);
        List<String> chunks = new CopyOnWriteArrayList<>();
        CommandHandle h = shared.commands().start(
                "echo first; while [ ! -e " + gate + " ]; do sleep 0.05; done; echo second; echo warn >&2",
                RunOptions.builder()
                        .onStdout(s -> {
                            chunks.add("out:" + s);
                            if (s.contains("first")) firstLine.countDown();
                        })
                        .onStderr(s -> chunks.add("err:" + s))
                        .build());
        // The command cannot finish before the gate file exists: the first line must arrive first.
        assertTrue(firstLine.await(20, TimeUnit.SECONDS), "stdout callback did not fire while the command ran");
        assertEquals("first\n", h.stdout());
        shared.files().write(gate, "");
        CommandResult r = h.waitFor();
        assertEquals("first\nsecond\n", r.stdout());
        assertEquals("warn\n", r.stderr());
        assertEquals("out:first\n", chunks.getFirst());
        assertEquals(String.join("", chunks.stream().filter(c -> c.startsWith("out:")).map(c -> c.substring(4)).toList()),
                r.stdout());
    }

    @Test
    void backgroundProcessWithStdinListAndKill() {
        CommandHandle cat = shared.commands().start("cat", RunOptions.builder().stdin(true).build());
        assertTrue(cat.pid() > 0);
        List<ProcessInfo> procs = shared.commands().list();
        assertTrue(procs.stream().anyMatch(p -> p.pid() == cat.pid() && p.args().contains("cat")), procs.toString());
        cat.sendStdin("line one\n");
        shared.commands().sendStdin(cat.pid(), "línea dos\n".getBytes(StandardCharsets.UTF_8));
        cat.closeStdin();
        assertEquals("line one\nlínea dos\n", cat.waitFor().stdout());

        CommandHandle sleeper = shared.commands().start("sleep 300");
        assertTrue(shared.commands().kill(sleeper.pid()));
        CommandExitException killed = assertThrows(CommandExitException.class, sleeper::waitFor);
        assertTrue(killed.exitCode() != 0);
        assertFalse(shared.commands().kill(sleeper.pid()), "killing a finished process finds nothing");
        assertFalse(shared.commands().list().stream().anyMatch(p -> p.pid() == sleeper.pid()));
    }

    @Test
    void connectFollowsARunningProcess() {
        CommandHandle bg = shared.commands().start("sleep 1; echo later", RunOptions.builder().build());
        List<String> seen = new CopyOnWriteArrayList<>();
        CommandHandle follower = shared.commands().connect(bg.pid(), RunOptions.builder().onStdout(seen::add).build());
        assertEquals(bg.pid(), follower.pid());
        assertEquals("later\n", follower.waitFor().stdout());
        assertEquals(List.of("later\n"), seen);
        assertEquals("later\n", bg.waitFor().stdout());
    }

    @Test
    void runTimeoutKillsTheCommand() {
        long t0 = System.nanoTime();
        TimeoutException e = assertThrows(TimeoutException.class, () -> shared.commands().run(
                "sleep 30", RunOptions.builder().timeout(Duration.ofSeconds(1)).build()));
        long ms = (System.nanoTime() - t0) / 1_000_000;
        assertTrue(ms < 10_000, "took " + ms + " ms: " + e.getMessage());
        assertFalse(shared.commands().list().stream().anyMatch(p -> p.args().contains("sleep 30")),
                "the timed-out command must not keep running");
    }

    @Test
    void theServersCommandLimitReportsItsOutcome() {
        try (Sandbox sb = client.create(CreateOptions.builder().timeout(Duration.ofSeconds(60))
                .limits(Limits.builder().commandTimeoutSeconds(1).build()).build())) {
            CommandExitException e = assertThrows(CommandExitException.class, () -> sb.commands().run("sleep 20",
                    RunOptions.builder().timeout(Duration.ofSeconds(30)).build()));
            assertTrue(e.exitCode() != 0);
            if (e.result().outcome() != null) {
                assertEquals(Outcome.TIMEOUT, e.result().outcome());
                assertNotNull(e.result().reason());
            }
            assertEquals("still usable\n", sb.commands().run("echo still usable").stdout());
        }
    }

    // --- files ------------------------------------------------------------------------------------

    @Test
    void filesRoundTripAndMetadata(@TempDir Path tmp) throws IOException {
        var fs = shared.files();
        String dir = "/home/user/sdk-files-" + System.nanoTime();
        assertTrue(fs.makeDir(dir));
        assertFalse(fs.makeDir(dir), "makeDir on an existing directory answers false");
        EntryInfo w = fs.write(dir + "/a.txt", "ünïcode text\n");
        assertEquals(dir + "/a.txt", w.path());
        assertEquals("ünïcode text\n", fs.read(dir + "/a.txt"));
        assertEquals("ünïcode text\n", shared.commands().run("cat " + dir + "/a.txt").stdout(), "files are there for commands");

        byte[] binary = new byte[70_000];
        new SplittableRandom(7).nextBytes(binary);
        fs.write(dir + "/sub/b.bin", binary);
        assertArrayEquals(binary, fs.readBytes(dir + "/sub/b.bin"));
        Path local = tmp.resolve("local.bin");
        Files.write(local, binary);
        fs.write(dir + "/c.bin", local);
        try (InputStream in = fs.readStream(dir + "/c.bin")) {
            assertArrayEquals(binary, in.readAllBytes());
        }

        assertTrue(fs.exists(dir + "/a.txt"));
        assertFalse(fs.exists(dir + "/nope"));
        EntryInfo info = fs.getInfo(dir + "/sub/b.bin");
        assertEquals(FileType.FILE, info.type());
        assertEquals(binary.length, info.size());
        assertEquals(FileType.DIR, fs.getInfo(dir + "/sub").type());

        List<EntryInfo> top = fs.list(dir);
        assertEquals(List.of("a.txt", "c.bin", "sub"), top.stream().map(EntryInfo::name).sorted().toList());
        assertTrue(fs.list(dir, 2).stream().anyMatch(e -> e.path().equals(dir + "/sub/b.bin")));

        EntryInfo moved = fs.rename(dir + "/a.txt", dir + "/renamed.txt");
        assertEquals(dir + "/renamed.txt", moved.path());
        assertFalse(fs.exists(dir + "/a.txt"));

        assertThrows(NotFoundException.class, () -> fs.read(dir + "/nope"));
        assertThrows(NotFoundException.class, () -> fs.getInfo(dir + "/nope"));
        assertThrows(InvalidArgumentException.class, () -> fs.list(dir, 0));

        fs.remove(dir);
        assertFalse(fs.exists(dir));
    }

    @Test
    void fiftyMebibytesStreamBothWays() throws Exception {
        long size = 50L * 1024 * 1024;
        GeneratedStream source = new GeneratedStream(size, 42);
        String path = "/home/user/big-" + System.nanoTime() + ".bin";
        EntryInfo w = shared.files().write(path, source);
        assertEquals(path, w.path());
        String sent = HexFormat.of().formatHex(source.digest.digest());

        String inSandbox = shared.commands().run("sha256sum " + path + " | cut -d' ' -f1").stdout().strip();
        assertEquals(sent, inSandbox, "what arrived in the sandbox");

        MessageDigest got = MessageDigest.getInstance("SHA-256");
        long n = 0;
        try (InputStream in = shared.files().readStream(path)) {
            byte[] buf = new byte[1 << 16];
            int r;
            while ((r = in.read(buf)) > 0) {
                got.update(buf, 0, r);
                n += r;
            }
        }
        assertEquals(size, n);
        assertEquals(sent, HexFormat.of().formatHex(got.digest()), "what came back");
        assertEquals(size, shared.files().getInfo(path).size());
        shared.files().remove(path);
    }

    /** Pseudo-random bytes made on the fly (never held whole), hashed as they are read. */
    static final class GeneratedStream extends InputStream {
        final MessageDigest digest;
        private final SplittableRandom random;
        private long left;

        GeneratedStream(long size, long seed) throws NoSuchAlgorithmException {
            this.left = size;
            this.random = new SplittableRandom(seed);
            this.digest = MessageDigest.getInstance("SHA-256");
        }

        @Override
        public int read() {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] b, int off, int len) {
            if (left == 0) return -1;
            int n = (int) Math.min(len, left);
            byte[] chunk = new byte[n];
            random.nextBytes(chunk);
            System.arraycopy(chunk, 0, b, off, n);
            digest.update(chunk);
            left -= n;
            return n;
        }
    }
}
