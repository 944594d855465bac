package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.protocol.AgentException;
import dev.stockade.protocol.CellEvent;
import dev.stockade.protocol.ContextInfo;
import dev.stockade.protocol.CreateContext;
import dev.stockade.protocol.ExecuteCell;
import dev.stockade.protocol.FileChange;
import dev.stockade.protocol.Outcome;
import dev.stockade.protocol.link.AgentClient;
import dev.stockade.protocol.link.EventStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Code contexts against the real agent and kernel: as root (CI), kernels run as uid 1000. One agent
 * serves the whole class (contexts are isolated processes, so tests don't share state unless they
 * use the same context); each test that changes or breaks a context makes its own.
 */
class CodeContextsTest {
    private static final Duration MAX = Duration.ofSeconds(20);
    private static final byte[] PNG_SIGNATURE = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    private static AgentProcess agent;
    private static AgentClient client;
    /** An IPython context shared by the tests that only add harmless state. */
    private static ContextInfo shared;

    @BeforeAll
    static void start() throws IOException {
        agent = AgentProcess.start();
        client = agent.client;
        long t = System.nanoTime();
        shared = client.createContext(CreateContext.python());
        System.out.printf("kernel start with IPython (createContext until ready): %.0f ms%n", (System.nanoTime() - t) / 1e6);
    }

    @AfterAll
    static void stop() throws IOException {
        agent.close();
    }

    private static CellRun run(String contextId, String code) {
        return run(new ExecuteCell(contextId, code, Map.of(), 0, 0));
    }

    private static CellRun run(ExecuteCell cell) {
        return CellRun.collect(client.execute(cell), MAX);
    }

    private static ContextInfo newContext() {
        return client.createContext(CreateContext.python());
    }

    @Test
    void stateLastExpressionAndExecutionCount() {
        ContextInfo ctx = newContext();
        assertEquals("python", ctx.language());
        assertEquals(agent.userHome.toString(), ctx.cwd());
        assertEquals("user", ctx.user());
        CellRun first = run(ctx.id(), "x = 41\ndef inc(v):\n    return v + 1");
        assertEquals(Outcome.OK, first.end().outcome(), first.toString());
        assertEquals(1, first.end().executionCount());
        assertTrue(first.results().isEmpty(), first.toString());
        assertFalse(first.end().stateLost());

        CellRun second = run(ctx.id(), "import math\ninc(x)");
        assertEquals("42", second.value(), second.toString());
        assertEquals(2, second.end().executionCount());
        assertTrue(second.results().getFirst().isMainResult());
        assertEquals("3.0", run(ctx.id(), "math.sqrt(9)").value());
        assertNull(run(ctx.id(), "x;").value(), "a trailing semicolon silences the value, as in Jupyter");
    }

    @Test
    void displayAddsResultsBeforeTheMainOne() {
        CellRun run = run(shared.id(), """
                from IPython.display import display, HTML, Markdown
                display(HTML('<b>bold</b>'))
                display(Markdown('# title'))
                display({'a': 1})
                'main'""");
        List<CellEvent.Result> results = run.results();
        assertEquals(4, results.size(), run.toString());
        assertEquals("<b>bold</b>", results.get(0).data().get("html"));
        assertFalse(results.get(0).isMainResult());
        assertEquals("# title", results.get(1).data().get("markdown"));
        assertEquals("{'a': 1}", results.get(2).data().get("text"));
        assertEquals("main", results.get(3).data().get("text"));
        assertTrue(results.get(3).isMainResult());
    }

    @Test
    void richReprMethodsBecomeFormats() {
        CellRun run = run(shared.id(), """
                class Rich:
                    def _repr_html_(self): return '<i>rich</i>'
                    def _repr_json_(self): return {'k': [1, 2]}
                    def _repr_latex_(self): return r'$x^2$'
                    def __repr__(self): return 'Rich()'
                Rich()""");
        Map<String, Object> data = run.results().getFirst().data();
        assertEquals("Rich()", data.get("text"));
        assertEquals("<i>rich</i>", data.get("html"));
        assertEquals(Map.of("k", List.of(1L, 2L)), data.get("json"));
        assertEquals("$x^2$", data.get("latex"));
    }

