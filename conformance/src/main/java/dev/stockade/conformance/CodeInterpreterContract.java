package dev.stockade.conformance;

import dev.stockade.runtime.Capabilities;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The code interpreter (issue 3) on the wire that {@code @e2b/code-interpreter} speaks: requests
 * with {@code E2b-Sandbox-Port: 49999}; {@code POST /execute} answering NDJSON; {@code /contexts}.
 * Raw HTTP, so every field and line is checked as it travels: shapes, Jupyter semantics (state,
 * the last expression's value, DataFrames as HTML, matplotlib as PNG, tracebacks), streaming,
 * timeouts and their typed outcomes, contexts and their isolation, files, auth and bad input.
 */
public abstract class CodeInterpreterContract extends RuntimeContract {
    /** A sandbox shared by the tests that only read or add state of their own names. */
    RawClient.Box shared;

    @BeforeAll
    void up() {
        System.setProperty("java.awt.headless", "true");
        startServer();
        shared = c.create(Map.of("templateID", "code-interpreter-v1", "timeout", 300));
    }

    @AfterAll
    void down() {
        try {
            if (shared != null) c.kill(shared);
        } finally {
            stopServer();
        }
    }

    RawClient.Box box(Map<String, Object> limits) {
        Map<String, Object> body = new LinkedHashMap<>(Map.of("templateID", "code-interpreter-v1", "timeout", 300));
        if (limits != null) body.put("limits", limits);
        return c.create(body);
    }

    JsonNode newContext(RawClient.Box b, Map<String, Object> body) {
        RawClient.Response r = c.codeCall(b, "POST", "/contexts", body);
        assertEquals(200, r.status(), r.body());
        return r.json();
    }

    Map<String, Object> in(JsonNode context, String code) {
        return Map.of("code", code, "context_id", context.get("id").asText());
    }

    // ---------------------------------------------------------------------------------------------

    @Test
    void executeAnswersNdjsonLinesInE2bsShapesAndEndsTheBody() {
        RawClient.Cell cell = c.execute(shared, "shape_x = 40\nprint('hi')\nprint('warn', file=__import__('sys').stderr)\nshape_x + 2");
        assertEquals(200, cell.status(), cell.toString());
        assertTrue(cell.contentType().startsWith("application/x-ndjson"), cell.contentType());
        // Every line is one JSON object; the body ends right after end_of_execution.
        assertTrue(cell.raw().length > 0 && cell.raw()[cell.raw().length - 1] == '\n');
        for (byte x : cell.raw()) assertTrue(x >= 0, "lines are ASCII (non-ASCII travels \\u-escaped)");
        List<String> types = cell.lines().stream().map(l -> l.path("type").asText()).toList();
        assertEquals("end_of_execution", types.getLast(), types.toString());
        assertEquals("number_of_executions", types.get(types.size() - 2), types.toString());
        assertTrue(Set.of("stdout", "stderr", "result", "error", "number_of_executions", "end_of_execution").containsAll(types), types.toString());

        assertEquals("hi\n", cell.stdout());
        assertEquals("warn\n", cell.stderr());
        JsonNode out = cell.ofType("stdout").getFirst();
        assertTrue(out.get("text").isTextual() && out.has("timestamp"), out.toString());
        assertEquals(1, cell.results().size(), cell.lines().toString());
        JsonNode result = cell.results().getFirst();
        assertTrue(result.get("is_main_result").asBoolean(), result.toString());
        assertEquals("42", result.get("text").asText());
        assertNull(cell.error());
        assertTrue(cell.executionCount() >= 1);
        JsonNode end = cell.end();
        assertEquals("ok", end.get("outcome").asText(), end.toString());
        assertFalse(end.get("state_lost").asBoolean());
        assertTrue(end.get("files").isArray());
    }

    @Test
    void stateImportsAndFunctionsPersistAcrossCellsAndTheCountGrows() {
        RawClient.Box b = box(null);
        try {
            RawClient.Cell first = c.execute(b, "import math\nradius = 2\ndef area(r):\n    return math.pi * r * r\n");
            assertEquals("ok", first.outcome(), first.lines().toString());
            assertNull(first.text(), "a cell ending in a statement has no main result");
            RawClient.Cell second = c.execute(b, "round(area(radius), 3)");
            assertEquals("12.566", second.text(), second.lines().toString());
            assertEquals(first.executionCount() + 1, second.executionCount());
            RawClient.Cell third = c.execute(b, "radius += 1\nradius");
            assertEquals("3", third.text());
            assertEquals(second.executionCount() + 1, third.executionCount());
            // display() adds results before the main one; print of non-ASCII survives the trip.
            RawClient.Cell display = c.execute(b, "from IPython.display import display\ndisplay('shown')\nprint('é ✓ 日本')\n'last'");
            assertEquals(List.of(false, true), display.results().stream().map(r -> r.get("is_main_result").asBoolean()).toList(),
                    display.lines().toString());
            assertEquals("shown", display.results().getFirst().get("text").asText());
            assertEquals("last", display.text());
            assertEquals("é ✓ 日本\n", display.stdout());
        } finally {
            c.kill(b);
        }
    }

    @Test
    void printOutputStreamsWhileTheCellRuns() {
        List<Long> seen = new ArrayList<>();
        RawClient.Cell cell = c.execute(shared, Map.of("code", "import time\nfor i in range(3):\n    print('tick', i, flush=True)\n    time.sleep(0.4)\n"),
                c.code(shared), line -> seen.add(System.nanoTime()));
        assertEquals("tick 0\ntick 1\ntick 2\n", cell.stdout());
        int firstOut = -1;
        for (int i = 0; i < cell.lines().size(); i++) {
            if (cell.lines().get(i).path("type").asText().equals("stdout")) {
                firstOut = i;
                break;
            }
        }
        long beforeEnd = cell.arrivals().getLast() - cell.arrivals().get(firstOut);
        assertTrue(beforeEnd >= TimeUnit.MILLISECONDS.toNanos(700),
                "the first print arrived only " + beforeEnd / 1_000_000 + " ms before the end: output is buffered");
    }

    @Test
    void aDataFrameComesBackAsHtmlAndText() {
        RawClient.Cell cell = c.execute(shared, "import pandas as pd\ndf = pd.DataFrame({'city': ['Oslo', 'Lima'], 'temp': [3.5, 19.25]})\ndf");
        assertEquals("ok", cell.outcome(), cell.lines().toString());
        JsonNode main = cell.results().stream().filter(r -> r.get("is_main_result").asBoolean()).findFirst().orElseThrow();
        String html = main.path("html").asText();
        assertTrue(html.contains("<table") && html.contains("Oslo") && html.contains("19.25") && html.contains("temp"), html);
        String text = main.path("text").asText();
        assertTrue(text.contains("Oslo") && text.contains("Lima") && text.contains("3.50"), text);
    }

    @Test
    void matplotlibFiguresComeBackAsPngsOfTheFiguresSize() throws IOException {
        // plt.show() publishes the figure.
        RawClient.Cell shown = c.execute(shared, "import matplotlib.pyplot as plt\nfig = plt.figure(figsize=(4, 3), dpi=100)\n"
                + "plt.plot([1, 2, 3], [3, 1, 2])\nplt.show()\n");
        assertEquals("ok", shown.outcome(), shown.lines().toString());
        List<JsonNode> pngs = shown.results().stream().filter(r -> r.has("png")).toList();
        assertEquals(1, pngs.size(), shown.lines().toString());
        assertFalse(pngs.getFirst().get("is_main_result").asBoolean());
        BufferedImage img = ImageIO.read(new ByteArrayInputStream(Base64.getMimeDecoder().decode(pngs.getFirst().get("png").asText())));
        assertNotNull(img, "the png decodes");
        assertEquals(400, img.getWidth());
        assertEquals(300, img.getHeight());

        // A figure left open at the end of the cell comes back too, once.
        RawClient.Cell open = c.execute(shared, "plt.figure(figsize=(2, 2), dpi=50)\nplt.bar(['a', 'b'], [1, 2])\nNone");
        List<JsonNode> left = open.results().stream().filter(r -> r.has("png")).toList();
        assertEquals(1, left.size(), open.lines().toString());
        BufferedImage small = ImageIO.read(new ByteArrayInputStream(Base64.getMimeDecoder().decode(left.getFirst().get("png").asText())));
        assertEquals(100, small.getWidth());
        RawClient.Cell after = c.execute(shared, "1");
        assertTrue(after.results().stream().noneMatch(r -> r.has("png")), "a published figure is not sent again");
    }

    @Test
    void anExceptionGivesNameValueAndATracebackOfTheUsersCode() {
        RawClient.Cell cell = c.execute(shared, "def inner():\n    return 1 / 0\n\ndef outer():\n    return inner()\n\nprint('before')\nouter()\n");
        assertEquals(200, cell.status(), "an exception in the cell is not an HTTP error");
        assertEquals("before\n", cell.stdout());
        JsonNode err = cell.error();
        assertNotNull(err, cell.lines().toString());
        assertEquals("ZeroDivisionError", err.get("name").asText());
        assertEquals("division by zero", err.get("value").asText());
        String tb = err.get("traceback").asText();
        assertTrue(tb.contains("1 / 0") && tb.contains("inner") && tb.contains("outer()"), tb);
        assertFalse(tb.contains("stockade_kernel") || tb.contains("stockade_agent"), "the kernel's own frames are hidden:\n" + tb);
        assertFalse(tb.contains("\u001b["), "no ANSI colours:\n" + tb);
        assertEquals("error", cell.outcome());
        assertFalse(cell.end().get("state_lost").asBoolean());

        RawClient.Cell syntax = c.execute(shared, "def broken(:\n    pass");
        assertEquals("SyntaxError", syntax.error().get("name").asText(), syntax.lines().toString());
        assertEquals("error", syntax.outcome());
        assertEquals("2", c.execute(shared, "1 + 1").text(), "the context keeps working");
    }

    @Test
    void aCellPastItsTimeoutIsInterruptedAndSaysSo() {
        RawClient.Box b = box(null);
        try {
            assertEquals("ok", c.execute(b, "kept = 'still here'").outcome());
            long t0 = System.nanoTime();
            RawClient.Cell slow = c.execute(b, Map.of("code", "import time\nwhile True:\n    time.sleep(0.05)\n", "timeout", 1));
            long took = System.nanoTime() - t0;
            assertEquals("timeout", slow.outcome(), slow.lines().toString());
            assertNotNull(slow.error(), "a timed-out cell carries an error for the SDK");
            assertFalse(slow.end().get("state_lost").asBoolean(), "KeyboardInterrupt stopped it: the state survives");
            assertFalse(slow.end().path("reason").asText().isEmpty());
            assertTrue(took < TimeUnit.SECONDS.toNanos(8), "took " + took / 1_000_000 + " ms");
            assertEquals("still here", c.execute(b, "kept").text());

            // A cell that ignores the interrupt: its interpreter is killed and restarted, state lost.
            RawClient.Cell stubborn = c.execute(b, Map.of("code", "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                    + "while True:\n    pass\n", "timeout", 1));
            assertEquals("timeout", stubborn.outcome(), stubborn.lines().toString());
            assertTrue(stubborn.end().get("state_lost").asBoolean(), stubborn.end().toString());
            RawClient.Cell after = c.execute(b, "kept");
            assertEquals("NameError", after.error().get("name").asText(), after.lines().toString());
            assertEquals("2", c.execute(b, "1 + 1").text());
        } finally {
            c.kill(b);
        }
    }

    @Test
    void theSandboxsCommandTimeoutCapsEveryCell() {
        RawClient.Box b = box(Map.of("commandTimeoutSeconds", 2));
        try {
            long t0 = System.nanoTime();
            RawClient.Cell cell = c.execute(b, Map.of("code", "import time\ntime.sleep(60)", "timeout", 100));
            long took = System.nanoTime() - t0;
            assertEquals("timeout", cell.outcome(), cell.lines().toString());
            assertTrue(took < TimeUnit.SECONDS.toNanos(10), "took " + took / 1_000_000 + " ms");
        } finally {
            c.kill(b);
        }
    }

    @Test
    void contextsAreCreatedListedRestartedAndDeleted() {
        RawClient.Box b = box(null);
        try {
            JsonNode home = newContext(b, Map.of());
            assertEquals("python", home.get("language").asText());
            assertEquals("/home/user", home.get("cwd").asText());
            assertFalse(home.get("id").asText().isEmpty());
            JsonNode tmp = newContext(b, Map.of("language", "python", "cwd", "/tmp"));
            assertEquals("/tmp", tmp.get("cwd").asText());
            assertEquals("/tmp", c.execute(b, in(tmp, "import os\nos.getcwd()")).text());

            RawClient.Response list = c.codeCall(b, "GET", "/contexts", null);
            assertEquals(200, list.status());
            Set<String> ids = new java.util.HashSet<>();
            for (JsonNode ctx : list.json()) {
                ids.add(ctx.get("id").asText());
                assertTrue(ctx.has("language") && ctx.has("cwd"), ctx.toString());
            }
            assertTrue(ids.containsAll(Set.of(home.get("id").asText(), tmp.get("id").asText())), list.body());

            assertEquals("ok", c.execute(b, in(home, "v = 7")).outcome());
            assertEquals("7", c.execute(b, in(home, "v")).text());
            RawClient.Response restart = c.codeCall(b, "POST", "/contexts/" + home.get("id").asText() + "/restart", null);
            assertTrue(restart.status() / 100 == 2, restart.body());
            assertEquals("NameError", c.execute(b, in(home, "v")).error().get("name").asText(), "a restart loses the state");

            RawClient.Response delete = c.codeCall(b, "DELETE", "/contexts/" + tmp.get("id").asText(), null);
            assertTrue(delete.status() / 100 == 2, delete.body());
            Set<String> after = new java.util.HashSet<>();
            for (JsonNode ctx : c.codeCall(b, "GET", "/contexts", null).json()) after.add(ctx.get("id").asText());
            assertFalse(after.contains(tmp.get("id").asText()));
            assertTrue(after.contains(home.get("id").asText()));

            // A gone or unknown context is 404 {code: 404} everywhere.
            RawClient.Cell gone = c.execute(b, in(tmp, "1"));
            assertEquals(404, gone.status());
            assertEquals(404, gone.errorBody().get("code").asInt(), String.valueOf(gone.errorBody()));
            assertEquals(404, c.codeCall(b, "POST", "/contexts/nope/restart", null).status());
            assertEquals(404, c.codeCall(b, "DELETE", "/contexts/nope", null).status());
            assertEquals(404, c.codeCall(b, "DELETE", "/contexts/" + tmp.get("id").asText(), null).status());
        } finally {
            c.kill(b);
        }
    }

    @Test
    void contextsAreSeparateInterpreters() {
        RawClient.Box b = box(null);
        try {
            JsonNode one = newContext(b, Map.of());
            JsonNode two = newContext(b, Map.of());
            assertEquals("ok", c.execute(b, in(one, "secret = 'one'\nimport os\npid = os.getpid()")).outcome());
            RawClient.Cell other = c.execute(b, in(two, "secret"));
            assertEquals("NameError", other.error().get("name").asText(), other.lines().toString());
            String pidOne = c.execute(b, in(one, "pid")).text();
            String pidTwo = c.execute(b, in(two, "import os\nos.getpid()")).text();
            String pidDefault = c.execute(b, "import os\nos.getpid()").text();
            assertEquals(3, Set.of(pidOne, pidTwo, pidDefault).size(), "one process per context: " + pidOne + " " + pidTwo + " " + pidDefault);
            RawClient.Cell dflt = c.execute(b, "secret");
            assertEquals("NameError", dflt.error().get("name").asText());
            // A context killing itself leaves the others alone.
            RawClient.Cell dead = c.execute(b, in(one, "import os\nos._exit(3)"));
            assertEquals("killed", dead.outcome(), dead.lines().toString());
            assertTrue(dead.end().get("state_lost").asBoolean());
            assertEquals("two", c.execute(b, in(two, "secret = 'two'\nsecret")).text());
            assertEquals("2", c.execute(b, in(one, "1 + 1")).text(), "the killed context was restarted");
        } finally {
            c.kill(b);
        }
    }

    @Test
    void codeRoutesNeedTheSandboxsTokenOrTheKey() {
        RawClient.Response created = c.call("POST", "/sandboxes", Map.of("templateID", "code-interpreter-v1", "timeout", 120));
        assertEquals(201, created.status());
        String id = created.json().get("sandboxID").asText();
        String token = created.json().get("envdAccessToken").asText();
        RawClient.Box b = new RawClient.Box(id, token);
        try {
            assertEquals(token, created.json().path("trafficAccessToken").asText(),
                    "trafficAccessToken (what @e2b/code-interpreter sends) is the sandbox's token");
            Map<String, String> none = Map.of("E2b-Sandbox-Id", id, "E2b-Sandbox-Port", "49999");
            RawClient.Cell noToken = c.execute(b, Map.of("code", "1"), none, null);
            assertEquals(401, noToken.status());
            assertEquals(401, noToken.errorBody().get("code").asInt());
            assertEquals(401, c.call("GET", "/contexts", null, none).status());
            assertEquals(401, c.call("POST", "/contexts", Map.of(), none).status());
            Map<String, String> wrong = new HashMap<>(none);
            wrong.put("X-Access-Token", "0".repeat(48));
            assertEquals(401, c.execute(b, Map.of("code", "1"), wrong, null).status());
            assertEquals(401, c.call("GET", "/contexts", null, wrong).status());

            // What the SDK sends: the traffic token on /contexts, both on /execute; the API key works too.
            Map<String, String> traffic = new HashMap<>(none);
            traffic.put("E2B-Traffic-Access-Token", token);
            assertEquals(200, c.call("GET", "/contexts", null, traffic).status());
            Map<String, String> both = new HashMap<>(traffic);
            both.put("X-Access-Token", token);
            assertEquals("3", c.execute(b, Map.of("code", "1 + 2"), both, null).text());
            Map<String, String> key = new HashMap<>(none);
            key.put("X-API-Key", TestServer.KEY);
            assertEquals(200, c.call("GET", "/contexts", null, key).status());
        } finally {
            c.kill(b);
        }
        // Ended or unknown sandboxes answer 502 {code: 502}, as envd routes do.
        RawClient.Cell ended = c.execute(b, "1");
        assertEquals(502, ended.status());
        assertEquals(502, ended.errorBody().get("code").asInt());
        assertEquals(502, c.codeCall(b, "GET", "/contexts", null).status());
        // An unknown id with another sandbox's token: no credential for it, 401 as for any id.
        RawClient.Box unknown = new RawClient.Box("nosuchsandbox0000000", token);
        assertEquals(401, c.codeCall(unknown, "POST", "/contexts", Map.of()).status());
    }

    @Test
    void badRequestsAreClear400sAndUnknownRoutes404() {
        RawClient.Cell r = c.execute(shared, Map.of("code", "1", "language", "r"));
        assertEquals(400, r.status());
        assertEquals(400, r.errorBody().get("code").asInt());
        assertTrue(r.errorBody().get("message").asText().contains("Python"), r.errorBody().toString());
        RawClient.Response ts = c.codeCall(shared, "POST", "/contexts", Map.of("language", "typescript"));
        assertEquals(400, ts.status(), ts.body());
        assertTrue(ts.json().get("message").asText().contains("typescript"), ts.body());
        assertEquals("1", c.execute(shared, Map.of("code", "1", "language", "python")).text());
        assertEquals(400, c.execute(shared, Map.of("context_id", "x")).status(), "code is required");
        assertEquals(400, c.execute(shared, Map.of("code", 12)).status());
        assertEquals(400, c.execute(shared, "{not json".getBytes()).status());
        assertEquals(400, c.execute(shared, Map.of("code", "1", "env_vars", Map.of("A", 1))).status());
        assertEquals(400, c.execute(shared, Map.of("code", "1", "timeout", "soon")).status());
        assertEquals(404, c.execute(shared, Map.of("code", "1", "context_id", "no-such-context")).status());
        assertEquals(404, c.codeCall(shared, "GET", "/nothing-here", null).status());
        assertEquals(400, c.codeCall(shared, "GET", "/execute", null).status());
    }

    @Test
    void filesTheCellWritesUnderHomeAreListed() {
        RawClient.Box b = box(null);
        try {
            RawClient.Cell cell = c.execute(b, "import os\nopen('/home/user/out.csv', 'w').write('a,b\\n1,2\\n')\n"
                    + "os.makedirs('/home/user/charts', exist_ok=True)\nopen('/home/user/charts/p.bin', 'wb').write(b'x' * 1000)\n"
                    + "open('/tmp/elsewhere.txt', 'w').write('not listed')\n");
            assertEquals("ok", cell.outcome(), cell.lines().toString());
            Map<String, JsonNode> files = new HashMap<>();
            for (JsonNode f : cell.end().get("files")) files.put(f.get("path").asText(), f);
            assertEquals(Set.of("/home/user/out.csv", "/home/user/charts/p.bin"), files.keySet(), cell.end().toString());
            assertEquals("out.csv", files.get("/home/user/out.csv").get("name").asText());
            assertEquals(8, files.get("/home/user/out.csv").get("size").asLong());
            assertEquals(1000, files.get("/home/user/charts/p.bin").get("size").asLong());
            // The file the cell made can be fetched through /files at once.
            assertEquals("a,b\n1,2\n", new String(c.download(b, "/home/user/out.csv").body()));
            // A cell that writes nothing lists nothing.
            assertEquals(0, c.execute(b, "x = 1").end().get("files").size());
        } finally {
            c.kill(b);
        }
    }

    @Test
    void envVarsOfTheCellAndTheSandboxReachTheCode() {
        RawClient.Box b = c.create(Map.of("templateID", "code-interpreter-v1", "timeout", 120, "envVars", Map.of("FROM_SANDBOX", "s")));
        try {
            RawClient.Cell cell = c.execute(b, Map.of("code", "import os\n(os.environ.get('FROM_SANDBOX'), os.environ.get('FROM_CELL'))",
                    "env_vars", Map.of("FROM_CELL", "c")));
            assertEquals("('s', 'c')", cell.text(), cell.lines().toString());
            assertEquals("('s', None)", c.execute(b, "(os.environ.get('FROM_SANDBOX'), os.environ.get('FROM_CELL'))").text(),
                    "a cell's env_vars last for that cell only");
            JsonNode ctx = newContext(b, Map.of());
            assertEquals("s", c.execute(b, in(ctx, "import os\nos.environ.get('FROM_SANDBOX')")).text());
        } finally {
            c.kill(b);
        }
    }

    @Test
    void aClientThatGoesAwayInterruptsItsCell() throws Exception {
        RawClient.Box b = box(null);
        try {
            HttpRequest req = HttpRequest.newBuilder(c.base.resolve("/execute")).timeout(Duration.ofSeconds(60))
                    .header("Content-Type", "application/json")
                    .POST(HttpRequest.BodyPublishers.ofByteArray(RawClient.JSON.writeValueAsBytes(Map.of("code",
                            "import time\nprint('started', flush=True)\ntime.sleep(120)\nfinished = True\n"))))
                    .headers(c.code(b).entrySet().stream().flatMap(e -> java.util.stream.Stream.of(e.getKey(), e.getValue()))
                            .toArray(String[]::new))
                    .build();
            HttpResponse<InputStream> res = c.http.send(req, HttpResponse.BodyHandlers.ofInputStream());
            InputStream body = res.body();
            // Keepalive lines come first when the interpreter takes over 2 s to start (gVisor on a
            // loaded host): read up to the cell's first output.
            StringBuilder first = new StringBuilder();
            for (int lines = 0; lines < 100 && !first.toString().contains("started"); lines++) {
                first.setLength(0);
                int ch;
                while ((ch = body.read()) >= 0 && ch != '\n') first.append((char) ch);
                if (ch < 0) break;
            }
            assertTrue(first.toString().contains("started"), first.toString());
            body.close(); // the client goes away mid-cell
            // The server notices at its next write (a keepalive) and the cell is interrupted, as
            // E2B's server does: the next cell runs at once in the same interpreter, state kept.
            long t = System.nanoTime();
            RawClient.Cell later = c.execute(b, "'finished' in globals(), 'time' in globals()");
            assertEquals("(False, True)", later.text(), "the cell was interrupted: " + later.lines());
            assertTrue(System.nanoTime() - t < 30_000_000_000L, "the next cell did not wait for the sleep");
        } finally {
            c.kill(b);
        }
    }

    @Test
    void badCellsGiveTypedOutcomesAndTheSandboxKeepsWorking() {
        RawClient.Box b = box(Map.of("outputMB", 1, "memoryMB", 384));
        try {
            RawClient.Cell flood = c.execute(b, "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n");
            assertEquals("output_truncated", flood.outcome(), flood.end() + " after " + flood.lines().size() + " lines");
            assertTrue(flood.stdout().length() <= 1024 * 1024 + 65536, "output beyond the limit is dropped: " + flood.stdout().length());

            RawClient.Cell garbage = c.execute(b, "import sys\nsys.stdout.buffer.write(bytes(range(256)))\nsys.stdout.flush()\n'done'");
            assertEquals("done", garbage.text(), garbage.lines().toString());
            assertTrue(garbage.stdout().contains("\uFFFD"), "bad bytes become U+FFFD");

            RawClient.Cell kill9 = c.execute(b, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)");
            assertEquals("killed", kill9.outcome(), kill9.lines().toString());
            assertTrue(kill9.end().get("state_lost").asBoolean());

            if (checksNeeding(Capabilities.PER_PROCESS_LIMITS, "a cell that eats all memory ends the whole sandbox there"
                    + " (LimitsContract covers what that runtime reports)")) {
                RawClient.Cell memory = c.execute(b, "blocks = []\nwhile True:\n    blocks.append(bytearray(16 * 1024 * 1024))\n");
                assertTrue(Set.of("killed", "error").contains(memory.outcome()), memory.lines().toString());
            }

            RawClient.Cell forks = c.execute(b, "import subprocess\nsubprocess.Popen(['sleep', '300'])\n'forked'");
            assertEquals("forked", forks.text(), forks.lines().toString());

            assertEquals("4", c.execute(b, "2 + 2").text(), "the sandbox still runs cells");
            assertEquals("hi\n", c.run(b, "echo hi").stdout(), "and commands");
        } finally {
            c.kill(b);
        }
    }

    @Test
    void ipythonMagicsWorkInTheDefaultTemplate() {
        RawClient.Cell shell = c.execute(shared, "!echo from-shell");
        assertTrue(shell.stdout().contains("from-shell"), shell.lines().toString());
        RawClient.Cell time = c.execute(shared, "%time sum(range(1000))");
        assertEquals("499500", time.text(), time.lines().toString());
        assertTrue(time.stdout().contains("Wall time"), time.stdout());
    }

    /** The lines' types, for messages. */
    String types(RawClient.Cell cell) {
        return cell.lines().stream().map(l -> l.path("type").asText()).collect(Collectors.joining(","));
    }

    @Test
    void differentContextsRunAtTheSameTimeAndOneContextRunsItsCellsInOrder() throws Exception {
        RawClient.Box b = box(null);
        try {
            JsonNode one = newContext(b, Map.of());
            JsonNode two = newContext(b, Map.of());
            long t0 = System.nanoTime();
            var a = java.util.concurrent.CompletableFuture.supplyAsync(() -> c.execute(b, in(one, "import time\ntime.sleep(1)\n'a'")));
            var z = java.util.concurrent.CompletableFuture.supplyAsync(() -> c.execute(b, in(two, "import time\ntime.sleep(1)\n'z'")));
            assertEquals("a", a.get(30, TimeUnit.SECONDS).text());
            assertEquals("z", z.get(30, TimeUnit.SECONDS).text());
            long took = System.nanoTime() - t0;
            assertTrue(took < TimeUnit.MILLISECONDS.toNanos(1900), "contexts ran one after the other: " + took / 1_000_000 + " ms");
            assertNotEquals(a.get().executionCount(), -1);
        } finally {
            c.kill(b);
        }
    }
}
