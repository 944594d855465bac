package dev.stockade.server.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.protocol.AgentEvent;
import dev.stockade.protocol.ExecRequest;
import dev.stockade.protocol.Outcome;
import dev.stockade.protocol.ProcessInfo;
import dev.stockade.runtime.Limits;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.session.CommandRun;
import dev.stockade.server.session.Sessions;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * envd's process.Process service over Connect+JSON: Start and Connect stream events; List,
 * SendInput, SendSignal, CloseStdin and Update are unary; StreamInput reads a stream of inputs. A
 * process started with {@code pty} runs on a terminal: its output is sent as {@code pty} data,
 * Update resizes it. The agent spawns and watches the processes and
 * {@link Sessions} applies the server's rules; this class translates requests into its calls and
 * events into Connect messages. Each call runs on its request's virtual thread.
 */
final class ProcessRpc {
    private static final int MAX_UNARY = 8 * 1024 * 1024;
    /** Messages in one StreamInput request (each bounded by {@link #MAX_UNARY}): a client stream ends. */
    static final int MAX_STREAM_MESSAGES = 100_000;
    private static final Duration DEFAULT_KEEPALIVE = Duration.ofSeconds(30);
    /**
     * How often an idle terminal stream writes a keepalive. A client that left is only noticed by a
     * write failing (the first write after it left still succeeds), so probing often lets the agent
     * keep the terminal's later output for the next client instead of writing it into the void.
     */
    private static final Duration TERMINAL_PROBE = Duration.ofMillis(250);

    private final Sessions sessions = new Sessions();

    boolean handle(Request r, EnvdContext ctx, String method) throws IOException {
        switch (method) {
            case "Start" -> start(r, ctx);
            case "Connect" -> connect(r, ctx);
            case "List" -> list(r, ctx);
            case "SendInput" -> sendInput(r, ctx);
            case "SendSignal" -> sendSignal(r, ctx);
            case "CloseStdin" -> closeStdin(r, ctx);
            case "Update" -> update(r, ctx);
            case "StreamInput" -> streamInput(r, ctx);
            default -> {
                return false;
            }
        }
        return true;
    }

    private static String tagOf(JsonNode req) {
        return req.hasNonNull("tag") ? "tag " + req.get("tag").asText() : null;
    }

    private void start(Request r, EnvdContext ctx) throws IOException {
        JsonNode req = ConnectFrames.readRequest(r.jsonBytes(MAX_UNARY), r.json);
        JsonNode p = req.path("process");
        if (!p.isObject()) throw StockadeError.invalid("process is required and must be an object");
        if (p.hasNonNull("cmd") && !p.get("cmd").isTextual()) throw StockadeError.invalid("process.cmd must be a string");
        String cmd = p.path("cmd").asText("");
        if (cmd.isEmpty()) throw StockadeError.invalid("process.cmd is required");
        if (p.hasNonNull("args") && !p.get("args").isArray()) throw StockadeError.invalid("process.args must be a list of strings");
        if (p.hasNonNull("cwd") && !p.get("cwd").isTextual()) throw StockadeError.invalid("process.cwd must be a string");
        List<String> argv = new ArrayList<>();
        argv.add(cmd);
        for (JsonNode a : p.path("args")) {
            if (!a.isTextual()) throw StockadeError.invalid("process.args must be strings");
            argv.add(a.asText());
        }
        r.audit(tagOf(req), "command " + Request.digest(String.join("\0", argv)));
        Map<String, String> env = new LinkedHashMap<>(ctx.sandbox().processEnv());
        env.putAll(BodyFields.stringMap(p, "envs"));
        String cwd = p.hasNonNull("cwd") && !p.get("cwd").asText().isEmpty() ? p.get("cwd").asText() : null;
        boolean stdin = req.path("stdin").asBoolean(false);
        String tag = req.hasNonNull("tag") ? req.get("tag").asText() : null;
        ExecRequest.TerminalSize terminal = req.hasNonNull("pty") ? terminalSize(req.get("pty")) : null;
        Limits limits = ctx.sandbox().limits();
        CommandDeadline deadline = commandTimeout(r, limits);
        long outputLimit = limits.outputMB() * 1024L * 1024L;
        ExecRequest exec = new ExecRequest(argv, env, cwd, ctx.user(), stdin, deadline.millis(), outputLimit, tag, terminal);
        stream(r, keepalive(r), deadline.clients(), () -> sessions.exec(ctx.sandbox(), exec));
    }