    @Test
    void dataFrameComesBackAsHtmlAndText() {
        CellRun run = run(shared.id(), "import pandas as pd\npd.DataFrame({'city': ['Oslo', 'Lima'], 'pop': [709, 10883]})");
        Map<String, Object> data = run.results().getFirst().data();
        String html = (String) data.get("html");
        assertTrue(html.contains("<table") && html.contains("Oslo") && html.contains("10883"), html);
        String text = (String) data.get("text");
        assertTrue(text.contains("Lima") && text.contains("709"), text);
    }

    @Test
    void resultsInE2bsForms() {
        // A text form in quotes loses them, as E2B's server takes them off: a str reads as its content.
        assertEquals("supertest", run(shared.id(), "s = 'supertest'\ns").value());
        assertEquals("it's", run(shared.id(), "\"it's\"").value());
        assertEquals("[1, 'a']", run(shared.id(), "[1, 'a']").value(), "other types keep their repr");
        // A DataFrame's data form: its columns as lists, timestamps in ISO 8601, NaN as null.
        CellRun frame = run(shared.id(), """
                import pandas as pd
                pd.DataFrame({'a': [1, 2], 'b': [0.5, float('nan')], 't': pd.to_datetime(['2024-01-02', '2024-01-03'])})""");
        assertEquals(Map.of("a", List.of(1L, 2L), "b", java.util.Arrays.asList(0.5, null),
                        "t", List.of("2024-01-02T00:00:00", "2024-01-03T00:00:00")),
                frame.results().getFirst().data().get("data"), frame.toString());
        assertNull(run(shared.id(), "41 + 1").results().getFirst().data().get("data"), "data is for DataFrames only");
        // An image saved to a file is shown too, as E2B's template does.
        CellRun saved = run(shared.id(), "from PIL import Image\nImage.new('RGB', (4, 3)).save('saved.png')");
        assertEquals(1, saved.results().size(), saved.toString());
        assertFalse(saved.results().getFirst().isMainResult());
        assertPng((String) saved.results().getFirst().data().get("png"), 4, 3);
    }

    @Test
    void aCellWhoseClientLeavesIsInterruptedAndItsContextFreed() throws Exception {
        ContextInfo ctx = newContext();
        EventStream<CellEvent> stream = client.execute(new ExecuteCell(ctx.id(), "import time\nstarted = True\ntime.sleep(60)\nfinished = True",
                Map.of(), 0, 0));
        Thread.sleep(500);
        stream.close(); // the client goes away
        long t = System.nanoTime();
        CellRun next = run(ctx.id(), "(started, 'finished' in globals())");
        assertEquals("(True, False)", next.value(), "interrupted, its state kept: " + next);
        assertTrue(System.nanoTime() - t < 10_000_000_000L, "the next cell did not wait for the sleep");
        client.deleteContext(ctx.id());
    }

    @Test
    void bashContextsKeepTheirShellBetweenCells() {
        ContextInfo ctx = client.createContext(new CreateContext("bash", null, Map.of(), null));
        assertEquals("bash", ctx.language());
        CellRun first = run(ctx.id(), "X=1\ncd /tmp\necho hi\necho warn >&2");
        assertEquals(Outcome.OK, first.end().outcome(), first.toString());
        assertEquals("hi\n", first.stdout());
        assertEquals("warn\n", first.stderr());
        assertEquals("1 /tmp\n", run(ctx.id(), "echo $X $(pwd)").stdout(), "variables and cd persist");

        CellRun withEnv = run(new ExecuteCell(ctx.id(), "echo $FOO", Map.of("FOO", "b'a r"), 0, 0));
        assertEquals("b'a r\n", withEnv.stdout());
        assertEquals("default\n", run(ctx.id(), "echo ${FOO:-default}").stdout(), "a cell's variables last for that cell");
        assertEquals("", run(ctx.id(), "cat").stdout(), "commands read stdin from /dev/null");

        CellRun failed = run(ctx.id(), "false");
        assertEquals(Outcome.ERROR, failed.end().outcome(), failed.toString());
        assertEquals("1", failed.error().value(), "the exit status, as E2B's bash kernel reports it");

        CellRun slow = run(new ExecuteCell(ctx.id(), "sleep 30\necho after", Map.of(), 500, 0));
        assertEquals(Outcome.TIMEOUT, slow.end().outcome(), slow.toString());
        assertFalse(slow.end().stateLost(), slow.toString());
        assertEquals("", slow.stdout(), "the interrupt ends the cell, not just its command");
        assertEquals("1\n", run(ctx.id(), "echo $X").stdout(), "the shell survived the interrupt");

        CellRun exit = run(ctx.id(), "exit 3");
        assertEquals(Outcome.KILLED, exit.end().outcome(), exit.toString());
        assertTrue(exit.end().stateLost());
        assertEquals("\n", run(ctx.id(), "echo $X").stdout(), "a new shell after exit");

        CellRun byLanguage = run(new ExecuteCell(null, "echo ${BASH_VERSION:+bash} $(pwd)", Map.of(), 0, 0, "bash"));
        assertEquals("bash " + agent.userHome + "\n", byLanguage.stdout(), "the default bash context");
        client.deleteContext(ctx.id());
    }

