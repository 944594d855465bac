package dev.stockade.protocol.link;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.protocol.AgentEvent;
import dev.stockade.protocol.AgentException;
import dev.stockade.protocol.AgentInfo;
import dev.stockade.protocol.CellEvent;
import dev.stockade.protocol.ContextInfo;
import dev.stockade.protocol.CreateContext;
import dev.stockade.protocol.EntryInfo;
import dev.stockade.protocol.ExecRequest;
import dev.stockade.protocol.ExecuteCell;
import dev.stockade.protocol.ProcessInfo;
import dev.stockade.protocol.WatchEvent;
import dev.stockade.protocol.WatchRequest;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Function;

/**
 * {@link AgentClient} over any {@link Transport}: one connection per call, blocking I/O, meant
 * for virtual threads. Unary calls run under one deadline ({@code callTimeout}, 30 s by default);
 * process streams and file reads under a per-frame deadline once a frame has begun.
 */
final class FramedAgentClient implements AgentClient {
    /** Most entries one listing may return; the agent refuses deeper listings with INVALID_ARGUMENT. */
    static final int LIST_LIMIT = 100_000;
    /** Most processes a process list may hold before the answer is treated as hostile. */
    static final int PROCESS_LIST_LIMIT = 100_000;
    /** Most contexts a listing may hold (the agent allows 64). */
    static final int CONTEXT_LIST_LIMIT = 1_000;
    /** Most changes one watcher_events answer may hold (the agent keeps 4096 raw events, each at most 2 changes). */
    static final int WATCHER_EVENTS_LIMIT = 10_000;

    private final Transport transport;
    private final Duration callTimeout;

    FramedAgentClient(Transport transport, Duration callTimeout) {
        this.transport = Objects.requireNonNull(transport, "transport");
        this.callTimeout = Objects.requireNonNull(callTimeout, "callTimeout");
        if (callTimeout.isNegative() || callTimeout.isZero()) {
            throw new IllegalArgumentException("callTimeout must be positive");
        }
    }

    @Override
    public AgentInfo hello(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        long pauseMillis = 1;
        while (true) {
            long left = deadline - System.nanoTime();
            try {
                Duration attempt = Duration.ofNanos(Math.max(1_000_000, Math.min(left, callTimeout.toNanos())));
                return AgentJson.agentInfo(unary(AgentJson.request("hello"), attempt));
            } catch (AgentException e) {
                // Not listening yet (the socket is missing or refuses): the agent is still starting.
                left = deadline - System.nanoTime();
                if (e.code() != AgentException.Code.UNAVAILABLE || left <= 0) {
                    if (e.code() == AgentException.Code.UNAVAILABLE) {
                        throw new AgentException(AgentException.Code.TIMEOUT, "the agent at " + transport.address()
                                + " did not start listening within " + AgentConnection.describe(timeout)
                                + ": " + e.getMessage(), e);
                    }
                    throw e;
                }
            }
            sleep(Math.min(pauseMillis, Math.max(1, (deadline - System.nanoTime()) / 1_000_000)));
            pauseMillis = Math.min(pauseMillis * 2, 4); // start-up takes ~25 ms: poll finely
        }
    }

    @Override
    public EventStream<AgentEvent> exec(ExecRequest request) {
        ObjectNode req = AgentJson.request("exec");
        ArrayNode argv = req.putArray("argv");
        request.argv().forEach(argv::add);
        ObjectNode env = req.putObject("env");
        request.env().forEach(env::put);
        if (request.cwd() != null) {
            req.put("cwd", request.cwd());
        }
        req.put("user", request.user());
        req.put("stdin", request.stdin());
        req.put("timeoutMillis", request.timeoutMillis());
        req.put("outputLimitBytes", request.outputLimitBytes());
        if (request.tag() != null) {
            req.put("tag", request.tag());
        }
        if (request.terminal() != null) {
            req.set("pty", terminalSize(request.terminal()));
        }
        return openStream(req);
    }

    @Override
    public EventStream<AgentEvent> attach(int pid) {
        return openStream(AgentJson.request("attach").put("pid", pid));
    }

    private EventStream<AgentEvent> openStream(ObjectNode request) {
        AgentConnection connection = AgentConnection.open(transport, callTimeout);
        try {
            connection.sendJson(request);
            ObjectNode first = connection.readAnswer();
            if (!"start".equals(AgentJson.string(first, "ev", 16, false))) {
                throw AgentJson.protocol("a process stream must begin with a start event");
            }
            int pid = AgentJson.positiveInt(first, "pid");
            connection.disarm();
            boolean terminal = first.path("pty").asBoolean(false);
            return new FrameEventStream<>(connection, callTimeout, new ProcessDecoder(pid), new AgentEvent.Started(pid, terminal));
        } catch (RuntimeException e) {
            connection.close();
            throw e;
        }
    }

