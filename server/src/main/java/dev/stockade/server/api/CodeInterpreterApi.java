package dev.stockade.server.api;

import com.fasterxml.jackson.core.json.JsonWriteFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectWriter;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.protocol.CellEvent;
import dev.stockade.protocol.ContextInfo;
import dev.stockade.protocol.CreateContext;
import dev.stockade.protocol.ExecuteCell;
import dev.stockade.protocol.FileChange;
import dev.stockade.protocol.Outcome;
import dev.stockade.runtime.Limits;
import dev.stockade.server.core.Sandbox;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.session.CellRun;
import dev.stockade.server.session.Sessions;
import java.io.IOException;
import java.io.OutputStream;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The code interpreter (E2B's port 49999, what {@code @e2b/code-interpreter} talks to):
 * {@code POST /execute} streams a cell's events as NDJSON; {@code /contexts} creates, lists,
 * restarts and deletes interpreter contexts. The agent runs the kernels (one process per context)
 * and {@link Sessions} applies the server's rules; this class validates, translates and streams.
 * Each call runs on its request's virtual thread.
 *
 * <p>Wire (docs/e2b-wire.md §12): one JSON object per {@code \n}-terminated line, each flushed at
 * once; {@code stdout}/{@code stderr} {text, timestamp}, {@code result} {is_main_result, MIME
 * fields}, {@code error} {name, value, traceback}, then {@code number_of_executions}
 * {execution_count} and {@code end_of_execution} carrying Stockade's extensions (outcome, reason,
 * state_lost, files); then the body ends. Lines are pure ASCII (non-ASCII is \\u-escaped), because
 * the SDK decodes each network chunk on its own and would garble a character split between two.
 */
final class CodeInterpreterApi {
    /** A cell travels to the agent in one 1 MiB frame: larger bodies could never run. */
    private static final int MAX_EXECUTE_BODY = 1024 * 1024;
    private static final int MAX_BODY = 64 * 1024;
    private static final Pattern CONTEXT = Pattern.compile("/contexts/([^/]+)(/restart)?");
    /** How long a chunk of stdout or stderr waits for the next chunk of the same stream to join it. */
    private static final Duration COALESCE = Duration.ofMillis(2);
    /**
     * How long a chunk that does not end a line waits: print() writes the newline apart from its
     * text, and a busy host can put more than COALESCE between the two.
     */
    private static final Duration COALESCE_LINE = Duration.ofMillis(25);
    private static final int COALESCE_MAX_CHARS = 64 * 1024;
    /**
     * How long a silent cell waits before a keepalive line: writing is the only way to notice a
     * client that went away (E2B's server writes one every 5 s; the SDKs skip unknown types).
     */
    private static final Duration KEEPALIVE = Duration.ofSeconds(2);

    private final Sessions sessions = new Sessions();
    private final ObjectMapper json = new ObjectMapper();
    private final ObjectWriter lines = json.writer().with(JsonWriteFeature.ESCAPE_NON_ASCII);

    /** Returns false when no route matches (the router answers 404). */
    boolean handle(Request r, Sandbox sb) throws IOException {
        String path = r.path();
        String method = r.method();
        if (path.equals("/execute")) {
            if (!method.equals("POST")) throw methodNotAllowed(method, path);
            execute(r, sb);
            return true;
        }
        if (path.equals("/contexts")) {
            switch (method) {
                case "POST" -> createContext(r, sb);
                case "GET" -> listContexts(r, sb);
                default -> throw methodNotAllowed(method, path);
            }
            return true;
        }
        Matcher m = CONTEXT.matcher(path);
        if (!m.matches()) return false;
        String id = BodyFields.percentDecode(m.group(1));
        if (m.group(2) != null) {
            if (!method.equals("POST")) throw methodNotAllowed(method, path);
            r.body(MAX_BODY);
            sessions.restartContext(sb, id);
            r.send(204, new byte[0]);
        } else {
            if (!method.equals("DELETE")) throw methodNotAllowed(method, path);
            sessions.deleteContext(sb, id);
            r.send(204, new byte[0]);
        }
        return true;
    }

    private void createContext(Request r, Sandbox sb) throws IOException {
        JsonNode b = r.jsonBody(MAX_BODY);
        String language = language(b);
        String cwd = BodyFields.textField(b, "cwd");
        if (cwd != null && cwd.isEmpty()) cwd = null;
        ContextInfo c = sessions.createContext(sb, new CreateContext(language, cwd, sb.processEnv(), EnvdContext.DEFAULT_USER));
        r.sendJson(200, describe(c));
    }

    private void listContexts(Request r, Sandbox sb) throws IOException {
        ArrayNode out = json.createArrayNode();
        for (ContextInfo c : sessions.contexts(sb)) out.add(describe(c));
        r.sendJson(200, out);
    }

    private ObjectNode describe(ContextInfo c) {
        ObjectNode n = json.createObjectNode();
        n.put("id", c.id());
        n.put("language", c.language());
        n.put("cwd", c.cwd());
        return n;
    }