    @Test
    void javascriptContextsKeepTheirNodeBetweenCells() {
        ContextInfo ctx = client.createContext(new CreateContext("js", null, Map.of(), null));
        assertEquals("javascript", ctx.language());
        CellRun first = run(ctx.id(), "const x = 40; console.log('hi'); console.error('warn'); x + 2");
        assertEquals(Outcome.OK, first.end().outcome(), first.toString());
        assertEquals("hi\n", first.stdout());
        assertEquals("warn\n", first.stderr());
        assertEquals("42", first.value());
        assertEquals("'x' is 40", run(ctx.id(), "`'x' is ${x}`").value(),
                "a top-level const persists; only quotes around the whole text are dropped");

        CellRun withEnv = run(new ExecuteCell(ctx.id(), "process.env.FOO", Map.of("FOO", "b'a r"), 0, 0));
        assertEquals("b'a r", withEnv.value());
        assertEquals("default", run(ctx.id(), "process.env.FOO || 'default'").value());

        CellRun failed = run(ctx.id(), "null.f()");
        assertEquals(Outcome.ERROR, failed.end().outcome(), failed.toString());
        assertEquals("TypeError", failed.error().name());

        CellRun slow = run(new ExecuteCell(ctx.id(), "while (true) {}", Map.of(), 500, 0));
        assertEquals(Outcome.TIMEOUT, slow.end().outcome(), slow.toString());
        assertFalse(slow.end().stateLost(), slow.toString());
        assertEquals("40", run(ctx.id(), "x").value(), "node survived the interrupt");

        CellRun exit = run(ctx.id(), "process.exit(3)");
        assertEquals(Outcome.KILLED, exit.end().outcome(), exit.toString());
        assertTrue(exit.end().stateLost());
        assertEquals("undefined", run(ctx.id(), "typeof x").value(), "a new node after exit");
        client.deleteContext(ctx.id());

        List<String> languages = client.listContexts().stream().map(ContextInfo::language).toList();
        assertTrue(languages.containsAll(List.of("python", "javascript")),
                "as E2B's server, a list shows a default context per language: " + languages);
        ContextInfo made = client.createContext(new CreateContext("python", null, Map.of(), null));
        assertEquals(made, client.listContexts().getLast(), "a new context is listed last, after the defaults");
        client.deleteContext(made.id());
    }

    @Test
    void matplotlibFiguresBecomePngs() {
        ContextInfo ctx = newContext();
        CellRun shown = run(ctx.id(), """
                import matplotlib.pyplot as plt
                plt.plot([1, 2, 3], [4, 1, 9])
                plt.show()
                print('after show')""");
        assertEquals(Outcome.OK, shown.end().outcome(), shown.toString());
        List<CellEvent.Result> pngs = shown.results().stream().filter(r -> r.data().containsKey("png")).toList();
        assertEquals(1, pngs.size(), shown.toString());
        assertPng((String) pngs.getFirst().data().get("png"), 640, 480);
        // The figure came out at plt.show(), before the print that follows it.
        int figure = shown.events().indexOf(pngs.getFirst());
        int print = indexOfStdout(shown, "after show");
        assertTrue(figure < print, shown.toString());

        CellRun open = run(ctx.id(), "fig = plt.figure(figsize=(4, 3))\nplt.bar(['a', 'b'], [3, 5]);");
        List<CellEvent.Result> left = open.results().stream().filter(r -> r.data().containsKey("png")).toList();
        assertEquals(1, left.size(), open.toString());
        assertPng((String) left.getFirst().data().get("png"), 400, 300);
        assertEquals("0", run(ctx.id(), "len(plt.get_fignums())").value(), "figures are closed once sent");
        client.deleteContext(ctx.id());
    }