    @Override
    public List<ProcessInfo> listProcesses() {
        return items(AgentJson.request("ps"), PROCESS_LIST_LIMIT, AgentJson::processInfo);
    }

    @Override
    public void sendInput(int pid, byte[] data) {
        try (AgentConnection connection = AgentConnection.open(transport, callTimeout)) {
            connection.sendJson(AgentJson.request("input").put("pid", pid));
            int offset = 0;
            boolean sent = true;
            try {
                while (offset < data.length) {
                    int n = Math.min(Frame.MAX_PAYLOAD, data.length - offset);
                    connection.arm(callTimeout);
                    connection.send(Frame.DATA, data, offset, n);
                    offset += n;
                }
                connection.send(Frame.DATA, data, 0, 0);
            } catch (AgentException e) {
                if (e.code() != AgentException.Code.UNAVAILABLE) {
                    throw e;
                }
                sent = false; // the agent refused early and closed; its answer says why
            }
            connection.arm(callTimeout);
            ObjectNode answer = readAnswerAfterUpload(connection, sent);
            AgentJson.throwIfError(answer);
        }
    }

    @Override
    public void resize(int pid, ExecRequest.TerminalSize size) {
        Objects.requireNonNull(size, "size");
        ObjectNode req = AgentJson.request("resize").put("pid", pid);
        req.set("pty", terminalSize(size));
        unary(req, callTimeout);
    }

    private static ObjectNode terminalSize(ExecRequest.TerminalSize size) {
        return AgentJson.MAPPER.createObjectNode().put("cols", size.cols()).put("rows", size.rows());
    }

    @Override
    public void closeStdin(int pid) {
        unary(AgentJson.request("close_stdin").put("pid", pid), callTimeout);
    }

    @Override
    public void signal(int pid, String signal) {
        Objects.requireNonNull(signal, "signal");
        unary(AgentJson.request("signal").put("pid", pid).put("signal", signal), callTimeout);
    }

    @Override
    public EntryInfo stat(String path, String user) {
        return AgentJson.entry(unary(pathRequest("stat", path, user), callTimeout).get("entry"));
    }

    @Override
    public List<EntryInfo> listDir(String path, int depth, String user) {
        if (depth < 1) {
            throw new AgentException(AgentException.Code.INVALID_ARGUMENT, "depth must be at least 1, not " + depth);
        }
        ObjectNode request = pathRequest("list", path, user).put("depth", depth).put("limit", LIST_LIMIT);
        return items(request, LIST_LIMIT, AgentJson::entry);
    }

    @Override
    public boolean makeDir(String path, String user) {
        ObjectNode answer = unary(pathRequest("mkdir", path, user), callTimeout);
        AgentJson.entry(answer.get("entry"));
        return AgentJson.bool(answer, "created");
    }

    @Override
    public EntryInfo move(String source, String destination, String user) {
        ObjectNode request = AgentJson.request("move")
                .put("source", checkPath(source, "source"))
                .put("destination", checkPath(destination, "destination"))
                .put("user", user);
        return AgentJson.entry(unary(request, callTimeout).get("entry"));
    }

    @Override
    public void remove(String path, String user) {
        unary(pathRequest("remove", path, user), callTimeout);
    }

    @Override
    public FileRead readFile(String path, String user) {
        AgentConnection connection = AgentConnection.open(transport, callTimeout);
        try {
            connection.sendJson(pathRequest("read", path, user));
            long size = AgentJson.longValue(connection.readAnswer(), "size");
            if (size < 0) {
                throw AgentJson.protocol("file size is negative");
            }
            connection.disarm();
            return new FramedFileRead(connection, size, callTimeout);
        } catch (RuntimeException e) {
            connection.close();
            throw e;
        }
    }