    /**
     * Python (null, empty or "python" in any case), bash (E2B's bash kernel: a persistent shell per
     * context) or JavaScript ("javascript" or "js": a persistent node per context); anything else is
     * a 400 that names what is available. TypeScript, R and Java kernels are not in the template.
     */
    private static String language(JsonNode b) {
        String language = BodyFields.textField(b, "language");
        if (language == null || language.isEmpty()) return "python";
        String l = language.strip().toLowerCase(Locale.ROOT);
        switch (l) {
            case "python", "bash", "javascript" -> { return l; }
            case "js" -> { return "javascript"; }
            default -> throw StockadeError.invalid("language '" + language + "' is not available: this server's code"
                    + " interpreter runs Python, bash and JavaScript. Send language \"python\", \"bash\" or"
                    + " \"javascript\", or leave it out.");
        }
    }

    private void execute(Request r, Sandbox sb) throws IOException {
        JsonNode b = r.jsonBody(MAX_EXECUTE_BODY);
        JsonNode codeNode = b.get("code");
        if (codeNode == null || codeNode.isNull()) throw StockadeError.invalid("code is required");
        if (!codeNode.isTextual()) throw StockadeError.invalid("code must be a string");
        String language = language(b);
        String contextId = BodyFields.textField(b, "context_id");
        if (contextId != null && contextId.isEmpty()) contextId = null;
        r.audit(contextId == null ? "default context" : "context " + contextId, "code " + Request.digest(codeNode.asText()));
        Map<String, String> envs = BodyFields.stringMap(b, "env_vars");
        if (contextId == null && !sb.processEnv().isEmpty()) {
            // The default context is the agent's own (created on first use, without the sandbox's
            // environment): the sandbox's variables come with each of its cells, the cell's own on top.
            Map<String, String> merged = new java.util.LinkedHashMap<>(sb.processEnv());
            merged.putAll(envs);
            envs = merged;
        }
        Limits limits = sb.limits();
        long timeoutMillis = cellTimeoutMillis(b, limits);
        long outputLimit = limits.outputMB() * 1024L * 1024L;
        // A named context has its own language; without one, the language picks the default context.
        ExecuteCell cell = new ExecuteCell(contextId, codeNode.asText(), envs, timeoutMillis, outputLimit,
                contextId == null ? language : null);
        // Errors until here (bad body, unknown context) are plain HTTP errors; from here on the answer is a 200 stream.
        try (CellRun run = sessions.execute(sb, cell)) {
            r.setResponseHeader("Content-Type", "application/x-ndjson");
            r.setResponseHeader("Cache-Control", "no-store");
            AbortableBody body = new AbortableBody(r, r.respond(200, 0));
            try (OutputStream out = body) {
                // Send the headers now: the SDK's request timeout runs until they arrive, and a cell
                // may stay silent for longer than that.
                out.flush();
                relay(run, out, sb, body);
            }
        }
    }

    /**
     * The cell's wall clock: the sandbox's commandTimeoutSeconds, or Stockade's optional
     * {@code timeout} field (seconds) when it is shorter.
     */
    static long cellTimeoutMillis(JsonNode b, Limits limits) {
        long max = limits.commandTimeoutSeconds() * 1000L;
        JsonNode t = b.get("timeout");
        if (t == null || t.isNull()) return max;
        if (!t.isNumber() || !(t.asDouble() > 0)) throw StockadeError.invalid("timeout must be a positive number of seconds");
        return Math.min(max, Math.max(1, (long) Math.ceil(t.asDouble() * 1000)));
    }