    private static int indexOfStdout(CellRun run, String text) {
        for (int i = 0; i < run.events().size(); i++) {
            if (run.events().get(i) instanceof CellEvent.Stdout(String t) && t.contains(text)) {
                return i;
            }
        }
        return -1;
    }

    private static void assertPng(String base64, int width, int height) {
        byte[] png = Base64.getDecoder().decode(base64);
        byte[] signature = new byte[8];
        System.arraycopy(png, 0, signature, 0, 8);
        assertArrayEquals(PNG_SIGNATURE, signature);
        ByteBuffer ihdr = ByteBuffer.wrap(png, 16, 8); // after the signature, the IHDR length and type
        assertEquals(width, ihdr.getInt());
        assertEquals(height, ihdr.getInt());
    }

    @Test
    void printStreamsWhileTheCellRuns() {
        CellRun run = run(shared.id(), "import time\nprint('first')\ntime.sleep(1)\nprint('second')");
        assertEquals("first\nsecond\n", run.stdout());
        int first = indexOfStdout(run, "first");
        long firstAt = run.arrivalNanos().get(first);
        long endAt = run.arrivalNanos().getLast();
        assertTrue(endAt - firstAt > 700_000_000L, "the first line must arrive about 1 s before the end, not "
                + (endAt - firstAt) / 1_000_000 + " ms");
    }

    @Test
    void stderrCOutputAndSubprocessesAreCaptured() {
        CellRun run = run(shared.id(), """
                import sys, os, subprocess
                print('to stderr', file=sys.stderr)
                os.write(1, b'raw fd write\\n')
                subprocess.run(['echo', 'from a child'])""");
        assertTrue(run.stderr().contains("to stderr"), run.toString());
        assertTrue(run.stdout().contains("raw fd write\n") && run.stdout().contains("from a child\n"), run.toString());
    }

    @Test
    void errorsCarryNameValueAndTheUsersTraceback() {
        CellRun run = run(shared.id(), "def divide(a, b):\n    return a / b\n\ndivide(1, 0)");
        assertEquals(Outcome.ERROR, run.end().outcome());
        CellEvent.Error error = run.error();
        assertNotNull(error, run.toString());
        assertEquals("ZeroDivisionError", error.name());
        assertEquals("division by zero", error.value());
        assertTrue(error.traceback().contains("return a / b") && error.traceback().contains("divide(1, 0)"),
                error.traceback());
        assertFalse(error.traceback().contains("stockade_kernel") || error.traceback().contains("/opt/stockade")
                || error.traceback().contains("interactiveshell.py"), error.traceback());
        assertFalse(error.traceback().contains("\u001b["), "no ANSI colours");
        assertTrue(run.end().reason().contains("ZeroDivisionError"), run.end().reason());

        CellRun syntax = run(shared.id(), "x = (1,\nprint('never')");
        assertEquals("SyntaxError", syntax.error().name(), syntax.toString());
        assertEquals("", syntax.stdout());
    }

    @Test
    void interruptAtTheTimeoutKeepsTheState() {
        ContextInfo ctx = newContext();
        run(ctx.id(), "kept = 'yes'");
        long t = System.nanoTime();
        CellRun run = run(new ExecuteCell(ctx.id(), "import time\nwhile True:\n    time.sleep(0.01)", Map.of(), 500, 0));
        long took = (System.nanoTime() - t) / 1_000_000;
        assertEquals(Outcome.TIMEOUT, run.end().outcome(), run.toString());
        assertFalse(run.end().stateLost());
        assertTrue(run.end().reason().contains("500 ms"), run.end().reason());
        assertEquals("KeyboardInterrupt", run.error().name());
        assertTrue(took < 2000, "interrupted after " + took + " ms");
        assertEquals("yes", run(ctx.id(), "kept").value());
        client.deleteContext(ctx.id());
    }