    @Override
    public EntryInfo writeFile(String path, InputStream content, String user, Map<String, String> metadata) {
        Objects.requireNonNull(content, "content");
        ObjectNode request = pathRequest("write", path, user);
        if (!metadata.isEmpty()) {
            ObjectNode pairs = request.putObject("metadata");
            metadata.forEach(pairs::put);
        }
        try (AgentConnection connection = AgentConnection.open(transport, callTimeout)) {
            connection.sendJson(request);
            connection.disarm();
            byte[] buffer = new byte[Frame.MAX_PAYLOAD];
            boolean sent = true;
            try {
                while (true) {
                    int n;
                    try {
                        n = content.readNBytes(buffer, 0, buffer.length); // not under the deadline
                    } catch (IOException e) {
                        throw new UncheckedIOException("reading the content to write to " + path + " failed", e);
                    }
                    connection.arm(callTimeout);
                    connection.send(Frame.DATA, buffer, 0, n);
                    connection.disarm();
                    if (n == 0) {
                        break;
                    }
                    if (n < buffer.length) {
                        connection.arm(callTimeout);
                        connection.send(Frame.DATA, buffer, 0, 0);
                        break;
                    }
                }
            } catch (AgentException e) {
                if (e.code() != AgentException.Code.UNAVAILABLE) {
                    throw e;
                }
                sent = false;
            }
            connection.arm(callTimeout);
            ObjectNode answer = readAnswerAfterUpload(connection, sent);
            AgentJson.throwIfError(answer);
            return AgentJson.entry(answer.get("entry"));
        }
    }

    @Override
    public EventStream<WatchEvent> watchDir(WatchRequest request) {
        ObjectNode req = pathRequest("watch", request.path(), request.user())
                .put("recursive", request.recursive())
                .put("includeEntry", request.includeEntry());
        AgentConnection connection = AgentConnection.open(transport, callTimeout);
        try {
            connection.sendJson(req);
            ObjectNode first = connection.readAnswer();
            if (!"start".equals(AgentJson.string(first, "ev", 16, false))) {
                throw AgentJson.protocol("a directory watch must begin with a start event");
            }
            connection.disarm();
            return new FrameEventStream<>(connection, callTimeout, new WatchDecoder(request.path()), null);
        } catch (RuntimeException e) {
            connection.close();
            throw e;
        }
    }

    @Override
    public String createWatcher(WatchRequest request) {
        ObjectNode req = pathRequest("watcher_create", request.path(), request.user())
                .put("recursive", request.recursive())
                .put("includeEntry", request.includeEntry());
        return AgentJson.string(unary(req, callTimeout), "watcherId", 64, false);
    }

    @Override
    public List<WatchEvent.Changed> watcherEvents(String id) {
        JsonNode events = unary(AgentJson.request("watcher_events").put("watcherId", watcherId(id)), callTimeout).get("events");
        if (events == null || !events.isArray()) throw AgentJson.protocol("watcher_events must answer {\"events\": [...]}");
        if (events.size() > WATCHER_EVENTS_LIMIT) throw AgentJson.protocol("more than " + WATCHER_EVENTS_LIMIT + " watcher events");
        List<WatchEvent.Changed> changes = new ArrayList<>();
        for (JsonNode e : events) {
            if (!(e instanceof ObjectNode event)) throw AgentJson.protocol("a watcher event is not an object");
            changes.add(WatchDecoder.changed(event, "watcher " + id));
        }
        return changes;
    }

    @Override
    public void removeWatcher(String id) {
        unary(AgentJson.request("watcher_remove").put("watcherId", watcherId(id)), callTimeout);
    }

    private static String watcherId(String id) {
        if (id == null || id.isEmpty() || id.length() > 64 || id.indexOf('\0') >= 0) {
            throw new AgentException(AgentException.Code.INVALID_ARGUMENT, "a watcher id must be 1..64 characters");
        }
        return id;
    }

    /**
     * The agent answers an upload it refuses at once, then drains what follows; if it closed
     * anyway and our writes failed, its answer may still be waiting to be read.
     */
    private ObjectNode readAnswerAfterUpload(AgentConnection connection, boolean sent) {
        try {
            return connection.readAnswer();
        } catch (AgentException e) {
            if (!sent && e.code() == AgentException.Code.UNAVAILABLE) {
                throw new AgentException(AgentException.Code.UNAVAILABLE, "the agent at " + transport.address()
                        + " closed the connection during an upload without saying why: it may have crashed", e);
            }
            throw e;
        }
    }

    private ObjectNode unary(ObjectNode request, Duration timeout) {
        try (AgentConnection connection = AgentConnection.open(transport, timeout)) {
            connection.sendJson(request);
            return connection.readAnswer();
        }
    }

