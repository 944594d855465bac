package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.conformance.TestServer;
import dev.stockade.sdk.CellFile;
import dev.stockade.protocol.Outcome;
import dev.stockade.sdk.CodeContext;
import dev.stockade.sdk.CreateOptions;
import dev.stockade.sdk.Execution;
import dev.stockade.sdk.ExecutionError;
import dev.stockade.sdk.NotFoundException;
import dev.stockade.sdk.Result;
import dev.stockade.sdk.RunCodeOptions;
import dev.stockade.sdk.Sandbox;
import dev.stockade.sdk.StockadeClient;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link Sandbox#runCode} and the code contexts of Stockade's Java SDK against a real server
 * (issue 3, item 4): typed results (text, HTML, PNG that decodes), logs, errors, streaming
 * callbacks, timeouts with their outcome, contexts, files the cell wrote.
 */
class JavaSdkCodeIT {
    static TestServer ts;
    static StockadeClient client;
    static Sandbox shared;

    @BeforeAll
    static void up() {
        System.setProperty("java.awt.headless", "true");
        ts = new TestServer();
        client = StockadeClient.builder().apiUrl(ts.url()).apiKey(TestServer.KEY).build();
        shared = client.create(CreateOptions.builder().template("code-interpreter-v1").timeout(Duration.ofMinutes(5)).build());
    }

    @AfterAll
    static void down() {
        try {
            if (shared != null) shared.close();
            if (client != null) client.close();
        } finally {
            ts.close();
        }
    }

    @Test
    void runCodeKeepsStateAndReturnsTypedResults() throws IOException {
        Execution first = shared.runCode("import pandas as pd\nsdk_df = pd.DataFrame({'n': [1, 2, 3]})\nprint('rows', len(sdk_df))\nsdk_df.n.sum()");
        assertEquals("6", first.text());
        assertEquals("rows 3\n", first.logs().stdoutText());
        assertNull(first.error());
        assertEquals(Outcome.OK, first.outcome());
        assertFalse(first.stateLost());
        assertTrue(first.executionCount() >= 1);

        Execution table = shared.runCode("sdk_df");
        Result main = table.results().stream().filter(Result::isMainResult).findFirst().orElseThrow();
        assertTrue(main.html().contains("<table"), main.html());
        assertTrue(main.formats().contains("html"));
        assertEquals(first.executionCount() + 1, table.executionCount());

        Execution chart = shared.runCode("import matplotlib.pyplot as plt\nplt.figure(figsize=(3, 2), dpi=100)\nplt.plot([0, 1], [1, 0])\nplt.show()");
        Result figure = chart.results().stream().filter(r -> r.png() != null).findFirst().orElseThrow();
        BufferedImage img = ImageIO.read(new ByteArrayInputStream(figure.pngBytes()));
        assertEquals(300, img.getWidth());
        assertEquals(200, img.getHeight());
        assertFalse(figure.isMainResult());
        assertTrue(figure.chart().contains("\"type\":\"line\"") && figure.chart().contains("\"points\":[[0.0,1.0],[1.0,0.0]]"),
                "E2B's chart data beside the png: " + figure.chart());
        assertNull(main.chart(), "chart data is for figures only");
    }

    @Test
    void callbacksFireWhileTheCellRuns() {
        List<String> events = new CopyOnWriteArrayList<>();
        List<Long> times = new CopyOnWriteArrayList<>();
        Execution e = shared.runCode("import sys, time\nprint('a', flush=True)\nprint('b', file=sys.stderr, flush=True)\n"
                + "from IPython.display import display\ndisplay(123)\ntime.sleep(1)\nraise ValueError('late')", RunCodeOptions.builder()
                .onStdout(s -> {
                    events.add("out:" + s);
                    times.add(System.nanoTime());
                })
                .onStderr(s -> events.add("err:" + s))
                .onResult(r -> events.add("result:" + r.text()))
                .onError(err -> events.add("error:" + err.name()))
                .build());
        long end = System.nanoTime();
        assertEquals(List.of("out:a\n", "err:b\n", "result:123", "error:ValueError"), merged(events));
        assertTrue(end - times.getFirst() >= TimeUnit.MILLISECONDS.toNanos(700), "stdout came only at the end");
        assertEquals("ValueError", e.error().name());
        assertEquals("late", e.error().value());
        assertTrue(e.error().traceback().contains("raise ValueError"), e.error().traceback());
        assertEquals(Outcome.ERROR, e.outcome());
    }