    @Test
    void aCellThatIgnoresTheInterruptIsKilledAndTheContextRestarted() {
        ContextInfo ctx = newContext();
        run(ctx.id(), "lost = 1");
        long t = System.nanoTime();
        CellRun run = run(new ExecuteCell(ctx.id(), """
                import signal, time
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                while True:
                    time.sleep(0.01)""", Map.of(), 300, 0));
        long took = (System.nanoTime() - t) / 1_000_000;
        assertEquals(Outcome.TIMEOUT, run.end().outcome(), run.toString());
        assertTrue(run.end().stateLost());
        assertTrue(run.end().reason().contains("state") && run.end().reason().contains("lost"), run.end().reason());
        assertTrue(took >= 2000 && took < 6000, "killed after " + took + " ms");

        CellRun after = run(ctx.id(), "lost");
        assertEquals("NameError", after.error().name(), "a fresh interpreter: " + after);
        assertEquals(1, after.end().executionCount(), "counting starts again");
        assertFalse(after.end().stateLost(), "the loss was already reported");
        assertEquals("2", run(ctx.id(), "1+1").value());
        assertEquals(List.of(ctx), client.listContexts().stream().filter(c -> c.id().equals(ctx.id())).toList());
        client.deleteContext(ctx.id());
    }

    @Test
    void outputOverTheLimitIsCutAndTheCellInterrupted() {
        ContextInfo ctx = newContext();
        run(ctx.id(), "kept = 7");
        CellRun run = run(new ExecuteCell(ctx.id(), "while True:\n    print('x' * 99)", Map.of(), 0, 10_000));
        assertEquals(Outcome.OUTPUT_TRUNCATED, run.end().outcome(), run.toString().substring(0, 300));
        assertFalse(run.end().stateLost());
        assertTrue(run.stdout().length() <= 10_000 && run.stdout().length() > 5_000, "" + run.stdout().length());
        assertEquals("7", run(ctx.id(), "kept").value());
        client.deleteContext(ctx.id());
    }

    @Test
    void aKernelThatDiesEndsTheCellAsKilledAndComesBackFresh() {
        ContextInfo ctx = newContext();
        run(ctx.id(), "gone = 1");
        CellRun run = run(ctx.id(), "print('bye')\nimport os\nos._exit(3)");
        assertEquals(Outcome.KILLED, run.end().outcome(), run.toString());
        assertTrue(run.end().stateLost());
        assertTrue(run.end().reason().contains("code 3"), run.end().reason());
        assertEquals("bye\n", run.stdout());
        CellRun after = run(ctx.id(), "'gone' in dir()");
        assertEquals("False", after.value(), after.toString());

        CellRun killed = run(ctx.id(), "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)");
        assertEquals(Outcome.KILLED, killed.end().outcome());
        assertTrue(killed.end().reason().contains("SIGKILL"), killed.end().reason());
        assertEquals("2", run(ctx.id(), "1+1").value());
        client.deleteContext(ctx.id());
    }

    @Test
    void contextsAreSeparateProcesses() {
        ContextInfo a = newContext();
        ContextInfo b = newContext();
        run(a.id(), "secret = 'a'");
        CellRun fromB = run(b.id(), "secret");
        assertEquals("NameError", fromB.error().name());
        String pidA = run(a.id(), "import os; os.getpid()").value();
        String pidB = run(b.id(), "import os; os.getpid()").value();
        assertNotEquals(pidA, pidB);
        if (AgentProcess.ROOT) {
            assertEquals("1000", run(a.id(), "os.getuid()").value(), "kernels run as the context's user");
        }
        client.deleteContext(a.id());
        client.deleteContext(b.id());
    }

