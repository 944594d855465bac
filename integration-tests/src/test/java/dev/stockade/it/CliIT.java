package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.conformance.TestServer;
import dev.stockade.sdk.SandboxInfo;
import dev.stockade.sdk.StockadeClient;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The {@code stockade} command line (issue 2, item 4) as a user runs it: a separate JVM running
 * {@code dev.stockade.cli.Main}, exactly what the {@code ./stockade} launcher executes, against a
 * real server. Covers run (exit codes, streams, cleanup, Ctrl-C, the embedded server), exec, create,
 * ls, kill, cp both ways, and serve with SIGTERM.
 */
class CliIT {
    static TestServer ts;
    static StockadeClient client;

    @BeforeAll
    static void up() {
        ts = new TestServer();
        client = StockadeClient.builder().apiUrl(ts.url()).apiKey(TestServer.KEY).build();
    }

    @AfterAll
    static void down() {
        try {
            if (client != null) client.close();
        } finally {
            if (ts != null) ts.close();
        }
    }

    record Result(int exit, String out, String err) {
        @Override
        public String toString() {
            return "exit " + exit + "\n--- stdout\n" + out + "\n--- stderr\n" + err;
        }
    }

    /** The CLI's JVM, configured for the shared test server unless {@code env} says otherwise. */
    static ProcessBuilder cli(Map<String, String> env, String... args) throws IOException {
        List<String> cmd = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"),
                "dev.stockade.cli.Main"));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        Map<String, String> e = pb.environment();
        for (String v : List.of("STOCKADE_URL", "STOCKADE_API_KEY", "E2B_API_URL", "E2B_API_KEY", "E2B_SANDBOX_URL")) e.remove(v);
        // Never discover a developer's own `stockade serve`.
        e.put("STOCKADE_DATA_DIR", "/nonexistent/stockade-cli-it");
        e.put("STOCKADE_URL", ts.url());
        e.put("STOCKADE_API_KEY", TestServer.KEY);
        env.forEach((k, v) -> {
            if (v == null) e.remove(k);
            else e.put(k, v);
        });
        return pb;
    }

    static Result run(Map<String, String> env, byte[] stdin, String... args) throws Exception {
        Process p = cli(env, args).start();
        CompletableFuture<byte[]> out = CompletableFuture.supplyAsync(() -> readAll(p.getInputStream()));
        CompletableFuture<byte[]> err = CompletableFuture.supplyAsync(() -> readAll(p.getErrorStream()));
        try (var in = p.getOutputStream()) {
            if (stdin != null) in.write(stdin);
        }
        if (!p.waitFor(180, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("the CLI did not finish: " + String.join(" ", args));
        }
        return new Result(p.exitValue(), new String(out.get(), StandardCharsets.UTF_8), new String(err.get(), StandardCharsets.UTF_8));
    }

    static Result run(String... args) throws Exception {
        return run(Map.of(), null, args);
    }

    private static byte[] readAll(java.io.InputStream in) {
        try {
            return in.readAllBytes();
        } catch (IOException e) {
            return new byte[0];
        }
    }

    static List<SandboxInfo> cliSandboxes() {
        return client.list().stream().filter(s -> "run".equals(s.metadata().get("stockade-cli"))).toList();
    }

    static Path script(Path dir, String name, String body) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, body);
        return p;
    }

    // ---------------------------------------------------------------------------------------------

    @Test
    void runStreamsPassesTheExitCodeAndCleansUp(@TempDir Path tmp) throws Exception {
        Path s = script(tmp, "hello world.py", """
                import sys
                print("args:", sys.argv[1:])
                print("to stderr", file=sys.stderr)
                print("é ✓")
                sys.exit(3)
                """);
        Result r = run("run", s.toString(), "a b", "--flag", "-i");
        assertEquals(3, r.exit(), r.toString());
        assertEquals("args: ['a b', '--flag', '-i']\né ✓\n", r.out(), r.toString());
        assertEquals("to stderr\n", r.err(), r.toString());
        assertEquals(List.of(), cliSandboxes(), "run kills its sandbox");

        Result ok = run("run", "--env", "WHO=world", script(tmp, "ok.py", "import os\nprint('hi', os.environ['WHO'])\n").toString());
        assertEquals(0, ok.exit(), ok.toString());
        assertEquals("hi world\n", ok.out());

        Result in = run(Map.of(), "from stdin\n".getBytes(StandardCharsets.UTF_8), "run", "-i",
                script(tmp, "echo.py", "import sys\nprint(sys.stdin.read().upper(), end='')\n").toString());
        assertEquals("FROM STDIN\n", in.out(), in.toString());
    }

    @Test
    void runReportsWhyTheScriptWasStopped(@TempDir Path tmp) throws Exception {
        Result r = run("run", "--timeout", "1", script(tmp, "slow.py", "import time\ntime.sleep(30)\n").toString());
        assertEquals(124, r.exit(), r.toString());
        assertTrue(r.err().contains("timeout"), r.toString());
        assertEquals(List.of(), cliSandboxes());
    }

    @Test
    void ctrlCKillsTheSandbox(@TempDir Path tmp) throws Exception {
        Path s = script(tmp, "long.py", "import time\nprint('started', flush=True)\ntime.sleep(120)\n");
        Process p = cli(Map.of(), "run", s.toString()).redirectErrorStream(true).start();
        BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        assertEquals("started", out.readLine());
        assertEquals(1, cliSandboxes().size());
        new ProcessBuilder("kill", "-INT", Long.toString(p.pid())).start().waitFor();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the CLI must exit on SIGINT");
        assertEquals(List.of(), cliSandboxes(), "the sandbox must be killed on Ctrl-C");
    }

    @Test
    void createExecCpLsKill(@TempDir Path tmp) throws Exception {
        Result created = run("create", "--timeout", "120", "--metadata", "suite=CliIT");
        assertEquals(0, created.exit(), created.toString());
        String id = created.out().strip();
        assertTrue(id.matches("[A-Za-z0-9_-]+"), created.toString());
        try {
            Result ls = run("ls");
            assertEquals(0, ls.exit(), ls.toString());
            assertTrue(ls.out().startsWith("SANDBOX ID"), ls.out());
            assertTrue(ls.out().contains(id), ls.out());
            assertTrue(run("ls", "-q").out().lines().toList().contains(id));

            Result exec = run("exec", id, "--", "sh", "-c", "echo \"$0\"; echo oops >&2; exit 7", "arg with space");
            assertEquals(7, exec.exit(), exec.toString());
            assertEquals("arg with space\n", exec.out());
            assertEquals("oops\n", exec.err());
            Result line = run("exec", "--cwd", "/tmp", id, "--", "pwd && echo $HOME | tr a-z A-Z");
            assertEquals("/tmp\n/HOME/USER\n", line.out(), line.toString());
            Result piped = run(Map.of(), "to the sandbox".getBytes(StandardCharsets.UTF_8), "exec", "-i", id, "--", "wc", "-c");
            assertEquals("14", piped.out().strip(), piped.toString());

            byte[] blob = new byte[3 * 1024 * 1024 + 17];
            new SplittableRandom(3).nextBytes(blob);
            Path up = tmp.resolve("blob.bin");
            Files.write(up, blob);
            Result cpUp = run("cp", up.toString(), id + ":data/");
            assertEquals(0, cpUp.exit(), cpUp.toString());
            assertEquals(Integer.toString(blob.length), run("exec", id, "--", "stat -c %s data/blob.bin").out().strip());
            Path down = tmp.resolve("back.bin");
            Result cpDown = run("cp", id + ":/home/user/data/blob.bin", down.toString());
            assertEquals(0, cpDown.exit(), cpDown.toString());
            assertArrayEquals(blob, Files.readAllBytes(down));
            Path intoDir = Files.createDirectory(tmp.resolve("dir"));
            assertEquals(0, run("cp", id + ":data/blob.bin", intoDir.toString()).exit());
            assertArrayEquals(blob, Files.readAllBytes(intoDir.resolve("blob.bin")));
            assertEquals(0, run(Map.of(), "via stdin".getBytes(StandardCharsets.UTF_8), "cp", "-", id + ":/tmp/s.txt").exit());
            assertEquals("via stdin", run("cp", id + ":/tmp/s.txt", "-").out());
            Result missing = run("cp", id + ":/nope", tmp.resolve("x").toString());
            assertEquals(1, missing.exit(), missing.toString());
            assertFalse(Files.exists(tmp.resolve("x")));

            Result killed = run("kill", id);
            assertEquals(0, killed.exit(), killed.toString());
            assertEquals(id + "\n", killed.out());
            assertFalse(run("ls", "-q").out().contains(id));
            Result gone = run("exec", id, "--", "true");
            assertEquals(1, gone.exit(), gone.toString());
            assertTrue(gone.err().contains(id), gone.toString());
            Result again = run("kill", id);
            assertEquals(1, again.exit(), again.toString());
        } finally {
            client.kill(id);
        }
    }

    @Test
    void badKeyAndUnknownSandboxFailWithExitOne() throws Exception {
        Result r = run(Map.of("STOCKADE_API_KEY", "e2b_0bad"), null, "ls");
        assertEquals(1, r.exit(), r.toString());
        assertTrue(r.err().contains("API key"), r.toString());
        Result u = run("exec", "no-such-sandbox", "--", "true");
        assertEquals(1, u.exit(), u.toString());
    }

    @Test
    void runStartsAnEmbeddedServerWhenNoneIsConfigured(@TempDir Path tmp) throws Exception {
        Path dir = dataDir("ce");
        try {
            Map<String, String> env = new HashMap<>();
            env.put("STOCKADE_URL", null);
            env.put("STOCKADE_API_KEY", null);
            env.put("STOCKADE_DATA_DIR", dir.toString());
            Result r = run(env, null, "run", script(tmp, "emb.py", "print('embedded ok')\nraise SystemExit(5)\n").toString());
            assertEquals(5, r.exit(), r.toString());
            assertEquals("embedded ok\n", r.out(), r.toString());
            assertEquals("", r.err(), "the embedded server is quiet");
            TestServer.assertNoLeaks(dir);
        } finally {
            deleteTree(dir);
        }
    }

    @Test
    void serveRunsInTheForegroundAndStopsCleanlyOnSigterm() throws Exception {
        Path dir = dataDir("cs");
        Process p = cli(Map.of("STOCKADE_API_KEY", "e2b_" + "ab".repeat(20)), "serve", "--port", "0", "--data-dir", dir.toString())
                .redirectErrorStream(true).start();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            StringBuilder banner = new StringBuilder();
            String url = null;
            Pattern listening = Pattern.compile("Stockade is listening on (http://\\S+) ");
            for (String l; url == null && (l = out.readLine()) != null; ) {
                banner.append(l).append('\n');
                Matcher m = listening.matcher(l);
                if (m.find()) url = m.group(1);
            }
            assertTrue(url != null, "no banner: " + banner);
            for (String l; (l = out.readLine()) != null && !l.startsWith("Press Ctrl-C"); ) banner.append(l).append('\n');
            String b = banner.toString();
            // The key came from the environment: the banner says so and never prints it (issue 15).
            assertTrue(b.contains("E2B_API_URL=" + url + " E2B_SANDBOX_URL=" + url + " E2B_API_KEY=\"$STOCKADE_API_KEY\""), b);
            assertTrue(b.contains("API key: from $STOCKADE_API_KEY; not printed"), b);
            assertFalse(b.contains("abab"), b);
            assertTrue(Files.exists(dir.resolve("serve.json")));

            try (StockadeClient c = StockadeClient.builder().apiUrl(url).apiKey("e2b_" + "ab".repeat(20)).build();
                    var sb = c.create()) {
                assertEquals("served\n", sb.commands().run("echo served").stdout());
                // Another CLI finds this server through the data directory alone.
                Map<String, String> env = new HashMap<>();
                env.put("STOCKADE_URL", null);
                env.put("STOCKADE_API_KEY", null);
                env.put("STOCKADE_DATA_DIR", dir.toString());
                Result ls = run(env, null, "ls", "-q");
                assertEquals(sb.id() + "\n", ls.out(), ls.toString());
                // A second server on the same directory is refused: it would reap this one's sandboxes.
                Result second = run(Map.of(), null, "serve", "--port", "0", "--data-dir", dir.toString());
                assertEquals(1, second.exit(), second.toString());
                assertTrue(second.err().contains("another Stockade server is using"), second.toString());
            }
            p.destroy(); // SIGTERM
            assertTrue(p.waitFor(30, TimeUnit.SECONDS), "serve must stop on SIGTERM");
            assertEquals(143, p.exitValue());
            assertFalse(Files.exists(dir.resolve("serve.json")), "serve.json is removed on the way out");
            TestServer.assertNoLeaks(dir);
        } finally {
            p.destroyForcibly();
            deleteTree(dir);
        }
    }

    static Path dataDir(String prefix) throws IOException {
        Path base = Path.of("/tmp/stockade-it");
        Files.createDirectories(base);
        Files.setPosixFilePermissions(base, PosixFilePermissions.fromString("rwx--x--x"));
        Path dir = Files.createTempDirectory(base, prefix);
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
        return dir;
    }

    static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) return;
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        }
    }
}
