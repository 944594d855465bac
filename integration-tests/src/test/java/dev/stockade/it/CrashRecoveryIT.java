package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.server.StockadeServer;
import dev.stockade.server.config.ServerConfig;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A server killed with SIGKILL leaves its sandboxes running; the next server on the same data
 * directory removes every one of them (containers, mounts, cgroups, processes, state) at start.
 * (Keeping them alive across restarts is issue 6; leaving orphans behind is never allowed.)
 */
class CrashRecoveryIT {

    @Test
    void aRestartedServerReapsWhatAKilledOneLeftBehind() throws Exception {
        Path base = Path.of("/tmp/stockade-it");
        Files.createDirectories(base);
        Files.setPosixFilePermissions(base, PosixFilePermissions.fromString("rwx--x--x"));
        Path data = Files.createTempDirectory(base, "c");
        Files.setPosixFilePermissions(data, PosixFilePermissions.fromString("rwx--x--x"));
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        ProcessBuilder pb = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED", "-cp", System.getProperty("java.class.path"),
                "dev.stockade.cli.Main", "serve", "--port", Integer.toString(port), "--data-dir", data.toString(),
                // No pool: the premise counts exactly the sandboxes this test created.
                "--pool-size", "0")
                .redirectErrorStream(true).redirectOutput(data.resolve("serve.log").toFile());
        pb.environment().put("STOCKADE_API_KEY", TestServer.KEY);
        Process server = pb.start();
        RawClient c = new RawClient(URI.create("http://127.0.0.1:" + port), TestServer.KEY);
        try {
            for (int i = 0; i < 300; i++) {
                try {
                    if (c.call("GET", "/health", null).status() == 200) break;
                } catch (RuntimeException notYet) {
                    // not listening yet
                }
                assertTrue(server.isAlive(), () -> "serve exited: " + read(data.resolve("serve.log")));
                Thread.sleep(100);
            }
            RawClient.Box a = c.create();
            RawClient.Box b = c.create();
            assertEquals("up\n", c.run(a, "sleep 300 > /dev/null 2>&1 & echo up").stdout());
            assertEquals("up\n", c.run(b, "echo up").stdout());
        } finally {
            server.destroyForcibly(); // SIGKILL: no shutdown hook runs
            server.waitFor(30, TimeUnit.SECONDS);
        }
        Path sandboxes = data.resolve("runtime/runc/sandboxes");
        try (var s = Files.list(sandboxes)) {
            assertEquals(2, s.count(), "the killed server's sandboxes are still there (the premise)");
        }
        assertFalse(TestServer.sandboxProcesses(List.of()).isEmpty(), "their processes still run (the premise)");

        // The next server on the same directory cleans up at start, before serving.
        try (StockadeServer next = StockadeServer.start(ServerConfig.defaults(data).withApiKey(TestServer.KEY))) {
            try (var s = Files.list(sandboxes)) {
                assertEquals(List.of(), s.toList(), "state directories reaped at start");
            }
            RawClient c2 = new RawClient(next.url(), TestServer.KEY);
            assertEquals("[]", c2.call("GET", "/v2/sandboxes", null).body().strip());
        }
        TestServer.assertNoLeaks(data);
        TestServer.deleteTree(data);
    }

    private static String read(Path p) {
        try {
            return Files.readString(p);
        } catch (java.io.IOException e) {
            return "(no log)";
        }
    }
}