    @Test
    void restartLosesStateKeepsTheIdAndDeleteForgets() {
        ContextInfo ctx = newContext();
        run(ctx.id(), "v = 3");
        String pid = run(ctx.id(), "import os; os.getpid()").value();
        ContextInfo restarted = client.restartContext(ctx.id());
        assertEquals(ctx, restarted);
        CellRun after = run(ctx.id(), "import os; (os.getpid(), 'v' in dir())");
        assertFalse(after.value().contains(pid + ","), after.value());
        assertTrue(after.value().endsWith("False)"), after.value());
        assertEquals(1, after.end().executionCount());

        assertTrue(client.listContexts().contains(ctx));
        client.deleteContext(ctx.id());
        assertFalse(client.listContexts().contains(ctx));
        AgentException gone = assertThrows(AgentException.class, () -> client.execute(
                new ExecuteCell(ctx.id(), "1", Map.of(), 0, 0)));
        assertEquals(AgentException.Code.NOT_FOUND, gone.code());
        assertEquals(AgentException.Code.NOT_FOUND,
                assertThrows(AgentException.class, () -> client.restartContext(ctx.id())).code());
        assertEquals(AgentException.Code.NOT_FOUND,
                assertThrows(AgentException.class, () -> client.deleteContext(ctx.id())).code());
    }

    @Test
    void restartDuringACellEndsItAsKilled() throws Exception {
        ContextInfo ctx = newContext();
        EventStream<CellEvent> stream = client.execute(new ExecuteCell(ctx.id(), "import time\ntime.sleep(30)", Map.of(), 0, 0));
        Thread.sleep(300);
        client.restartContext(ctx.id());
        CellRun run = CellRun.collect(stream, MAX);
        assertEquals(Outcome.KILLED, run.end().outcome());
        assertTrue(run.end().stateLost());
        assertTrue(run.end().reason().contains("restarted"), run.end().reason());
        assertEquals("2", run(ctx.id(), "1+1").value());
        client.deleteContext(ctx.id());
    }

    @Test
    void aBusyContextRunsCellsOneAfterAnother() throws Exception {
        ContextInfo ctx = newContext();
        CompletableFuture<CellRun> first = CompletableFuture.supplyAsync(
                () -> run(ctx.id(), "import time\ntime.sleep(0.5)\norder = ['first']"));
        Thread.sleep(100);
        CellRun second = run(ctx.id(), "order.append('second'); order");
        assertEquals("['first', 'second']", second.value(), second.toString());
        assertEquals(Outcome.OK, first.get().end().outcome());
        client.deleteContext(ctx.id());
    }

    @Test
    void envsPerExecuteAndPerContext() {
        ContextInfo ctx = client.createContext(new CreateContext("python", null, Map.of("CTX_VAR", "from-context"), null));
        CellRun with = run(new ExecuteCell(ctx.id(), "import os\nprint(os.environ.get('CELL_VAR'), os.environ.get('CTX_VAR'))",
                Map.of("CELL_VAR", "for-this-cell"), 0, 0));
        assertEquals("for-this-cell from-context\n", with.stdout());
        CellRun without = run(ctx.id(), "print(os.environ.get('CELL_VAR'), os.environ['MPLBACKEND'], os.environ['HOME'])");
        assertEquals("None Agg " + agent.userHome + "\n", without.stdout());
        CellRun shell = run(new ExecuteCell(ctx.id(), "!echo $CELL_VAR", Map.of("CELL_VAR", "in-a-shell"), 0, 0));
        assertEquals("in-a-shell\n", shell.stdout());
        client.deleteContext(ctx.id());
    }

    @Test
    void ipythonMagicsWork() {
        CellRun time = run(shared.id(), "%time total = sum(range(1000))");
        assertTrue(time.stdout().contains("Wall time"), time.toString());
        assertEquals("499500", run(shared.id(), "total").value());
        CellRun cellMagic = run(shared.id(), "%%time\nz = 5");
        assertTrue(cellMagic.stdout().contains("Wall time"), cellMagic.toString());
        CellRun shell = run(shared.id(), "!echo hello-from-shell && pwd");
        assertEquals("hello-from-shell\n" + agent.userHome + "\n", shell.stdout());
        CellRun captured = run(shared.id(), "lines = !printf 'a\\nb\\n'\nlen(lines)");
        assertEquals("2", captured.value(), captured.toString());
        CellRun pip = run(shared.id(), "%pip --version"); // installing needs the network policy; this does not
        assertTrue(pip.stdout().startsWith("pip "), pip.toString());
    }