    /** Consecutive chunks of one stream joined (chunk boundaries are not part of the contract). */
    static List<String> merged(List<String> events) {
        List<String> out = new java.util.ArrayList<>();
        for (String e : events) {
            String kind = e.substring(0, e.indexOf(':') + 1);
            if (!out.isEmpty() && (kind.equals("out:") || kind.equals("err:")) && out.getLast().startsWith(kind)) {
                out.set(out.size() - 1, out.getLast() + e.substring(kind.length()));
            } else {
                out.add(e);
            }
        }
        return out;
    }

    @Test
    void timeoutInterruptsTheCellAndTheExecutionSaysSo() {
        try (Sandbox sb = client.create(CreateOptions.builder().template("code-interpreter-v1").build())) {
            long t0 = System.nanoTime();
            Execution e = sb.runCode("import time\nwhile True:\n    time.sleep(0.1)", RunCodeOptions.builder()
                    .timeout(Duration.ofSeconds(1)).build());
            assertTrue(System.nanoTime() - t0 < TimeUnit.SECONDS.toNanos(10));
            assertEquals(Outcome.TIMEOUT, e.outcome(), e.toString());
            assertNotNull(e.error());
            assertNotNull(e.reason());
            assertFalse(e.stateLost());
            assertEquals("2", sb.runCode("1 + 1").text());
        }
    }

    @Test
    void contextsAreIsolatedAndCanBeRestartedAndRemoved() {
        try (Sandbox sb = client.create(CreateOptions.builder().template("code-interpreter-v1").build())) {
            CodeContext a = sb.createCodeContext();
            CodeContext b = sb.createCodeContext("/tmp");
            assertEquals("python", a.language());
            assertEquals("/tmp", b.cwd());
            RunCodeOptions inA = RunCodeOptions.builder().context(a).build();
            RunCodeOptions inB = RunCodeOptions.builder().context(b).build();
            sb.runCode("only_a = 1", inA);
            ExecutionError missing = sb.runCode("only_a", inB).error();
            assertEquals("NameError", missing.name());
            assertEquals("/tmp", sb.runCode("import os\nos.getcwd()", inB).text());
            assertTrue(sb.listCodeContexts().stream().map(CodeContext::id).toList().containsAll(List.of(a.id(), b.id())));

            sb.restartCodeContext(a);
            assertEquals("NameError", sb.runCode("only_a", inA).error().name());
            sb.removeCodeContext(b);
            assertFalse(sb.listCodeContexts().stream().anyMatch(c -> c.id().equals(b.id())));
            assertThrows(NotFoundException.class, () -> sb.runCode("1", inB));
            assertThrows(NotFoundException.class, () -> sb.removeCodeContext(b));
        }
    }

    @Test
    void envsOfACallAndFilesTheCellWrote() {
        try (Sandbox sb = client.create(CreateOptions.builder().template("code-interpreter-v1").build())) {
            Execution e = sb.runCode("import os\nopen('report.txt', 'w').write(os.environ['WHO'])\n",
                    RunCodeOptions.builder().env("WHO", "sdk").build());
            assertEquals(List.of(new CellFile("report.txt", "/home/user/report.txt", 3)), e.files());
            assertArrayEquals("sdk".getBytes(), sb.files().readBytes(e.files().getFirst().path()));
        }
    }

    @Test
    void aKilledSandboxIsNotFound() {
        Sandbox sb = client.create(CreateOptions.builder().template("code-interpreter-v1").build());
        sb.kill();
        assertThrows(NotFoundException.class, () -> sb.runCode("1"));
        assertThrows(NotFoundException.class, sb::listCodeContexts);
    }

    @Test
    void cellTimeoutOfZeroMeansTheSandboxsLimit() {
        Execution e = shared.runCode("'no client deadline'", RunCodeOptions.builder().timeout(Duration.ZERO).build());
        assertEquals("no client deadline", e.text());
        assertThrows(IllegalArgumentException.class, () -> RunCodeOptions.builder().timeout(Duration.ofSeconds(-1)).build());
    }
}