    private void connect(Request r, EnvdContext ctx) throws IOException {
        JsonNode req = ConnectFrames.readRequest(r.jsonBytes(MAX_UNARY), r.json);
        int pid = selectPid(ctx, req.path("process"));
        stream(r, keepalive(r), false, () -> sessions.attach(ctx.sandbox(), pid));
    }

    private interface Opener {
        CommandRun open();
    }

    /**
     * Streams a process's events as Connect envelopes. An error before the first event is sent
     * as an end-of-stream error (Connect streams always answer 200); a client that goes away only
     * detaches: the process keeps running. When {@code clientsDeadline} (the request's
     * Connect-Timeout-Ms, not the sandbox's limit) ended the command, the stream ends as envd's does:
     * with {@code deadline_exceeded} and no end event (the E2B SDKs' TimeoutError, which the Python
     * SDK's async client only learns from the server).
     */
    private void stream(Request r, Duration keepalive, boolean clientsDeadline, Opener opener) throws IOException {
        CommandRun run = null;
        StockadeError early = null;
        try {
            run = opener.open();
        } catch (StockadeError e) {
            early = e;
        }
        try (OutputStream out = ConnectFrames.begin(r)) {
            if (early != null) {
                ConnectFrames.end(out, r.json, early);
                return;
            }
            try (CommandRun s = run) {
                Duration idle = s.terminal() && keepalive.compareTo(TERMINAL_PROBE) > 0 ? TERMINAL_PROBE : keepalive;
                Event started = Event.of(r, "start");
                started.body().put("pid", s.pid());
                started.send(out, r);
                while (true) {
                    Optional<AgentEvent> ev;
                    try {
                        ev = s.next(idle);
                    } catch (StockadeError e) {
                        ConnectFrames.end(out, r.json, e);
                        return;
                    }
                    if (ev.isEmpty()) {
                        Event.of(r, "keepalive").send(out, r);
                        continue;
                    }
                    switch (ev.get()) {
                        case AgentEvent.Started st -> { /* already announced */ }
                        case AgentEvent.Stdout o -> {
                            Event d = Event.of(r, "data");
                            d.body().put("stdout", Base64.getEncoder().encodeToString(o.data()));
                            d.send(out, r);
                        }
                        case AgentEvent.Stderr o -> {
                            Event d = Event.of(r, "data");
                            d.body().put("stderr", Base64.getEncoder().encodeToString(o.data()));
                            d.send(out, r);
                        }
                        case AgentEvent.Ended end when clientsDeadline && end.outcome() == Outcome.TIMEOUT -> {
                            ConnectFrames.end(out, r.json, new StockadeError(StockadeError.Code.TIMEOUT,
                                    "the command was killed at the request's deadline: " + end.reason()));
                            return;
                        }
                        case AgentEvent.Terminal o -> {
                            Event d = Event.of(r, "data");
                            d.body().put("pty", Base64.getEncoder().encodeToString(o.data()));
                            d.send(out, r);
                        }
                        case AgentEvent.Ended end -> {
                            Event e = Event.of(r, "end");
                            boolean exited = end.signal() == null;
                            // envd reports -1 for a process ended by a signal (Go's exit status).
                            e.body().put("exitCode", exited ? end.exitCode() : -1);
                            e.body().put("exited", exited);
                            String status = exited ? "exit status " + end.exitCode() : "signal: " + goSignalText(end.signal());
                            e.body().put("status", status);
                            // envd's `error` (the SDK's CommandExitError message): Go's status text for a
                            // non-zero exit; Stockade's reason when a limit or a signal ended the command.
                            if (end.outcome() != Outcome.EXITED) {
                                e.body().put("error", end.reason());
                            } else if (end.exitCode() != 0) {
                                e.body().put("error", status);
                            }
                            e.body().put("outcome", end.outcome().wireName());
                            e.body().put("reason", end.reason());
                            e.send(out, r);
                            ConnectFrames.end(out, r.json, null);
                            return;
                        }
                    }
                }
            }
        }
    }

    /** Go's text for a signal in an exit status ("signal: killed"), as envd reports it. */
    static String goSignalText(String signal) {
        if (signal == null) return "unknown signal";
        return switch (signal) {
            case "SIGKILL" -> "killed";
            case "SIGTERM" -> "terminated";
            case "SIGINT" -> "interrupt";
            case "SIGHUP" -> "hangup";
            case "SIGQUIT" -> "quit";
            case "SIGABRT" -> "aborted";
            case "SIGSEGV" -> "segmentation fault";
            case "SIGBUS" -> "bus error";
            case "SIGFPE" -> "floating point exception";
            case "SIGILL" -> "illegal instruction";
            case "SIGPIPE" -> "broken pipe";
            case "SIGALRM" -> "alarm clock";
            case "SIGUSR1" -> "user defined signal 1";
            case "SIGUSR2" -> "user defined signal 2";
            case "SIGXCPU" -> "CPU time limit exceeded";
            case "SIGXFSZ" -> "file size limit exceeded";
            default -> signal;
        };
    }

