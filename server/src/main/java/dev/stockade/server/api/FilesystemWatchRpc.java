package dev.stockade.server.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.protocol.WatchEvent;
import dev.stockade.protocol.WatchRequest;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.session.DirWatch;
import dev.stockade.server.session.Sessions;
import java.io.IOException;
import java.io.OutputStream;
import java.time.Duration;
import java.util.Optional;

/**
 * envd's filesystem WatchDir (a Connect server stream, JSON codec): the agent watches the directory
 * with inotify (as the user, {@link Sessions#watchDir}); this class writes {@code {"start": {}}}
 * once the watch is set up, then one {@code {"filesystem": {name, type, entry?}}} per change and
 * {@code {"keepalive": {}}} while idle, until the client goes away, Connect-Timeout-Ms passes, or
 * the watched directory is gone; and its polled form (CreateWatcher, GetWatcherEvents,
 * RemoveWatcher: unary calls on a watch the agent keeps). Called by {@link FilesystemRpc} on the request's virtual thread,
 * which it holds for the watch's life.
 */
final class FilesystemWatchRpc {
    private static final int MAX_BODY = 1024 * 1024;
    /**
     * While idle, a keepalive at least this often, whatever Keepalive-Ping-Interval asks: a client
     * that went away is only noticed when a write to it fails, and its watch holds one of the
     * sandbox's watchers until then.
     */
    private static final Duration PROBE = Duration.ofSeconds(2);

    private final Sessions sessions = new Sessions();

    void watchDir(Request r, EnvdContext ctx) throws IOException {
        JsonNode req = ConnectFrames.readRequest(r.jsonBytes(MAX_BODY), r.json);
        WatchRequest watch = watchRequest(req, ctx);
        String path = watch.path();
        long deadline = lifetimeNanos(r);
        Duration keepalive = ProcessRpc.keepalive(r).compareTo(PROBE) < 0 ? ProcessRpc.keepalive(r) : PROBE;
        DirWatch opened;
        try {
            opened = sessions.watchDir(ctx.sandbox(), watch);
        } catch (StockadeError e) {
            ConnectFrames.refuse(r, e);
            return;
        }
        try (DirWatch w = opened; OutputStream out = ConnectFrames.begin(r)) {
            ObjectNode start = r.json.createObjectNode();
            start.putObject("start");
            ConnectFrames.message(out, r.json, start);
            while (true) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    ConnectFrames.end(out, r.json, new StockadeError(StockadeError.Code.TIMEOUT,
                            "the watch of " + path + " reached its Connect-Timeout-Ms"));
                    return;
                }
                Optional<WatchEvent> ev;
                try {
                    ev = w.next(Duration.ofNanos(Math.min(left, keepalive.toNanos())));
                } catch (StockadeError e) {
                    ConnectFrames.end(out, r.json, e);
                    return;
                }
                if (ev.isEmpty()) {
                    ObjectNode k = r.json.createObjectNode();
                    k.putObject("keepalive");
                    ConnectFrames.message(out, r.json, k);
                    continue;
                }
                switch (ev.get()) {
                    case WatchEvent.Changed c -> ConnectFrames.message(out, r.json, filesystemEvent(r, c));
                    case WatchEvent.Ended end -> {
                        ConnectFrames.end(out, r.json, null);
                        return;
                    }
                }
            }
        }
    }

    /** CreateWatcher (unary): {"watcherId"} of a watch that waits for GetWatcherEvents. */
    void createWatcher(Request r, EnvdContext ctx) throws IOException {
        WatchRequest watch = watchRequest(r.jsonBody(MAX_BODY), ctx);
        ObjectNode out = r.json.createObjectNode();
        out.put("watcherId", sessions.createWatcher(ctx.sandbox(), watch));
        r.sendJson(200, out);
    }

    /** GetWatcherEvents (unary): {"events": [FilesystemEvent...]} since the last call. */
    void watcherEvents(Request r, EnvdContext ctx) throws IOException {
        String id = watcherId(r.jsonBody(MAX_BODY));
        ObjectNode out = r.json.createObjectNode();
        var events = out.putArray("events");
        for (WatchEvent.Changed c : sessions.watcherEvents(ctx.sandbox(), id)) events.add(fsEvent(r, c));
        r.sendJson(200, out);
    }

    /** RemoveWatcher (unary): {}. */
    void removeWatcher(Request r, EnvdContext ctx) throws IOException {
        sessions.removeWatcher(ctx.sandbox(), watcherId(r.jsonBody(MAX_BODY)));
        r.sendJson(200, r.json.createObjectNode());
    }

    private static WatchRequest watchRequest(JsonNode req, EnvdContext ctx) {
        String path = FilesystemRpc.path(req, "path");
        // allowNetworkMounts is accepted and has nothing to allow: a sandbox has no network mounts.
        flag(req, "allowNetworkMounts", "allow_network_mounts");
        return new WatchRequest(path, flag(req, "recursive", "recursive"), flag(req, "includeEntry", "include_entry"), ctx.user());
    }

    private static String watcherId(JsonNode req) {
        JsonNode v = req.has("watcherId") ? req.get("watcherId") : req.get("watcher_id");
        if (v == null || !v.isTextual() || v.asText().isEmpty() || v.asText().length() > 64) {
            throw StockadeError.invalid("watcherId is required: the id CreateWatcher answered");
        }
        return v.asText();
    }

    /** {"filesystem": {FilesystemEvent}}: one message of the stream. */
    static ObjectNode filesystemEvent(Request r, WatchEvent.Changed c) {
        ObjectNode root = r.json.createObjectNode();
        root.set("filesystem", fsEvent(r, c));
        return root;
    }

    /** envd's FilesystemEvent: {name, type: EVENT_TYPE_*, entry?}. */
    private static ObjectNode fsEvent(Request r, WatchEvent.Changed c) {
        ObjectNode fs = r.json.createObjectNode();
        fs.put("name", c.name());
        fs.put("type", "EVENT_TYPE_" + c.kind().name());
        if (c.entry() != null) fs.set("entry", FilesystemRpc.entry(r.json, c.entry()));
        return fs;
    }

    /** A proto3 bool under its JSON name or its proto name; absent is false. */
    private static boolean flag(JsonNode req, String jsonName, String protoName) {
        JsonNode v = req.has(jsonName) ? req.get(jsonName) : req.get(protoName);
        if (v == null || v.isNull()) return false;
        if (!v.isBoolean()) throw StockadeError.invalid(jsonName + " must be true or false");
        return v.booleanValue();
    }

    /**
     * When the watch ends on the server's clock: Connect-Timeout-Ms (the SDKs send their
     * {@code timeoutMs}, 60 s by default) from now; without it, never (the client's leaving ends it).
     */
    private static long lifetimeNanos(Request r) {
        String h = r.header("Connect-Timeout-Ms");
        long far = System.nanoTime() + Duration.ofDays(3650).toNanos();
        if (h == null || h.isBlank()) return far;
        try {
            long ms = Long.parseLong(h.trim());
            return ms <= 0 ? far : System.nanoTime() + Duration.ofMillis(ms).toNanos();
        } catch (NumberFormatException e) {
            throw StockadeError.invalid("Connect-Timeout-Ms must be a whole number of milliseconds");
        }
    }
}
