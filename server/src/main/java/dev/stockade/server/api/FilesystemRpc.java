package dev.stockade.server.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.protocol.EntryInfo;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.session.Sessions;
import java.io.IOException;
import java.time.Instant;
import java.time.format.DateTimeFormatter;

/**
 * envd's filesystem.Filesystem service (unary Connect+JSON calls; directory watching,
 * WatchDir and its polled form, in {@link FilesystemWatchRpc}), translated into {@link Sessions}
 * calls. Paths are resolved by the agent inside the sandbox, never on the host: a symlink planted in the sandbox leads only to the
 * sandbox's own files. Runs on request virtual threads.
 */
final class FilesystemRpc {
    private static final int MAX_BODY = 1024 * 1024;
    private static final int MAX_DEPTH = 32;

    private final Sessions sessions = new Sessions();
    private final FilesystemWatchRpc watch = new FilesystemWatchRpc();

    boolean handle(Request r, EnvdContext ctx, String method) throws IOException {
        switch (method) {
            case "Stat" -> {
                String path = path(r.jsonBody(MAX_BODY), "path");
                ObjectNode out = r.json.createObjectNode();
                out.set("entry", entry(r.json, sessions.stat(ctx.sandbox(), path, ctx.user())));
                r.sendJson(200, out);
            }
            case "ListDir" -> {
                JsonNode b = r.jsonBody(MAX_BODY);
                String path = path(b, "path");
                int depth = depth(b.get("depth"));
                if (depth < 1 || depth > MAX_DEPTH) throw StockadeError.invalid("depth must be between 1 and " + MAX_DEPTH);
                ObjectNode out = r.json.createObjectNode();
                ArrayNode entries = out.putArray("entries");
                for (EntryInfo e : sessions.listDir(ctx.sandbox(), path, depth, ctx.user())) entries.add(entry(r.json, e));
                r.sendJson(200, out);
            }
            case "MakeDir" -> {
                String path = path(r.jsonBody(MAX_BODY), "path");
                r.audit(path, null);
                if (!sessions.makeDir(ctx.sandbox(), path, ctx.user())) {
                    throw new StockadeError(StockadeError.Code.CONFLICT, "directory " + path + " already exists");
                }
                ObjectNode out = r.json.createObjectNode();
                out.set("entry", entry(r.json, sessions.stat(ctx.sandbox(), path, ctx.user())));
                r.sendJson(200, out);
            }
            case "Move" -> {
                JsonNode b = r.jsonBody(MAX_BODY);
                String source = path(b, "source");
                String destination = path(b, "destination");
                r.audit(source, "to " + destination);
                EntryInfo moved = sessions.move(ctx.sandbox(), source, destination, ctx.user());
                ObjectNode out = r.json.createObjectNode();
                out.set("entry", entry(r.json, moved));
                r.sendJson(200, out);
            }
            case "Remove" -> {
                String path = path(r.jsonBody(MAX_BODY), "path");
                r.audit(path, null);
                // envd answers success for a path that is already gone; the SDKs rely on it.
                sessions.remove(ctx.sandbox(), path, ctx.user());
                r.sendJson(200, r.json.createObjectNode());
            }
            case "WatchDir" -> watch.watchDir(r, ctx);
            case "CreateWatcher" -> watch.createWatcher(r, ctx);
            case "GetWatcherEvents" -> watch.watcherEvents(r, ctx);
            case "RemoveWatcher" -> watch.removeWatcher(r, ctx);
            default -> {
                return false;
            }
        }
        return true;
    }

    /** ListDir's depth: an int32 (a JSON number, or a decimal string as proto3 JSON allows); absent is 1. */
    static int depth(JsonNode v) {
        if (v == null || v.isNull()) return 1;
        long d;
        if (v.isIntegralNumber() && v.canConvertToLong()) {
            d = v.longValue();
        } else if (v.isTextual() && v.asText().matches("-?[0-9]{1,18}")) {
            d = Long.parseLong(v.asText());
        } else {
            throw StockadeError.invalid("depth must be a whole number between 1 and " + MAX_DEPTH);
        }
        if (d < 1 || d > MAX_DEPTH) throw StockadeError.invalid("depth must be between 1 and " + MAX_DEPTH + ", got " + v);
        return (int) d;
    }

    static String path(JsonNode body, String field) {
        JsonNode v = body.get(field);
        if (v == null || !v.isTextual() || v.asText().isEmpty()) throw StockadeError.invalid(field + " is required");
        String p = v.asText();
        if (p.indexOf('\0') >= 0) throw StockadeError.invalid(field + " must not contain NUL");
        if (p.length() > 4096) throw StockadeError.invalid(field + " is longer than 4096 characters");
        return p;
    }

    /** EntryInfo in proto3 JSON: enum by name, int64 as a string, Timestamp as RFC 3339, metadata (a map) only when there is some. */
    static ObjectNode entry(ObjectMapper json, EntryInfo e) {
        ObjectNode n = json.createObjectNode();
        n.put("name", e.name());
        n.put("type", switch (e.type()) {
            case "file" -> "FILE_TYPE_FILE";
            case "dir", "directory" -> "FILE_TYPE_DIRECTORY";
            case "symlink" -> "FILE_TYPE_SYMLINK";
            default -> "FILE_TYPE_UNSPECIFIED";
        });
        n.put("path", e.path());
        n.put("size", Long.toString(e.size()));
        n.put("mode", e.mode());
        n.put("permissions", e.permissions());
        n.put("owner", e.owner());
        n.put("group", e.group());
        n.put("modifiedTime", DateTimeFormatter.ISO_INSTANT.format(Instant.ofEpochMilli(e.modifiedMillis())));
        if (e.symlinkTarget() != null) n.put("symlinkTarget", e.symlinkTarget());
        if (!e.metadata().isEmpty()) e.metadata().forEach(n.putObject("metadata")::put);
        return n;
    }
}