    /** Answers of list and ps: {"items": [...]} frames, then {"done": true}. */
    private <T> List<T> items(ObjectNode request, int limit, Function<JsonNode, T> parse) {
        try (AgentConnection connection = AgentConnection.open(transport, callTimeout)) {
            connection.sendJson(request);
            List<T> result = new ArrayList<>();
            while (true) {
                ObjectNode answer = connection.readAnswer();
                if (answer.has("done")) {
                    return result;
                }
                JsonNode items = answer.get("items");
                if (items == null || !items.isArray()) {
                    throw AgentJson.protocol("expected {\"items\": [...]} or {\"done\": true}");
                }
                if (result.size() + items.size() > limit) {
                    throw AgentJson.protocol("more than " + limit + " items in one answer");
                }
                for (JsonNode item : items) {
                    result.add(parse.apply(item));
                }
                connection.arm(callTimeout); // the deadline applies per frame of a long answer
            }
        }
    }

    private static ObjectNode pathRequest(String op, String path, String user) {
        return AgentJson.request(op).put("path", checkPath(path, "path")).put("user", user);
    }

    private static String checkPath(String path, String name) {
        if (path == null || path.isEmpty() || path.indexOf('\0') >= 0) {
            throw new AgentException(AgentException.Code.INVALID_ARGUMENT,
                    name + " must be a non-empty path without NUL characters");
        }
        return path;
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AgentException(AgentException.Code.UNAVAILABLE, "interrupted while waiting for the agent", e);
        }
    }

    @Override
    public ContextInfo createContext(CreateContext req) {
        Objects.requireNonNull(req, "req");
        ObjectNode request = AgentJson.request("context_create");
        if (req.language() != null) {
            request.put("language", req.language());
        }
        if (req.cwd() != null) {
            request.put("cwd", req.cwd());
        }
        if (req.user() != null) {
            request.put("user", req.user());
        }
        ObjectNode envs = request.putObject("envs");
        req.envs().forEach(envs::put);
        return AgentJson.contextInfo(unary(request, contextTimeout()).get("context"));
    }

    @Override
    public List<ContextInfo> listContexts() {
        return items(AgentJson.request("context_list"), CONTEXT_LIST_LIMIT, AgentJson::contextInfo);
    }

    @Override
    public void deleteContext(String id) {
        unary(AgentJson.request("context_delete").put("id", checkId(id)), callTimeout);
    }

    @Override
    public ContextInfo restartContext(String id) {
        ObjectNode request = AgentJson.request("context_restart").put("id", checkId(id));
        return AgentJson.contextInfo(unary(request, contextTimeout()).get("context"));
    }

    @Override
    public EventStream<CellEvent> execute(ExecuteCell req) {
        Objects.requireNonNull(req, "req");
        ObjectNode request = AgentJson.request("execute");
        if (req.contextId() != null) {
            request.put("contextId", checkId(req.contextId()));
        }
        if (req.language() != null) request.put("language", req.language());
        request.put("code", req.code());
        ObjectNode envs = request.putObject("envs");
        req.envs().forEach(envs::put);
        request.put("timeoutMillis", req.timeoutMillis());
        request.put("outputLimitBytes", req.outputLimitBytes());
        AgentConnection connection = AgentConnection.open(transport, callTimeout);
        try {
            connection.sendJson(request);
            ObjectNode first = connection.readAnswer();
            if (!"accepted".equals(AgentJson.string(first, "ev", 16, false))) {
                throw AgentJson.protocol("a cell stream must begin with an accepted event");
            }
            String contextId = AgentJson.string(first, "contextId", 64, false);
            connection.disarm();
            return new FrameEventStream<>(connection, callTimeout, new CellDecoder(contextId, callTimeout), null);
        } catch (RuntimeException e) {
            connection.close();
            throw e;
        }
    }

    @Override
    public ContextInfo warmDefaultContext(String preloadCode) {
        ObjectNode request = AgentJson.request("context_warm");
        if (preloadCode != null && !preloadCode.isEmpty()) {
            request.put("preload", preloadCode);
        }
        // The agent gives a preload 120 s, and a busy default context 60 s more.
        Duration timeout = Duration.ofSeconds(200).compareTo(callTimeout) > 0 ? Duration.ofSeconds(200) : callTimeout;
        return AgentJson.contextInfo(unary(request, timeout).get("context"));
    }

    /** Starting an interpreter (IPython's imports; slower under gVisor): the agent allows it 60 s. */
    private Duration contextTimeout() {
        Duration min = Duration.ofSeconds(75);
        return callTimeout.compareTo(min) > 0 ? callTimeout : min;
    }

    private static String checkId(String id) {
        if (id == null || id.isEmpty() || id.length() > 64 || id.indexOf('\0') >= 0) {
            throw new AgentException(AgentException.Code.INVALID_ARGUMENT, "a context id must be 1..64 characters");
        }
        return id;
    }

    @Override
    public String toString() {
        return "FramedAgentClient[" + transport.address() + "]";
    }
}
