package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.conformance.RawClient;
import dev.stockade.conformance.TestServer;
import dev.stockade.server.StockadeServer;
import dev.stockade.server.config.ServerConfig;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A server killed with SIGKILL while its sandboxes write files and run background processes: the
 * next server on the same data directory takes every sandbox over — the same id and token, its
 * files (checked by SHA-256 against what the killed server acknowledged), its still-running
 * processes, its interpreter's state, its pause — and reports one whose container vanished
 * meanwhile as lost, with the reason, instead of recreating it. What belonged to no recorded
 * sandbox (a pooled one) is removed, and the end leaves nothing behind. An orderly stop (SIGTERM)
 * leaves the sandboxes to the next server the same way, unless serve was told to end them.
 */
class CrashRecoveryIT {
    private static final int SANDBOXES = 20;
    private static final String WRITER = "nohup sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/n.tmp; mv /tmp/n.tmp /tmp/n;"
            + " echo $i >> /home/user/log.txt; sleep 0.05; done' > /dev/null 2>&1 &";

    @Test
    void aRestartedServerTakesOverWhatAKilledOneLeftRunning() throws Exception {
        Path data = dataDir();
        // One pooled sandbox: recorded by nobody, it must be removed by the next server.
        Serve serve = serve(data, "--pool-size", "1", "--pool-min", "1", "--pool-preload", "none");
        Process server = serve.process();
        RawClient c = serve.client();
        List<RawClient.Box> boxes = new ArrayList<>();
        List<String> digests = new ArrayList<>();
        Random random = new Random(7);
        try {
            for (int i = 0; i < SANDBOXES; i++) {
                // The last one on the hardened tier: taken over through its own runtime.
                String template = i == SANDBOXES - 1 ? "base-hardened" : "base";
                RawClient.Box b = c.create(Map.of("templateID", template, "timeout", 600, "metadata", Map.of("n", Integer.toString(i))));
                byte[] content = new byte[64 * 1024 + i];
                random.nextBytes(content);
                assertEquals(200, c.upload(b, "/home/user/data.bin", content).status());
                digests.add(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(content)));
                c.run(b, WRITER);
                boxes.add(b);
            }
            assertEquals("41", c.execute(boxes.get(3), "x = 41\nx").text());
            assertEquals(200, c.call("POST", "/sandboxes/" + boxes.get(1).id() + "/pause", Map.of()).status());
            Thread.sleep(300); // the writers write while the server dies
        } finally {
            server.destroyForcibly(); // SIGKILL: no shutdown hook runs
            server.waitFor(30, TimeUnit.SECONDS);
        }
        // Meanwhile, sandbox 2's container is killed behind everyone's back.
        RawClient.Box gone = boxes.get(2);
        run("runc", "kill", "stockade-" + gone.id(), "KILL");
        Thread.sleep(300);
        run("runc", "delete", "--force", "stockade-" + gone.id());

