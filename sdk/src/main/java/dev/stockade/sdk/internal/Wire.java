package dev.stockade.sdk.internal;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.sdk.CreateOptions;
import dev.stockade.sdk.EntryInfo;
import dev.stockade.sdk.FileType;
import dev.stockade.sdk.Limits;
import dev.stockade.sdk.ProcessInfo;
import dev.stockade.sdk.SandboxInfo;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** Translation between the public value types and their JSON on the wire (E2B's field names). */
public final class Wire {
    public static final String DEFAULT_TEMPLATE = "base";

    private Wire() {}

    /** The create body: E2B's fields plus Stockade's {@code runtime} and {@code limits}. */
    public static ObjectNode createBody(CreateOptions o) {
        ObjectNode b = Json.object();
        b.put("templateID", o.template() == null ? DEFAULT_TEMPLATE : o.template());
        if (o.timeout() != null) b.put("timeout", seconds(o.timeout()));
        if (!o.metadata().isEmpty()) o.metadata().forEach(b.putObject("metadata")::put);
        if (!o.envs().isEmpty()) o.envs().forEach(b.putObject("envVars")::put);
        if (o.runtime() != null) b.put("runtime", o.runtime());
        if (o.limits() != null) {
            Limits l = o.limits();
            ObjectNode n = b.putObject("limits");
            if (l.memoryMB() != null) n.put("memoryMB", l.memoryMB());
            if (l.cpus() != null) n.put("cpus", l.cpus());
            if (l.pids() != null) n.put("pids", l.pids());
            if (l.diskMB() != null) n.put("diskMB", l.diskMB());
            if (l.outputMB() != null) n.put("outputMB", l.outputMB());
            if (l.commandTimeoutSeconds() != null) n.put("commandTimeoutSeconds", l.commandTimeoutSeconds());
        }
        if (!o.allowOut().isEmpty()) {
            ObjectNode n = b.putObject("network");
            o.allowOut().forEach(n.putArray("allowOut")::add);
            n.put("mode", "allowlist");
        }
        return b;
    }

    /** Whole seconds, rounded up as the E2B SDKs do. */
    public static long seconds(Duration d) {
        long s = d.getSeconds();
        return d.getNano() > 0 ? s + 1 : s;
    }

    public static SandboxInfo sandboxInfo(JsonNode n) {
        Limits limits = null;
        JsonNode l = n.get("limits");
        if (l != null && l.isObject()) {
            limits = new Limits(positive(Json.optionalInt(l, "memoryMB")), positive(Json.optionalDouble(l, "cpus")),
                    positive(Json.optionalInt(l, "pids")), positive(Json.optionalInt(l, "diskMB")),
                    positive(Json.optionalInt(l, "outputMB")), positive(Json.optionalInt(l, "commandTimeoutSeconds")));
        }
        return new SandboxInfo(
                requireId(n),
                Json.text(n, "templateID"),
                Json.text(n, "alias"),
                Json.stringMap(n, "metadata"),
                Json.instant(n, "startedAt"),
                Json.instant(n, "endAt"),
                Json.text(n, "state"),
                (int) Json.number(n, "cpuCount"),
                (int) Json.number(n, "memoryMB"),
                Json.text(n, "envdVersion"),
                Json.text(n, "runtime"),
                limits);
    }

    public static String requireId(JsonNode n) {
        String id = Json.text(n, "sandboxID");
        if (id == null) {
            throw new dev.stockade.sdk.SandboxException(
                    "the server's answer names no sandboxID. Check that the URL points at a Stockade or E2B server.");
        }
        return id;
    }

    public static List<SandboxInfo> sandboxList(JsonNode array) {
        List<SandboxInfo> out = new ArrayList<>();
        for (JsonNode n : array) out.add(sandboxInfo(n));
        return out;
    }

    public static ProcessInfo processInfo(JsonNode n) {
        JsonNode config = n.path("config");
        List<String> args = new ArrayList<>();
        for (JsonNode a : config.path("args")) args.add(a.asText());
        return new ProcessInfo((int) Json.number(n, "pid"), Json.text(n, "tag"), Json.text(config, "cmd"), args,
                Json.stringMap(config, "envs"), Json.text(config, "cwd"));
    }

    /** An EntryInfo of filesystem RPCs (protobuf JSON) or of a {@code /files} upload answer. */
    public static EntryInfo entryInfo(JsonNode n) {
        String path = Json.text(n, "path");
        return new EntryInfo(
                Json.text(n, "name"),
                fileType(n.get("type")),
                path == null ? "" : path,
                Json.number(n, "size"),
                (int) Json.number(n, "mode"),
                Json.text(n, "permissions"),
                Json.text(n, "owner"),
                Json.text(n, "group"),
                Json.instant(n, "modifiedTime"),
                Json.text(n, "symlinkTarget"));
    }

    /** {@code FILE_TYPE_FILE} (protobuf JSON), 1 (protobuf number) or {@code file} (the /files answer). */
    public static FileType fileType(JsonNode t) {
        if (t == null || t.isNull()) return null;
        if (t.isNumber()) {
            return switch (t.asInt()) {
                case 1 -> FileType.FILE;
                case 2 -> FileType.DIR;
                case 3 -> FileType.SYMLINK;
                default -> null;
            };
        }
        return switch (t.asText().toUpperCase(Locale.ROOT)) {
            case "FILE_TYPE_FILE", "FILE" -> FileType.FILE;
            case "FILE_TYPE_DIRECTORY", "DIR", "DIRECTORY" -> FileType.DIR;
            case "FILE_TYPE_SYMLINK", "SYMLINK" -> FileType.SYMLINK;
            default -> null;
        };
    }

    private static Integer positive(Integer v) {
        return v != null && v > 0 ? v : null;
    }

    private static Double positive(Double v) {
        return v != null && v > 0 ? v : null;
    }
}