    @Test
    void filesWrittenUnderTheHomeAreListed() {
        CellRun run = run(shared.id(), """
                import os
                with open(os.path.expanduser('~/out.csv'), 'w') as f:
                    f.write('a,b\\n1,2\\n')
                os.makedirs(os.path.expanduser('~/charts'), exist_ok=True)
                open(os.path.expanduser('~/charts/c.txt'), 'w').write('x')
                os.makedirs(os.path.expanduser('~/.hidden'), exist_ok=True)
                open(os.path.expanduser('~/.hidden/skip.txt'), 'w').write('x')""");
        List<FileChange> files = run.end().files();
        assertEquals(List.of(
                new FileChange(agent.userHome.resolve("charts/c.txt").toString(), "c.txt", 1),
                new FileChange(agent.userHome.resolve("out.csv").toString(), "out.csv", 8)), files, run.toString());
        assertEquals(List.of(), run(shared.id(), "1").end().files(), "unchanged files are not listed again");
        CellRun rewrite = run(shared.id(), "open(os.path.expanduser('~/out.csv'), 'a').write('3,4\\n')");
        assertEquals(List.of(new FileChange(agent.userHome.resolve("out.csv").toString(), "out.csv", 12)),
                rewrite.end().files());
    }

    @Test
    void thePlainPythonPathWithoutIPython() {
        long t = System.nanoTime();
        ContextInfo ctx = client.createContext(new CreateContext("python", null, Map.of("STOCKADE_KERNEL_IPYTHON", "0"), null));
        System.out.printf("kernel start without IPython: %.0f ms%n", (System.nanoTime() - t) / 1e6);
        assertEquals("False", run(ctx.id(), "import sys\n'IPython' in sys.modules").value());
        run(ctx.id(), "x = 20");
        CellRun value = run(ctx.id(), "display('shown')\nx * 2 + 2");
        assertEquals(2, value.results().size(), value.toString());
        assertEquals("shown", value.results().get(0).data().get("text"));
        assertEquals("42", value.value());
        assertEquals(2, run(ctx.id(), "1").end().executionCount() - value.end().executionCount() + 1);

        CellRun frame = run(ctx.id(), "import pandas as pd\npd.DataFrame({'q': [5]})");
        assertTrue(((String) frame.results().getFirst().data().get("html")).contains("<table"), frame.toString());
        assertEquals(Map.of("q", List.of(5L)), frame.results().getFirst().data().get("data"), frame.toString());
        CellRun plot = run(ctx.id(), "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()");
        assertPng((String) plot.results().getFirst().data().get("png"), 640, 480);

        CellRun error = run(ctx.id(), "def f():\n    raise ValueError('bad value')\nf()");
        assertEquals("ValueError", error.error().name());
        assertEquals("bad value", error.error().value());
        assertTrue(error.error().traceback().contains("raise ValueError('bad value')")
                && error.error().traceback().contains("f()"), error.error().traceback());
        assertFalse(error.error().traceback().contains("kernel"), error.error().traceback());
        CellRun timeout = run(new ExecuteCell(ctx.id(), "while True: pass", Map.of(), 300, 0));
        assertEquals(Outcome.TIMEOUT, timeout.end().outcome());
        assertFalse(timeout.end().stateLost());
        assertEquals("20", run(ctx.id(), "x").value());
        client.deleteContext(ctx.id());
    }

    @Test
    void theDefaultContextAndPrewarming() {
        ContextInfo warmed = client.warmDefaultContext("import json\npreloaded = True\nprint('not shown')");
        CellRun run = run(new ExecuteCell(null, "json.dumps({'preloaded': preloaded})", Map.of(), 0, 0));
        assertEquals("{\"preloaded\": true}", run.value(), run.toString());
        assertEquals(1, run.end().executionCount(), "the preload is not an execution");
        assertTrue(client.listContexts().contains(warmed));
        assertEquals(warmed, client.warmDefaultContext(null), "one default context");
    }

    @Test
    void badRequestsAreRefused() {
        AgentException language = assertThrows(AgentException.class,
                () -> client.createContext(new CreateContext("cobol", null, Map.of(), null)));
        assertEquals(AgentException.Code.INVALID_ARGUMENT, language.code());
        AgentException cwd = assertThrows(AgentException.class,
                () -> client.createContext(new CreateContext("python", "/no/such/dir", Map.of(), null)));
        assertEquals(AgentException.Code.INVALID_ARGUMENT, cwd.code());
        AgentException unknown = assertThrows(AgentException.class,
                () -> client.execute(new ExecuteCell("no-such-context", "1", Map.of(), 0, 0)));
        assertEquals(AgentException.Code.NOT_FOUND, unknown.code());
    }

