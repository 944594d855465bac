package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.protocol.CellEvent;
import dev.stockade.protocol.ContextInfo;
import dev.stockade.protocol.CreateContext;
import dev.stockade.protocol.ExecuteCell;
import dev.stockade.protocol.Outcome;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * {@code --preload}: the default context's kernel imports the named modules before its first cell
 * (warm pools), leaving no trace but sys.modules. One agent, started as a pool would start it
 * ({@code --warm-default --preload ...}), serves the tests in order; its stderr goes to a file so
 * that the log line of a module that cannot be imported can be checked. The tests that use it run
 * in order: the first one needs the default context's first cell.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class PreloadTest {
    private static final Duration MAX = Duration.ofSeconds(60);
    /** {@code this} prints the Zen of Python when imported: the preload's output must go nowhere. */
    private static final String MODULES = "this,numpy,pandas,matplotlib.pyplot,no_such_module_xyz";
    /** The first statement sees the namespace as the kernel left it; the rest only reports. */
    private static final String FIRST_CELL = """
            _names = sorted(dir())
            import sys, time
            _loaded = [m for m in ('this', 'numpy', 'pandas', 'matplotlib.pyplot') if m in sys.modules]
            _t0 = time.perf_counter()
            import pandas
            _took = time.perf_counter() - _t0
            print(_names)
            print(','.join(_loaded))
            print('%.3f' % (_took * 1000))""";

    private static final String FIGURE_CELL = """
            import time
            _t0 = time.perf_counter()
            import matplotlib.pyplot as plt
            plt.plot([1, 2])
            plt.show()
            print('%.1f' % ((time.perf_counter() - _t0) * 1000))""";

    private static Path logDir;
    private static Path log;
    private static AgentProcess agent;
    private static long startedAt;

    @BeforeAll
    static void start() throws IOException {
        logDir = Files.createTempDirectory("stockade-preload-test");
        log = logDir.resolve("agent.log");
        startedAt = System.nanoTime();
        agent = AgentProcess.start(Map.of(), List.of("/bin/sh", "-c", "exec \"$@\" 2>>" + log, "sh"),
                List.of("--warm-default", "--preload", MODULES));
    }

    @AfterAll
    static void stop() throws IOException {
        try {
            if (agent != null) {
                agent.close();
            }
        } finally {
            AgentProcess.deleteTree(logDir);
        }
    }

    private static CellRun run(String contextId, String code) {
        return CellRun.collect(agent.client.execute(new ExecuteCell(contextId, code, Map.of(), 0, 0)), MAX);
    }

    @Test
    @Order(1)
    void theFirstCellFindsTheModulesImportedAndNothingElseChanged() throws IOException {
        // Sent at once: the preload (numpy, pandas, pyplot: about a second) is still running, and
        // the cell runs after it (it waits for the kernel's ready event, which follows the preload).
        CellRun first = run(null, FIRST_CELL);
        System.out.printf("first cell of the default context ended %.0f ms after the agent was started%n",
                (System.nanoTime() - startedAt) / 1e6);
        assertEquals(Outcome.OK, first.end().outcome(), first.toString());
        assertEquals(1, first.end().executionCount(), "the preload is not an execution");
        assertEquals("", first.stderr(), "the preload writes nothing to a cell");
        assertTrue(first.results().isEmpty(), first.toString());
        String[] lines = first.stdout().split("\n");
        assertEquals(3, lines.length, first.toString());
        assertEquals("this,numpy,pandas,matplotlib.pyplot", lines[1], "in sys.modules before the first cell");
        double importMillis = Double.parseDouble(lines[2]);
        assertTrue(importMillis < 30, "import pandas took " + importMillis + " ms inside the kernel");

        // A context without preload: the same first cell sees the same names, and pays for pandas.
        ContextInfo plain = agent.client.createContext(CreateContext.python());
        CellRun other = run(plain.id(), FIRST_CELL);
        String[] otherLines = other.stdout().split("\n");
        assertEquals(3, otherLines.length, other.toString());
        assertEquals(otherLines[0], lines[0], "the user's namespace is the same as without preload");
        assertEquals("", otherLines[1], "only the default context preloads");
        assertEquals(1, other.end().executionCount());
        System.out.printf("first-cell import pandas inside the kernel: %s ms preloaded, %s ms without%n",
                lines[2], otherLines[2]);
        agent.client.deleteContext(plain.id());

        String text = Files.readString(log, StandardCharsets.UTF_8);
        List<String> failures = text.lines().filter(l -> l.contains("could not preload")).toList();
        assertEquals(1, failures.size(), text);
        assertTrue(failures.getFirst().contains("no_such_module_xyz") && failures.getFirst().contains("ModuleNotFoundError"),
                failures.getFirst());
        assertFalse(failures.getFirst().contains("numpy") || failures.getFirst().contains("pandas"), failures.getFirst());
    }

    @Test
    @Order(2)
    void aPreloadedPyplotStillShowsExactlyOneFigure() {
        CellRun plot = run(null, FIGURE_CELL);
        assertEquals(Outcome.OK, plot.end().outcome(), plot.toString());
        List<CellEvent.Result> pngs = plot.results().stream().filter(r -> r.data().containsKey("png")).toList();
        assertEquals(1, pngs.size(), plot.toString());
        assertEquals(1, plot.results().size(), plot.toString());
        assertEquals("0", run(null, "len(plt.get_fignums())").value(), "the figure was closed once sent");
        ContextInfo plain = agent.client.createContext(CreateContext.python());
        CellRun cold = run(plain.id(), FIGURE_CELL);
        assertEquals(1, cold.results().size(), cold.toString());
        System.out.printf("first figure (import, plot, show, inside the kernel): %s ms after preloading pyplot, %s ms without%n",
                plot.stdout().strip(), cold.stdout().strip());
        agent.client.deleteContext(plain.id());
    }

    @Test
    @Order(3)
    void aRestartedDefaultContextPreloadsAgainAndLogsNothingNew() throws IOException {
        ContextInfo ctx = agent.client.warmDefaultContext(null);
        agent.client.restartContext(ctx.id());
        CellRun after = run(null, "import sys\n('pandas' in sys.modules, 'pandas' in dir())");
        assertEquals("(True, False)", after.value(), after.toString());
        assertEquals(1, after.end().executionCount());
        long lines = Files.readString(log, StandardCharsets.UTF_8).lines().filter(l -> l.contains("could not preload")).count();
        assertEquals(1, lines, "a failed module is logged once per agent");
    }

    @Test
    void aModuleThatKillsTheKernelIsDroppedAndTheContextWorks() throws IOException {
        // Without --warm-default the kernel starts with the first cell, so the module can be put in
        // place first: the home is the kernel's cwd, which is first on sys.path.
        try (AgentProcess crashing = AgentProcess.start(Map.of(), List.of(), List.of("--preload", "crashy,wave"))) {
            Files.writeString(crashing.userHome.resolve("crashy.py"), "import os\nos._exit(3)\n");
            CellRun run = CellRun.collect(crashing.client.execute(new ExecuteCell(null,
                    "import sys\n('crashy' in sys.modules, 'wave' in sys.modules)", Map.of(), 0, 0)), MAX);
            assertEquals(Outcome.OK, run.end().outcome(), run.toString());
            assertEquals("(False, False)", run.value(), "the kernel that runs the cell started without the preload");
            assertEquals(1, run.end().executionCount());
        }
    }

    @Test
    void badModuleNamesRefuseToStart() throws Exception {
        Path dir = Files.createTempDirectory("stockade-preload-args");
        try {
            AgentScript.writeSources(dir);
            Path script = dir.resolve("agent");
            List<String> bad = new ArrayList<>(List.of("", "os;id", "a..b", ".a", "a.", "1abc", "a b", "numpy,",
                    "x-y", "../etc", "caf\u00e9", "a/b", "x".repeat(201), String.join(",", Collections.nCopies(65, "m"))));
            for (String value : bad) {
                Path socket = dir.resolve("run/agent.sock");
                Process p = new ProcessBuilder(AgentProcess.PYTHON, "-I", "-S", script.toString(), "--socket",
                        socket.toString(), "--no-switch-user", "--preload", value)
                        .redirectErrorStream(true).start();
                try {
                    assertTrue(p.waitFor(10, TimeUnit.SECONDS), "agent with --preload '" + value + "' did not exit");
                    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
                    assertEquals(1, p.exitValue(), "--preload '" + value + "': " + out);
                    assertTrue(out.contains("--preload wants comma-separated module names"), out);
                    assertFalse(Files.exists(socket), "it never listened");
                } finally {
                    p.destroyForcibly(); // by its own handle; a no-op once it exited
                }
            }
        } finally {
            AgentProcess.deleteTree(dir);
        }
    }
}