        long t0 = System.nanoTime();
        try (StockadeServer next = StockadeServer.start(ServerConfig.defaults(data).withApiKey(TestServer.KEY))) {
            RawClient c2 = new RawClient(next.url(), TestServer.KEY);
            for (int i = 0; i < SANDBOXES; i++) {
                if (i == 2 || i == 1) continue;
                assertEquals("ok\n", c2.run(boxes.get(i), "echo ok").stdout());
            }
            double recoverMs = (System.nanoTime() - t0) / 1e6;
            System.out.printf("[CrashRecoveryIT] %d sandboxes answering %.0f ms after the new server's start began%n",
                    SANDBOXES - 2, recoverMs);

            // Exactly the recorded, surviving sandboxes: not the lost one, not the pooled one.
            long stateDirs = 0;
            for (String rt : List.of("runc", "runsc")) {
                try (var s = Files.list(data.resolve("runtime").resolve(rt).resolve("sandboxes"))) {
                    stateDirs += s.count();
                }
            }
            assertEquals(SANDBOXES - 1, stateDirs, "state directories after the take-over");
            assertEquals("runsc", c2.call("GET", "/sandboxes/" + boxes.get(SANDBOXES - 1).id(), null).json().path("runtime").asText());
            assertEquals(SANDBOXES - 1, c2.call("GET", "/v2/sandboxes?limit=100", null).json().size());

            for (int i = 0; i < SANDBOXES; i++) {
                if (i == 2) continue;
                RawClient.Box b = boxes.get(i);
                if (i == 1) {
                    assertEquals("paused", c2.call("GET", "/sandboxes/" + b.id(), null).json().path("state").asText());
                    assertEquals(200, c2.call("POST", "/sandboxes/" + b.id() + "/connect", Map.of()).status());
                }
                assertEquals(Integer.toString(i), c2.call("GET", "/sandboxes/" + b.id(), null).json().path("metadata").path("n").asText());
                // The same token still opens it (the E2B SDKs keep theirs).
                RawClient.Run sum = c2.run(b, "sha256sum /home/user/data.bin | cut -d' ' -f1");
                assertEquals(digests.get(i) + "\n", sum.stdout(), "sandbox " + i + "'s acknowledged file");
                // Its background writer never stopped: the counter moves on.
                long n1 = Long.parseLong(c2.run(b, "cat /tmp/n").stdout().strip());
                Thread.sleep(150);
                long n2 = Long.parseLong(c2.run(b, "cat /tmp/n").stdout().strip());
                assertTrue(n2 > n1 && n1 > 3, "sandbox " + i + ": counter " + n1 + " then " + n2);
            }
            assertEquals("42", c2.execute(boxes.get(3), "x + 1").text(), "the interpreter's state survived");

            RawClient.Response lost = c2.call("GET", "/sandboxes/" + gone.id(), null);
            assertEquals(404, lost.status());
            assertTrue(lost.body().contains("was lost") && lost.body().contains("container was gone"), lost.body());
            assertEquals(502, c2.rpc(gone, "filesystem.Filesystem/Stat", Map.of("path", "/")).status());
        }
        TestServer.assertNoLeaks(data);
        TestServer.deleteTree(data);
    }

    @Test
    void anOrderlyStopLeavesTheSandboxesToTheNextServerUnlessToldOtherwise() throws Exception {
        Path data = dataDir();
        Serve serve = serve(data, "--pool-size", "1", "--pool-min", "1", "--pool-preload", "none");
        List<RawClient.Box> boxes = new ArrayList<>();
        try {
            for (int i = 0; i < 2; i++) {
                RawClient.Box b = serve.client().create();
                serve.client().run(b, WRITER);
                serve.client().run(b, "echo kept > /home/user/f.txt");
                boxes.add(b);
            }
        } finally {
            serve.process().destroy(); // SIGTERM: an orderly stop
            assertTrue(serve.process().waitFor(60, TimeUnit.SECONDS), "serve stops on SIGTERM");
        }
        assertEquals(143, serve.process().exitValue());
        assertTrue(read(data.resolve("serve.log")).contains("2 sandbox(es) left running"), read(data.resolve("serve.log")));
        // A start that cannot listen (its port taken) fails without touching what it would have taken over.
        try (ServerSocket taken = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            org.junit.jupiter.api.Assertions.assertThrows(RuntimeException.class, () -> StockadeServer.start(
                    ServerConfig.defaults(data).withApiKey(TestServer.KEY).withPort(taken.getLocalPort())).close());
        }
        try (StockadeServer next = StockadeServer.start(ServerConfig.defaults(data).withApiKey(TestServer.KEY))) {
            RawClient c2 = new RawClient(next.url(), TestServer.KEY);
            try (var s = Files.list(data.resolve("runtime/runc/sandboxes"))) {
                assertEquals(2, s.count(), "the two sandboxes, not the pooled one");
            }
            for (RawClient.Box b : boxes) {
                assertEquals("kept\n", c2.run(b, "cat /home/user/f.txt").stdout());
                long n1 = Long.parseLong(c2.run(b, "cat /tmp/n").stdout().strip());
                Thread.sleep(150);
                assertTrue(Long.parseLong(c2.run(b, "cat /tmp/n").stdout().strip()) > n1, "its writer kept running");
            }
        }
        TestServer.assertNoLeaks(data);

        // --end-sandboxes-on-stop: nothing is left once serve has stopped.
        Serve ending = serve(data, "--pool-size", "1", "--pool-min", "1", "--pool-preload", "none", "--end-sandboxes-on-stop");
        try {
            ending.client().run(ending.client().create(), WRITER);
        } finally {
            ending.process().destroy();
            assertTrue(ending.process().waitFor(60, TimeUnit.SECONDS), "serve stops on SIGTERM");
        }
        TestServer.assertNoLeaks(data);
        TestServer.deleteTree(data);
    }

    record Serve(Process process, RawClient client) {}

    /** `stockade serve` in a JVM of its own on DATA (killed with SIGKILL or stopped with SIGTERM by the test). */
    private static Serve serve(Path data, String... extra) throws Exception {
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        List<String> argv = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                "dev.stockade.cli.Main", "serve", "--port", Integer.toString(port), "--data-dir", data.toString()));
        argv.addAll(List.of(extra));
        ProcessBuilder pb = new ProcessBuilder(argv).redirectErrorStream(true).redirectOutput(data.resolve("serve.log").toFile());
        pb.environment().put("STOCKADE_API_KEY", TestServer.KEY);
        Process server = pb.start();
        RawClient c = new RawClient(URI.create("http://127.0.0.1:" + port), TestServer.KEY);
        for (int i = 0; i < 600; i++) {
            try {
                if (c.call("GET", "/health", null).status() == 200) return new Serve(server, c);
            } catch (RuntimeException notYet) {
                // not listening yet
            }
            assertTrue(server.isAlive(), () -> "serve exited: " + read(data.resolve("serve.log")));
            Thread.sleep(100);
        }
        server.destroyForcibly();
        throw new AssertionError("serve did not answer within 60 s: " + read(data.resolve("serve.log")));
    }

    /**
     * A server that does not offer a sandbox's runtime (runsc unusable at its start) leaves that
     * sandbox exactly as it is — recorded, running, its uid range reserved — and tells its owner why;
     * the next server that offers the runtime takes it over.
     */
    @Test
    void aSandboxWhoseRuntimeIsNotOfferedIsKeptForAServerThatOffersIt() throws Exception {
        Path data = dataDir();
        ServerConfig config = ServerConfig.defaults(data).withApiKey(TestServer.KEY);
        RawClient.Box b;
        StockadeServer first = StockadeServer.start(config);
        try {
            RawClient c = new RawClient(first.url(), TestServer.KEY);
            b = c.create(Map.of("templateID", "base-hardened", "timeout", 600));
            c.run(b, "echo kept > /home/user/f.txt; " + WRITER);
        } finally {
            assertEquals(1, first.stopLeavingSandboxes(5));
        }
        String before = System.getProperty("stockade.runsc");
        System.setProperty("stockade.runsc", "/nonexistent/runsc");
        try (StockadeServer without = StockadeServer.start(config)) {
            RawClient c = new RawClient(without.url(), TestServer.KEY);
            RawClient.Response r = c.call("GET", "/sandboxes/" + b.id(), null);
            assertEquals(404, r.status(), r.body());
            assertTrue(r.body().contains("runsc is not available") && r.body().contains("kept"), r.body());
            // Its range stays reserved while it is not served: new sandboxes get other host uids.
            RawClient.Box other = c.create(Map.of("templateID", "base", "timeout", 60));
            assertEquals("", c.run(other, "touch /tmp/probe").stdout());
            long otherUid = TestServer.hostOwnerOf(data, other.id(), "tmp/probe");
            long keptUid = TestServer.hostOwnerOf(data, b.id(), "home/user/f.txt");
            assertTrue(Math.abs(otherUid - keptUid) >= 65536, otherUid + " vs " + keptUid);
            c.kill(other);
            // Stopped with --end-sandboxes-on-stop semantics (close): only what it serves ends.
        } finally {
            if (before == null) System.clearProperty("stockade.runsc");
            else System.setProperty("stockade.runsc", before);
        }
        try (StockadeServer again = StockadeServer.start(config)) {
            RawClient c = new RawClient(again.url(), TestServer.KEY);
            assertEquals("runsc", c.call("GET", "/sandboxes/" + b.id(), null).json().path("runtime").asText());
            assertEquals("kept\n", c.run(b, "cat /home/user/f.txt").stdout());
            long n1 = Long.parseLong(c.run(b, "cat /tmp/n").stdout().strip());
            Thread.sleep(300);
            assertTrue(Long.parseLong(c.run(b, "cat /tmp/n").stdout().strip()) > n1, "its writer never stopped");
        }
        TestServer.assertNoLeaks(data);
        TestServer.deleteTree(data);
    }

    /** Sandboxes whose root replaces the agent's socket with a listener that never answers. */
    private static final int SILENT = 4;
    private static final String SILENCE = """
            before=$(stat -c %i /run/stockade/agent.sock)
            nohup python3 -c 'import os, socket, time
            os.unlink("/run/stockade/agent.sock")
            s = socket.socket(socket.AF_UNIX)
            s.bind("/run/stockade/agent.sock")
            s.listen(64)
            time.sleep(3600)' > /dev/null 2>&1 &
            for i in $(seq 1 50); do
              [ -S /run/stockade/agent.sock ] && [ "$(stat -c %i /run/stockade/agent.sock)" != "$before" ] && echo replaced && break
              sleep 0.1
            done""";

    /**
     * A sandbox's root that replaces the agent's socket with a silent listener costs its own sandbox
     * the take-over, not everyone else a wait: the restart probes every recorded sandbox at once, so
     * it serves within about one hello timeout (5 s) however many are silent — one after another,
     * these four alone took 20 s (issue 15, finding 4).
     */
    @Test
    void silentAgentsDoNotStretchTheRestart() throws Exception {
        Path data = dataDir();
        ServerConfig config = ServerConfig.defaults(data).withApiKey(TestServer.KEY);
        List<RawClient.Box> silent = new ArrayList<>();
        RawClient.Box healthy;
        StockadeServer first = StockadeServer.start(config);
        try {
            RawClient c = new RawClient(first.url(), TestServer.KEY);
            healthy = c.create(Map.of("templateID", "base", "timeout", 600));
            c.run(healthy, "echo kept > /home/user/f.txt");
            for (int i = 0; i < SILENT; i++) {
                RawClient.Box b = c.create(Map.of("templateID", "base", "timeout", 600));
                RawClient.Run r = c.run(b, SILENCE, "root");
                assertEquals("replaced\n", r.stdout(), r.toString());
                silent.add(b);
            }
        } finally {
            first.stopLeavingSandboxes(5);
        }
        long t0 = System.nanoTime();
        try (StockadeServer next = StockadeServer.start(config)) {
            double seconds = (System.nanoTime() - t0) / 1e9;
            System.out.printf("[CrashRecoveryIT] serving %.1f s after the start began, %d silent agents%n", seconds, SILENT);
            assertTrue(seconds < 12, "the restart took " + seconds + " s with " + SILENT + " silent agents");
            RawClient c = new RawClient(next.url(), TestServer.KEY);
            assertEquals("kept\n", c.run(healthy, "cat /home/user/f.txt").stdout(), "the healthy sandbox was taken over");
            for (RawClient.Box b : silent) {
                RawClient.Response r = c.call("GET", "/sandboxes/" + b.id(), null);
                assertEquals(404, r.status(), r.body());
                assertTrue(r.body().contains("could not take it over: its agent's hello failed (TIMEOUT"), r.body());
                assertTrue(!r.body().contains(data.toString()), r.body());
            }
        }
        TestServer.assertNoLeaks(data);
        TestServer.deleteTree(data);
    }

    private static Path dataDir() throws Exception {
        Path base = Path.of("/tmp/stockade-it");
        Files.createDirectories(base);
        Files.setPosixFilePermissions(base, PosixFilePermissions.fromString("rwx--x--x"));
        Path data = Files.createTempDirectory(base, "c");
        Files.setPosixFilePermissions(data, PosixFilePermissions.fromString("rwx--x--x"));
        return data;
    }

    private static void run(String... argv) throws Exception {
        Process p = new ProcessBuilder(argv).redirectErrorStream(true).start();
        p.getInputStream().readAllBytes();
        p.waitFor(30, TimeUnit.SECONDS);
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (java.io.IOException e) {
            return "(no log)";
        }
    }
}