    @Test
    void resultsLargerThanAFrameArriveWhole() {
        CellRun run = run(shared.id(), """
                class Big:
                    def _repr_html_(self): return '<p>' + 'y' * (3 << 20) + '</p>'
                display(Big())""");
        assertEquals(Outcome.OK, run.end().outcome(), run.end().toString());
        String html = (String) run.results().getFirst().data().get("html");
        assertEquals((3 << 20) + 7, html.length());
    }

    @Test
    void binaryGarbageAndSplitCharactersOnStdout() {
        CellRun run = run(shared.id(), """
                import sys, time
                sys.stdout.buffer.write(b'bad \\xff\\xfe end\\n')
                sys.stdout.buffer.write('snow \u2603'.encode()[:-1]); sys.stdout.flush(); time.sleep(0.05)
                sys.stdout.buffer.write('\u2603'.encode()[-1:] + b'\\n');""");
        assertEquals("bad \uFFFD\uFFFD end\nsnow \u2603\n", run.stdout(), run.toString());
    }

    @Test
    void deletingABusyContextEndsItsCellsAndRefusesTheWaitingOnes() throws Exception {
        ContextInfo ctx = newContext();
        EventStream<CellEvent> running = client.execute(new ExecuteCell(ctx.id(), "import time\ntime.sleep(30)", Map.of(), 0, 0));
        Thread.sleep(200);
        EventStream<CellEvent> waiting = client.execute(new ExecuteCell(ctx.id(), "1", Map.of(), 0, 0));
        Thread.sleep(200);
        client.deleteContext(ctx.id());
        CellRun ended = CellRun.collect(running, MAX);
        assertEquals(Outcome.KILLED, ended.end().outcome());
        assertTrue(ended.end().reason().contains("deleted"), ended.end().reason());
        AgentException refused = assertThrows(AgentException.class, () -> CellRun.collect(waiting, MAX));
        assertEquals(AgentException.Code.NOT_FOUND, refused.code(), refused.getMessage());
    }

    @Test
    void childrenLeftBehindDoNotHoldTheCellOpen() {
        ContextInfo ctx = newContext();
        long t = System.nanoTime();
        CellRun run = run(ctx.id(), "import subprocess\nchild = subprocess.Popen(['sleep', '30'])\n'started'");
        assertEquals("started", run.value());
        assertTrue(System.nanoTime() - t < 5_000_000_000L);
        assertEquals("True", run(ctx.id(), "child.poll() is None").value(), "the child still runs");
        client.deleteContext(ctx.id()); // kills the kernel's process group, the child with it
    }

    @Test
    void latencyOfATrivialCell() {
        ContextInfo ipython = newContext();
        ContextInfo plain = client.createContext(new CreateContext("python", null, Map.of("STOCKADE_KERNEL_IPYTHON", "0"), null));
        long ipythonMedian = measure(ipython, "IPython");
        measure(plain, "plain Python");
        assertTrue(ipythonMedian < 20_000, "median " + ipythonMedian + " us");
        client.deleteContext(ipython.id());
        client.deleteContext(plain.id());
    }

    private static long measure(ContextInfo ctx, String kind) {
        for (int i = 0; i < 300; i++) {
            run(ctx.id(), "1+1"); // warm up both sides (the JIT of the client above all)
        }
        List<Long> micros = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            long t = System.nanoTime();
            CellRun run = run(ctx.id(), "1+1");
            micros.add((System.nanoTime() - t) / 1000);
            assertEquals("2", run.value());
        }
        List<Long> sorted = micros.stream().sorted().toList();
        long median = sorted.get(sorted.size() / 2);
        long p99 = sorted.get(sorted.size() * 99 / 100);
        System.out.printf("1+1 cell round trip (%s, through the agent): median %.2f ms, p99 %.2f ms%n",
                kind, median / 1000.0, p99 / 1000.0);
        return median;
    }
}