    /** One {"event": {kind: body}} message of a process stream. */
    private record Event(ObjectNode root, ObjectNode body) {
        static Event of(Request r, String kind) {
            ObjectNode root = r.json.createObjectNode();
            return new Event(root, root.putObject("event").putObject(kind));
        }

        void send(OutputStream out, Request r) throws IOException {
            ConnectFrames.message(out, r.json, root);
        }
    }

    private void list(Request r, EnvdContext ctx) throws IOException {
        r.jsonBody(MAX_UNARY);
        ObjectNode out = r.json.createObjectNode();
        ArrayNode procs = out.putArray("processes");
        for (ProcessInfo p : sessions.processes(ctx.sandbox())) {
            ObjectNode n = procs.addObject();
            ObjectNode config = n.putObject("config");
            config.put("cmd", p.argv().isEmpty() ? "" : p.argv().getFirst());
            ArrayNode args = config.putArray("args");
            p.argv().stream().skip(1).forEach(args::add);
            ObjectNode envs = config.putObject("envs");
            p.env().forEach(envs::put);
            if (p.cwd() != null) config.put("cwd", p.cwd());
            n.put("pid", p.pid());
            if (p.tag() != null) n.put("tag", p.tag());
        }
        r.sendJson(200, out);
    }

    private void sendInput(Request r, EnvdContext ctx) throws IOException {
        JsonNode req = r.jsonBody(MAX_UNARY);
        int pid = selectPid(ctx, req.path("process"));
        sessions.sendInput(ctx.sandbox(), pid, inputBytes(req.path("input")));
        r.sendJson(200, r.json.createObjectNode());
    }

    /** A ProcessInput: {"stdin": b64} or {"pty": b64}; a terminal's process takes either. */
    private static byte[] inputBytes(JsonNode input) {
        String b64 = input.hasNonNull("stdin") ? input.get("stdin").asText() : input.path("pty").asText(null);
        if (b64 == null) throw StockadeError.invalid("input.stdin or input.pty is required");
        try {
            return Base64.getDecoder().decode(b64);
        } catch (IllegalArgumentException e) {
            throw StockadeError.invalid("input is not valid base64");
        }
    }

    /**
     * StreamInput, a client stream: a start message naming the process, then data messages whose
     * bytes are written in order (keepalives are skipped); answered once the client ends its stream,
     * or at the first failure, which ends the call (each message bounded like a unary request).
     */
    private void streamInput(Request r, EnvdContext ctx) throws IOException {
        r.requireJsonContentType();
        StockadeError failure = null;
        try (InputStream in = r.requestBody()) {
            Integer pid = null;
            JsonNode msg;
            int messages = 0;
            while ((msg = ConnectFrames.readMessage(in, r.json, MAX_UNARY)) != null) {
                if (++messages > MAX_STREAM_MESSAGES) {
                    throw new StockadeError(StockadeError.Code.PAYLOAD_TOO_LARGE, "a StreamInput carries at most "
                            + MAX_STREAM_MESSAGES + " messages: open another stream");
                }
                if (msg.has("start")) {
                    if (pid != null) throw StockadeError.invalid("a StreamInput has one start message");
                    pid = selectPid(ctx, msg.get("start").path("process"));
                } else if (msg.has("data")) {
                    if (pid == null) throw StockadeError.invalid("a StreamInput must begin with a start message");
                    sessions.sendInput(ctx.sandbox(), pid, inputBytes(msg.get("data").path("input")));
                } else if (!msg.has("keepalive")) {
                    throw StockadeError.invalid("a StreamInput message is start, data or keepalive");
                }
            }
            if (pid == null) throw StockadeError.invalid("a StreamInput must begin with a start message");
        } catch (StockadeError e) {
            failure = e;
        }
        try (OutputStream out = ConnectFrames.begin(r)) {
            if (failure == null) ConnectFrames.message(out, r.json, r.json.createObjectNode());
            ConnectFrames.end(out, r.json, failure);
        }
    }

    private void sendSignal(Request r, EnvdContext ctx) throws IOException {
        JsonNode req = r.jsonBody(MAX_UNARY);
        int pid = selectPid(ctx, req.path("process"));
        String sig = req.path("signal").asText("");
        String name = switch (sig) {
            case "SIGNAL_SIGKILL", "9" -> "SIGKILL";
            case "SIGNAL_SIGTERM", "15" -> "SIGTERM";
            default -> throw StockadeError.invalid("signal must be SIGNAL_SIGKILL or SIGNAL_SIGTERM, got '" + sig + "'");
        };
        sessions.signal(ctx.sandbox(), pid, name);
        r.sendJson(200, r.json.createObjectNode());
    }