    /**
     * Copies the cell's events to the client as they come. A client that goes away is noticed at
     * the next write (a keepalive when the cell is silent): the IOException closes the run, and the
     * agent interrupts the cell, so that its context is free for the next one. The run always ends
     * with an End event: the server's verdicts (a backstop, a broken link) arrive as an Error and an
     * End like the agent's; but when the sandbox itself ended during the cell, the body is cut off
     * instead of ended, which is what the SDKs turn into their "sandbox was killed" error.
     */
    private void relay(CellRun run, OutputStream out, Sandbox sb, AbortableBody body) throws IOException {
        boolean errorSent = false;
        CellEvent pending = null;
        while (true) {
            CellEvent ev = pending;
            pending = null;
            if (ev == null) {
                Optional<CellEvent> next = run.next(KEEPALIVE);
                if (next.isEmpty()) {
                    write(out, keepalive());
                    continue;
                }
                ev = next.get();
            }
            if (ev instanceof CellEvent.Stdout || ev instanceof CellEvent.Stderr) {
                // print() writes its text and its newline separately: chunks of one stream that follow
                // each other within a moment travel as one line, as Jupyter's kernels batch them.
                StringBuilder text = new StringBuilder(ev instanceof CellEvent.Stdout o ? o.text() : ((CellEvent.Stderr) ev).text());
                long until = System.nanoTime() + COALESCE_LINE.toNanos() * 2; // output never waits longer
                while (text.length() < COALESCE_MAX_CHARS && System.nanoTime() < until) {
                    boolean lineEnded = text.isEmpty() || text.charAt(text.length() - 1) == '\n';
                    Optional<CellEvent> more = run.next(lineEnded ? COALESCE : COALESCE_LINE);
                    if (more.isEmpty()) break;
                    if (more.get() instanceof CellEvent.Stdout o && ev instanceof CellEvent.Stdout) {
                        text.append(o.text());
                    } else if (more.get() instanceof CellEvent.Stderr o && ev instanceof CellEvent.Stderr) {
                        text.append(o.text());
                    } else {
                        pending = more.get();
                        break;
                    }
                }
                ev = ev instanceof CellEvent.Stdout ? new CellEvent.Stdout(text.toString()) : new CellEvent.Stderr(text.toString());
            }
            switch (ev) {
                case CellEvent.Stdout o -> write(out, output("stdout", o.text()));
                case CellEvent.Stderr o -> write(out, output("stderr", o.text()));
                case CellEvent.Result res -> write(out, result(res));
                case CellEvent.Error e -> {
                    // The SDKs keep one error per execution: a second one would replace the first.
                    if (!errorSent) write(out, error(e.name(), e.value(), e.traceback()));
                    errorSent = true;
                }
                case CellEvent.End e -> {
                    if (e.outcome() == Outcome.KILLED && !sb.isLive()) {
                        body.abort();
                        throw new IOException("sandbox " + sb.id() + " ended during the cell: the response is cut off");
                    }
                    if (!errorSent && e.outcome() != Outcome.OK && e.outcome() != Outcome.ERROR) {
                        // The cell did not finish on its own: the SDK must see an error, not a quiet success.
                        write(out, error(CellRun.errorName(e.outcome()), e.reason() == null ? e.outcome().wireName() : e.reason(), ""));
                    }
                    write(out, end(e.executionCount(), e.outcome(), e.reason(), e.stateLost(), e.files()));
                    return;
                }
            }
        }
    }

    private ObjectNode keepalive() {
        ObjectNode n = json.createObjectNode();
        n.put("type", "keepalive");
        return n;
    }

    /**
     * The response body, which can be cut off: once aborted, close() fails instead of writing the
     * chunked body's last chunk, and the request ends as failed ({@link Request#abortResponse}), on
     * which the HTTP server closes the connection, so the client sees a truncated body.
     */
    private static final class AbortableBody extends java.io.FilterOutputStream {
        private volatile boolean aborted;

        private final Request request;

        AbortableBody(Request request, OutputStream out) {
            super(out);
            this.request = request;
        }

        void abort() {
            aborted = true;
            request.abortResponse();
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
        }

        @Override
        public void close() throws IOException {
            if (aborted) throw new IOException("response aborted");
            super.close();
        }
    }

    private ObjectNode output(String type, String text) {
        ObjectNode n = json.createObjectNode();
        n.put("type", type);
        n.put("text", text);
        n.put("timestamp", Instant.now().toString());
        return n;
    }

    private ObjectNode result(CellEvent.Result res) {
        ObjectNode n = json.createObjectNode();
        n.put("type", "result");
        n.put("is_main_result", res.isMainResult());
        for (var e : res.data().entrySet()) {
            if (e.getKey().equals("type") || e.getKey().equals("is_main_result")) continue;
            n.set(e.getKey(), json.valueToTree(e.getValue()));
        }
        return n;
    }

    private ObjectNode error(String name, String value, String traceback) {
        ObjectNode n = json.createObjectNode();
        n.put("type", "error");
        n.put("name", name == null ? "" : name);
        n.put("value", value == null ? "" : value);
        n.put("traceback", traceback == null ? "" : traceback);
        return n;
    }

    /** The last two lines: the execution count, then the end with Stockade's extensions. */
    private List<ObjectNode> end(int executionCount, Outcome outcome, String reason, boolean stateLost,
            List<FileChange> files) {
        ObjectNode count = json.createObjectNode();
        count.put("type", "number_of_executions");
        count.put("execution_count", executionCount);
        ObjectNode end = json.createObjectNode();
        end.put("type", "end_of_execution");
        end.put("outcome", outcome.wireName());
        if (reason != null) end.put("reason", reason);
        end.put("state_lost", stateLost);
        ArrayNode f = end.putArray("files");
        for (var c : files) {
            ObjectNode o = f.addObject();
            o.put("name", c.name());
            o.put("path", c.path());
            o.put("size", c.size());
        }
        return List.of(count, end);
    }

    private void write(OutputStream out, ObjectNode line) throws IOException {
        write(out, List.of(line));
    }

    private void write(OutputStream out, List<ObjectNode> ls) throws IOException {
        for (ObjectNode line : ls) {
            out.write(lines.writeValueAsBytes(line));
            out.write('\n');
        }
        out.flush();
    }

    private static StockadeError methodNotAllowed(String method, String path) {
        return StockadeError.invalid(method + " is not allowed on " + path);
    }
}
