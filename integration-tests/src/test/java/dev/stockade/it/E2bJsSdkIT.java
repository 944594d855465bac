package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.conformance.NetworkContract;
import dev.stockade.conformance.TestServer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Runs the Node suite in tests/e2b-js — the official, unmodified `e2b` npm package — against a real
 * Stockade server, configured only through E2B_API_URL, E2B_SANDBOX_URL and E2B_API_KEY.
 */
class E2bJsSdkIT {
    static TestServer ts;

    @BeforeAll
    static void up() {
        // The network tests' site runs in the Node process on 127.0.0.1, reached as allowed.test.
        // With a warm pool, as `serve` runs: the SDK must not tell pooled sandboxes from fresh ones.
        ts = new TestServer(c -> c.withEgress(NetworkContract.egressConfig())
                .withPool(dev.stockade.server.config.PoolConfig.defaults()));
    }

    @AfterAll
    static void down() {
        ts.close();
    }

    @Test
    void officialE2bSdkSuitePasses() throws IOException, InterruptedException {
        Path suite = Path.of(System.getProperty("stockade.repo", "..")).resolve("tests/e2b-js").toAbsolutePath().normalize();
        assertTrue(Files.isDirectory(suite.resolve("node_modules/e2b")),
                "the e2b npm package is not installed in " + suite + ": run scripts/install-deps.sh (npm ci there)");
        java.util.List<String> cmd = new java.util.ArrayList<>(java.util.List.of(
                "node", "--test", "--test-reporter=tap", "--test-concurrency=2", "--test-timeout=90000"));
        try (var files = Files.list(suite.resolve("test"))) {
            // -Dstockade.e2bjs.only=NAME runs test/NAME.test.js alone (a developer's shortcut; CI runs them all).
            String only = System.getProperty("stockade.e2bjs.only", "");
            files.map(f -> "test/" + f.getFileName()).filter(f -> f.endsWith(".test.js"))
                    .filter(f -> only.isEmpty() || f.equals("test/" + only + ".test.js")).sorted().forEach(cmd::add);
        }
        ProcessBuilder pb = new ProcessBuilder(cmd)
                .directory(suite.toFile())
                .redirectErrorStream(true);
        pb.environment().put("E2B_API_URL", ts.url());
        pb.environment().put("E2B_SANDBOX_URL", ts.url());
        pb.environment().put("E2B_API_KEY", TestServer.KEY);
        pb.environment().put("E2B_DEBUG", "false");
        pb.environment().put("STOCKADE_TEST_SITE", "allowed.test");
        Process p = pb.start();
        StringBuilder out = new StringBuilder();
        Thread reader = Thread.ofVirtual().start(() -> {
            try {
                String s = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                synchronized (out) {
                    out.append(s);
                }
            } catch (IOException ignored) {
                // the process ended
            }
        });
        boolean done = p.waitFor(8, TimeUnit.MINUTES);
        if (!done) p.destroyForcibly();
        reader.join(10_000);
        String text;
        synchronized (out) {
            text = out.toString();
        }
        System.out.println(text);
        assertTrue(done, "the E2B SDK suite did not finish within 8 minutes");
        assertEquals(0, p.exitValue(), "the E2B SDK suite failed:\n" + text);
        assertTrue(text.contains("# pass"), "the suite ran no test:\n" + text);
    }
}
