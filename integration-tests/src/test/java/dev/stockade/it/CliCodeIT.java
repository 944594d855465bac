package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.conformance.TestServer;
import dev.stockade.sdk.SandboxInfo;
import dev.stockade.sdk.StockadeClient;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The code interpreter from the command line (issue 3, item 4), as a user runs it: a separate JVM
 * running {@code dev.stockade.cli.Main} in a working directory of the test's, against a real
 * server. {@code run --cells} (state across cells, text results, figures saved here, exit 1 on an
 * error) and {@code repl} (statements and blocks as cells, Ctrl-D ends it and kills the sandbox).
 */
class CliCodeIT {
    static TestServer ts;
    static StockadeClient client;

    @BeforeAll
    static void up() {
        System.setProperty("java.awt.headless", "true");
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

    static Result cli(Path dir, byte[] stdin, String... args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"),
                "dev.stockade.cli.Main"));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile());
        Map<String, String> e = pb.environment();
        for (String v : List.of("STOCKADE_URL", "STOCKADE_API_KEY", "E2B_API_URL", "E2B_API_KEY", "E2B_SANDBOX_URL")) e.remove(v);
        e.put("STOCKADE_DATA_DIR", "/nonexistent/stockade-cli-it");
        e.put("STOCKADE_URL", ts.url());
        e.put("STOCKADE_API_KEY", TestServer.KEY);
        Process p = pb.start();
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

    private static byte[] readAll(java.io.InputStream in) {
        try {
            return in.readAllBytes();
        } catch (IOException e) {
            return new byte[0];
        }
    }

    static List<SandboxInfo> cliSandboxes() {
        return client.list().stream().filter(s -> s.metadata().containsKey("stockade-cli")).toList();
    }

    @Test
    void runCellsRunsEachCellInOneContextAndSavesFigures(@TempDir Path tmp) throws Exception {
        Files.writeString(tmp.resolve("analysis.py"), """
                import pandas as pd
                df = pd.DataFrame({'x': [1, 2, 3], 'y': [2, 4, 8]})
                print('loaded', len(df), 'rows')

                # %% [markdown]
                # This cell is prose, not code.

                # %% sums
                df.y.sum()

                # %%
                import matplotlib.pyplot as plt
                plt.figure(figsize=(3, 2), dpi=100)
                plt.plot(df.x, df.y)
                plt.show()
                """);
        Result r = cli(tmp, null, "run", "--cells", "analysis.py");
        assertEquals(0, r.exit(), r.toString());
        assertEquals("loaded 3 rows\n14\n[figure saved to analysis-cell3.png]\n", r.out(), r.toString());
        Path png = tmp.resolve("analysis-cell3.png");
        BufferedImage img = ImageIO.read(png.toFile());
        assertNotNull(img, "the saved figure is a PNG");
        assertEquals(300, img.getWidth());
        assertEquals(200, img.getHeight());
        assertEquals(List.of(), cliSandboxes(), "run --cells kills its sandbox");
    }

    @Test
    void runCellsStopsAtTheFirstErrorWithExitOne(@TempDir Path tmp) throws Exception {
        Files.writeString(tmp.resolve("nb.py"), "a = 1\nprint('first')\n# %%\nprint('second')\n1 / 0\n# %%\nprint('never')\n");
        Result r = cli(tmp, null, "run", "--cells", "nb.py");
        assertEquals(1, r.exit(), r.toString());
        assertEquals("first\nsecond\n", r.out(), r.toString());
        assertTrue(r.err().contains("ZeroDivisionError"), r.toString());
        assertTrue(r.err().contains("cell 2 of 3 failed"), r.toString());
        assertEquals(List.of(), cliSandboxes());

        Result usage = cli(tmp, null, "run", "--cells", "nb.py", "extra");
        assertEquals(2, usage.exit(), usage.toString());
    }

    @Test
    void replRunsLinesAndBlocksAsCellsAndCtrlDKillsTheSandbox(@TempDir Path tmp) throws Exception {
        String typed = String.join("\n",
                "x = 20",
                "x * 2 + 2",
                "for i in range(2):",
                "    print('loop', i)",
                "",
                "def twice(v):",
                "    return v * 2",
                "",
                "twice(x)",
                "undefined_name",
                "import matplotlib.pyplot as plt",
                "plt.plot([1, 2]); plt.show()",
                "print('still alive')",
                "");
        Result r = cli(tmp, typed.getBytes(StandardCharsets.UTF_8), "repl");
        assertEquals(0, r.exit(), r.toString());
        assertEquals("42\nloop 0\nloop 1\n40\n[figure saved to repl-8.png]\nstill alive\n", r.out(), r.toString());
        assertTrue(r.err().contains(">>> "), "prompts go to stderr: " + r);
        assertTrue(r.err().contains("... "), r.toString());
        assertTrue(r.err().contains("NameError"), r.toString());
        assertTrue(Files.size(tmp.resolve("repl-8.png")) > 0);
        assertEquals(List.of(), cliSandboxes(), "Ctrl-D (end of input) kills the sandbox");
        assertFalse(r.err().contains("Exception"), r.toString());
    }
}