    /** Update: the terminal's new size; without {@code pty} there is nothing to change (as envd). */
    private void update(Request r, EnvdContext ctx) throws IOException {
        JsonNode req = r.jsonBody(MAX_UNARY);
        int pid = selectPid(ctx, req.path("process"));
        if (req.hasNonNull("pty")) {
            sessions.resize(ctx.sandbox(), pid, terminalSize(req.get("pty")));
        }
        r.sendJson(200, r.json.createObjectNode());
    }

    /** A PTY message: {"size": {"cols": C, "rows": R}}, each 1..9999. */
    private static ExecRequest.TerminalSize terminalSize(JsonNode pty) {
        JsonNode size = pty.path("size");
        if (!pty.isObject() || !size.isObject()) throw StockadeError.invalid("pty must be {\"size\": {\"cols\": C, \"rows\": R}}");
        int cols = cells(size, "cols");
        int rows = cells(size, "rows");
        return new ExecRequest.TerminalSize(cols, rows);
    }

    private static int cells(JsonNode size, String name) {
        JsonNode n = size.get(name);
        if (n == null || !n.isIntegralNumber() || !n.canConvertToInt() || n.intValue() < 1
                || n.intValue() > ExecRequest.TerminalSize.MAX) {
            throw StockadeError.invalid("pty.size." + name + " must be a whole number from 1 to " + ExecRequest.TerminalSize.MAX);
        }
        return n.intValue();
    }

    private void closeStdin(Request r, EnvdContext ctx) throws IOException {
        JsonNode req = r.jsonBody(MAX_UNARY);
        int pid = selectPid(ctx, req.path("process"));
        sessions.closeStdin(ctx.sandbox(), pid);
        r.sendJson(200, r.json.createObjectNode());
    }

    /** A ProcessSelector: {"pid": N} or {"tag": "..."}. */
    private int selectPid(EnvdContext ctx, JsonNode sel) {
        if (sel.hasNonNull("pid")) {
            JsonNode pid = sel.get("pid");
            int v;
            if (pid.isIntegralNumber() && pid.canConvertToInt()) {
                v = pid.intValue();
            } else if (pid.isTextual()) {
                try {
                    v = Integer.parseInt(pid.asText());
                } catch (NumberFormatException e) {
                    throw StockadeError.invalid("process.pid must be a whole number");
                }
            } else {
                throw StockadeError.invalid("process.pid must be a whole number");
            }
            if (v <= 0) throw StockadeError.invalid("process.pid must be positive");
            return v;
        }
        if (sel.hasNonNull("tag")) {
            return sessions.pidOfTag(ctx.sandbox(), sel.get("tag").asText());
        }
        throw StockadeError.invalid("process must give a pid or a tag");
    }

    /** A command's lifetime, and whether it is the client's (Connect-Timeout-Ms) rather than the sandbox's limit. */
    record CommandDeadline(long millis, boolean clients) {}

    /**
     * A command lives until Connect-Timeout-Ms (the E2B SDKs' timeoutMs: its lifetime, enforced
     * here on the server's clock, not by the client going away), and never longer than the
     * sandbox's commandTimeoutSeconds limit.
     */
    static CommandDeadline commandTimeout(Request r, Limits limits) {
        long max = limits.commandTimeoutSeconds() * 1000L;
        String h = r.header("Connect-Timeout-Ms");
        if (h == null || h.isBlank()) return new CommandDeadline(max, false);
        try {
            long ms = Long.parseLong(h.trim());
            if (ms <= 0 || ms >= max) return new CommandDeadline(max, false);
            return new CommandDeadline(ms, true);
        } catch (NumberFormatException e) {
            throw StockadeError.invalid("Connect-Timeout-Ms must be a whole number of milliseconds");
        }
    }

    /** Keepalive-Ping-Interval (seconds, 1..120; 30 when absent): idle time between keepalive messages of a stream. */
    static Duration keepalive(Request r) {
        String h = r.header("Keepalive-Ping-Interval");
        if (h == null) return DEFAULT_KEEPALIVE;
        try {
            long s = Long.parseLong(h.trim());
            return Duration.ofSeconds(Math.clamp(s, 1, 120));
        } catch (NumberFormatException e) {
            return DEFAULT_KEEPALIVE;
        }
    }

}
