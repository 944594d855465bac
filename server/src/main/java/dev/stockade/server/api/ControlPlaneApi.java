package dev.stockade.server.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.server.core.CreateRequest;
import dev.stockade.server.core.Sandbox;
import dev.stockade.server.core.SandboxManager;
import dev.stockade.server.core.SandboxState;
import dev.stockade.server.core.Snapshots;
import dev.stockade.server.core.StockadeError;
import java.io.IOException;
import java.time.format.DateTimeFormatter;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The control plane (E2B's REST API): create, list, get, kill, timeout, connect. Parses and
 * answers; {@link SandboxManager} decides. Runs on request virtual threads.
 */
final class ControlPlaneApi {
    /** The envd version Stockade reports: the SDKs switch code paths on it (docs/e2b-wire.md). */
    static final String ENVD_VERSION = "0.5.7";
    private static final int MAX_BODY = 1024 * 1024;
    private static final Pattern SANDBOX = Pattern.compile("/sandboxes/([^/]+)(/[a-z]+)?");
    private static final Pattern V2_CONNECT = Pattern.compile("/v2/sandboxes/([^/]+)/connect");
    private static final Pattern TEMPLATE = Pattern.compile("/templates/([^/]+)");

    private final SandboxManager manager;
    private final dev.stockade.server.core.Admission admission;

    ControlPlaneApi(SandboxManager manager, dev.stockade.server.core.Admission admission) {
        this.manager = manager;
        this.admission = admission;
    }

    /** Returns false when no route matches (the router answers 404). */
    boolean handle(Request r) throws IOException {
        String path = r.path();
        String method = r.method();
        if (path.equals("/sandboxes") || path.equals("/v2/sandboxes")) {
            switch (method) {
                case "POST" -> create(r);
                case "GET" -> list(r);
                default -> throw methodNotAllowed(method, path);
            }
            return true;
        }
        if (path.equals("/runtimes")) {
            if (!method.equals("GET")) throw methodNotAllowed(method, path);
            // The runtimes a create may ask for ("runtime", or the -hardened template suffix for runsc)
            // and what each supports: a request for a feature a runtime lacks is a 400 naming it.
            ArrayNode out = r.json.createArrayNode();
            for (SandboxManager.RuntimeInfo info : manager.runtimeInfo()) {
                ObjectNode n = out.addObject();
                n.put("name", info.name());
                n.put("default", info.isDefault());
                n.put("available", info.available());
                if (info.reason() != null) n.put("reason", info.reason());
                if (info.isolation() != null) n.put("isolation", info.isolation());
                info.capabilities().forEach(n.putArray("capabilities")::add);
                if (info.available()) n.put("poolReady", info.poolReady());
            }
            r.sendJson(200, out);
            return true;
        }
        if (path.equals("/snapshots")) {
            if (!method.equals("GET")) throw methodNotAllowed(method, path);
            listSnapshots(r);
            return true;
        }
        Matcher template = TEMPLATE.matcher(path);
        if (template.matches()) {
            // E2B's deleteSnapshot: a snapshot is a template of its tenant.
            if (!method.equals("DELETE")) throw methodNotAllowed(method, path);
            r.audit(template.group(1), null);
            if (!manager.snapshots().delete(r.principal.tenant(), template.group(1))) {
                throw StockadeError.notFound("snapshot " + template.group(1) + " not found");
            }
            r.send(204, new byte[0]);
            return true;
        }
        Matcher v2 = V2_CONNECT.matcher(path);
        if (v2.matches()) {
            if (!method.equals("POST")) throw methodNotAllowed(method, path);
            connect(r, v2.group(1));
            return true;
        }
        Matcher m = SANDBOX.matcher(path);
        if (!m.matches()) return false;
        String id = m.group(1);
        String action = m.group(2) == null ? "" : m.group(2);
        switch (action) {
            case "" -> {
                switch (method) {
                    case "GET" -> r.sendJson(200, detail(r, manager.live(id)));
                    case "DELETE" -> {
                        manager.kill(id);
                        r.send(204, new byte[0]);
                    }
                    default -> throw methodNotAllowed(method, path);
                }
            }
            case "/timeout" -> {
                if (!method.equals("POST")) throw methodNotAllowed(method, path);
                JsonNode body = r.jsonBody(MAX_BODY);
                manager.setTimeout(id, intField(body, "timeout", true));
                r.send(204, new byte[0]);
            }
            case "/connect" -> {
                if (!method.equals("POST")) throw methodNotAllowed(method, path);
                connect(r, id);
            }
            case "/snapshots" -> {
                if (!method.equals("POST")) throw methodNotAllowed(method, path);
                JsonNode body = r.jsonBody(MAX_BODY);
                String name = textField(body, "name");
                JsonNode memory = body == null ? null : body.get("memory");
                if (memory != null && !memory.isNull() && !memory.isBoolean()) {
                    throw StockadeError.invalid("memory must be true or false");
                }
                long t = System.nanoTime();
                Snapshots.Snapshot snap = manager.snapshot(id, r.principal.tenant(), name, memory != null && memory.asBoolean());
                long ms = (System.nanoTime() - t) / 1_000_000;
                r.audit(snap.id(), snap.bytes() + " bytes in " + ms + " ms");
                ObjectNode out = snapshot(r, snap);
                out.put("durationMs", ms);
                r.sendJson(201, out);
            }
            case "/pause" -> {
                if (!method.equals("POST")) throw methodNotAllowed(method, path);
                JsonNode body = r.jsonBody(MAX_BODY);
                JsonNode memory = body.get("memory");
                if (memory != null && !memory.isNull() && !memory.isBoolean()) throw StockadeError.invalid("memory must be true or false");
                long t = System.nanoTime();
                manager.pause(id);
                r.audit(null, String.format("paused in %.1f ms", (System.nanoTime() - t) / 1e6));
                // E2B answers 204; Stockade says what survives (a frozen sandbox keeps everything),
                // also when the client asked for its filesystem only (memory: false).
                ObjectNode out = r.json.createObjectNode();
                out.put("sandboxID", id);
                out.put("state", "paused");
                preserved(out.putObject("preserved"));
                r.sendJson(200, out);
            }
            case "/refreshes" -> {
                if (!method.equals("POST")) throw methodNotAllowed(method, path);
                JsonNode body = r.jsonBody(MAX_BODY);
                manager.live(id);
                if (body.hasNonNull("duration")) manager.setTimeout(id, intField(body, "duration", false));
                r.send(204, new byte[0]);
            }
            default -> {
                return false;
            }
        }
        return true;
    }

    private void create(Request r) throws IOException {
        JsonNode b = r.jsonBody(MAX_BODY);
        String template = textField(b, "templateID");
        Integer timeout = b.hasNonNull("timeout") ? intField(b, "timeout", false) : null;
        CreateRequest req = new CreateRequest(template, timeout, stringMap(b, "metadata"), stringMap(b, "envVars"),
                textField(b, "runtime"), limits(b.get("limits")), NetworkBody.parse(b.get("network"),
                b.get("allow_internet_access")), NetworkBody.secrets(b.get("secrets")), autoPause(b),
                b.hasNonNull("idleTimeout") ? intField(b, "idleTimeout", false) : null);
        Sandbox sb = manager.create(req, r.principal.tenant(), admission);
        r.auditSandbox = sb.id();
        ObjectNode out = summary(r, sb);
        if (sb.seededFrom() != null) restoredFrom(out.putObject("restoredFrom"), sb.seededFrom());
        r.sendJson(201, out);
    }

    /** E2B's connect: a paused sandbox is resumed where it was; the timeout, when given, is reset. */
    private void connect(Request r, String id) throws IOException {
        JsonNode b = r.jsonBody(MAX_BODY);
        Integer timeout = b.hasNonNull("timeout") ? intField(b, "timeout", false) : null;
        boolean wasPaused = manager.live(id).isPaused();
        long t = System.nanoTime();
        Sandbox sb = manager.resume(id, timeout);
        if (wasPaused) r.audit(null, String.format("resumed in %.1f ms", (System.nanoTime() - t) / 1e6));
        ObjectNode out = summary(r, sb);
        if (wasPaused) preserved(out.putObject("resumed"));
        r.sendJson(200, out);
    }

    private void listSnapshots(Request r) throws IOException {
        Map<String, String> q = r.query();
        int limit = pageLimit(q);
        String after = q.get("nextToken");
        // Pages in id order (ids are random, so the order is arbitrary but stable while snapshots come and go).
        List<Snapshots.Snapshot> all = manager.snapshots().list(r.principal.tenant(), blank(q.get("sandboxID")), blank(q.get("name")))
                .stream().sorted(java.util.Comparator.comparing(Snapshots.Snapshot::id))
                .filter(s -> after == null || s.id().compareTo(after) > 0).toList();
        ArrayNode out = r.json.createArrayNode();
        for (Snapshots.Snapshot s : all.subList(0, Math.min(limit, all.size()))) out.add(snapshot(r, s));
        if (all.size() > limit) r.exchange.getResponseHeaders().set("X-Next-Token", all.get(limit - 1).id());
        r.sendJson(200, out);
    }

    /** A list's page size: the query's {@code limit} (1..1000), 100 by default. */
    private static int pageLimit(Map<String, String> q) {
        if (!q.containsKey("limit")) return 100;
        int limit;
        try {
            limit = Integer.parseInt(q.get("limit"));
        } catch (NumberFormatException e) {
            throw StockadeError.invalid("limit must be a whole number");
        }
        if (limit < 1 || limit > 1000) throw StockadeError.invalid("limit must be between 1 and 1000");
        return limit;
    }

    private static String blank(String s) {
        return s == null || s.isEmpty() ? null : s;
    }

    /** A snapshot as E2B's SDK reads it (snapshotID, names) plus what it holds: the filesystem only. */
    private static ObjectNode snapshot(Request r, Snapshots.Snapshot s) {
        ObjectNode n = r.json.createObjectNode();
        n.put("snapshotID", s.id());
        ArrayNode names = n.putArray("names");
        if (s.name() != null) names.add(s.name());
        n.put("sandboxID", s.source());
        n.put("createdAt", DateTimeFormatter.ISO_INSTANT.format(s.created()));
        n.put("bytes", s.bytes());
        ObjectNode kept = n.putObject("preserved");
        kept.put("filesystem", true);
        kept.put("memory", false);
        kept.put("processes", false);
        kept.put("how", "the sandbox's files (changes on top of its template, deletions included), copied while it was"
                + " frozen; processes, memory and interpreter state are not in a snapshot");
        return n;
    }

    /** What a pause keeps: everything, because the sandbox is frozen in place, not saved and rebuilt. */
    private static void preserved(ObjectNode n) {
        n.put("filesystem", true);
        n.put("memory", true);
        n.put("processes", true);
        n.put("how", "frozen in place (cgroup freezer): processes, memory, open files and interpreter contexts stay"
                + " as they were; no CPU while paused");
    }

    private void list(Request r) throws IOException {
        Map<String, String> q = r.query();
        int limit = pageLimit(q);
        String state = q.get("state");
        java.util.Set<String> states = new java.util.HashSet<>(List.of("running", "paused"));
        if (state != null) {
            states.clear();
            for (String s : state.split(",")) {
                if (!s.equals("running") && !s.equals("paused")) {
                    throw StockadeError.invalid("state must be running or paused, got '" + s + "'");
                }
                states.add(s);
            }
        }
        Map<String, String> metadataFilter = new LinkedHashMap<>();
        if (q.containsKey("metadata")) {
            // E2B sends metadata as an encoded query string of key=value pairs.
            for (String pair : q.get("metadata").split("&")) {
                if (pair.isEmpty()) continue;
                int eq = pair.indexOf('=');
                try {
                    // Form-decode the pair, then percent-decode once more: the SDK encodes each key and
                    // value with encodeURIComponent before form-encoding the pairs (docs/e2b-wire.md §3).
                    String k = java.net.URLDecoder.decode(eq < 0 ? pair : pair.substring(0, eq), java.nio.charset.StandardCharsets.UTF_8);
                    String v = eq < 0 ? "" : java.net.URLDecoder.decode(pair.substring(eq + 1), java.nio.charset.StandardCharsets.UTF_8);
                    metadataFilter.put(percentDecode(k), percentDecode(v));
                } catch (IllegalArgumentException e) {
                    throw StockadeError.invalid("malformed metadata filter");
                }
            }
        }
        String after = q.get("nextToken");
        String tenant = r.principal.tenant();
        List<Sandbox> page = manager.list().stream()
                .filter(sb -> sb.tenant().equals(tenant))
                .filter(sb -> states.contains(SandboxState.e2bName(sb.state())))
                .filter(sb -> after == null || cursor(sb).compareTo(after) > 0)
                .filter(sb -> metadataFilter.entrySet().stream()
                        .allMatch(e -> e.getValue().equals(sb.metadata().get(e.getKey()))))
                .limit(limit + 1L)
                .toList();
        ArrayNode out = r.json.createArrayNode();
        for (Sandbox sb : page.subList(0, Math.min(limit, page.size()))) out.add(detail(r, sb));
        if (page.size() > limit) r.exchange.getResponseHeaders().set("X-Next-Token", cursor(page.get(limit - 1)));
        r.sendJson(200, out);
    }

    /**
     * decodeURIComponent, leniently: valid %XX escapes become bytes (read as UTF-8), anything else —
     * a lone '%', a '+' — stays as it is, so clients that encode one level less still match.
     */
    static String percentDecode(String s) {
        if (s.indexOf('%') < 0) return s;
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream(s.length());
        byte[] in = s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        for (int i = 0; i < in.length; i++) {
            int hi = i + 2 < in.length && in[i] == '%' ? Character.digit(in[i + 1], 16) : -1;
            int lo = hi < 0 ? -1 : Character.digit(in[i + 2], 16);
            if (lo >= 0) {
                out.write(hi * 16 + lo);
                i += 2;
            } else {
                out.write(in[i]);
            }
        }
        return out.toString(java.nio.charset.StandardCharsets.UTF_8);
    }

    /** Paging cursor: start time then id, so it is stable while sandboxes come and go. */
    private static String cursor(Sandbox sb) {
        return String.format("%019d.%s", sb.startedAt().toEpochMilli(), sb.id());
    }

    private ObjectNode summary(Request r, Sandbox sb) {
        ObjectNode n = r.json.createObjectNode();
        n.put("sandboxID", sb.id());
        n.put("templateID", sb.templateId());
        n.put("alias", sb.alias());
        n.put("clientID", "stockade");
        n.put("envdVersion", ENVD_VERSION);
        n.put("envdAccessToken", sb.accessToken());
        // The code interpreter SDK sends this on every port-49999 call (its /contexts calls carry no
        // X-Access-Token). Stockade has one token per sandbox, so both names carry the same value.
        n.put("trafficAccessToken", sb.accessToken());
        n.putNull("domain");
        n.put("runtime", sb.runtime());
        return n;
    }

    /** A sandbox started from a snapshot says so, and what it got: files, not processes or memory. */
    private static void restoredFrom(ObjectNode n, String snapshotId) {
        n.put("snapshotID", snapshotId);
        n.put("filesystem", true);
        n.put("memory", false);
        n.put("processes", false);
    }

    private ObjectNode detail(Request r, Sandbox sb) {
        ObjectNode n = r.json.createObjectNode();
        n.put("sandboxID", sb.id());
        n.put("templateID", sb.templateId());
        n.put("alias", sb.alias());
        n.put("clientID", "stockade");
        n.put("startedAt", DateTimeFormatter.ISO_INSTANT.format(sb.startedAt()));
        n.put("endAt", DateTimeFormatter.ISO_INSTANT.format(sb.endAt()));
        n.put("state", SandboxState.e2bName(sb.state()));
        if (sb.state() instanceof SandboxState.Paused p) {
            n.put("pausedAt", DateTimeFormatter.ISO_INSTANT.format(p.at()));
            n.put("timeoutLeftSeconds", p.remaining().toSeconds());
        }
        n.put("autoPause", sb.autoPause());
        n.put("idleTimeout", sb.idleTimeoutSeconds());
        if (sb.seededFrom() != null) restoredFrom(n.putObject("restoredFrom"), sb.seededFrom());
        n.put("cpuCount", Math.max(1, (int) Math.ceil(sb.limits().cpus())));
        n.put("memoryMB", sb.limits().memoryMB());
        n.put("diskSizeMB", sb.limits().diskMB());
        n.put("envdVersion", ENVD_VERSION);
        var policy = sb.egress() == null ? dev.stockade.server.egress.NetworkPolicy.none() : sb.egress().policy();
        n.put("allowInternetAccess", policy.mode() == dev.stockade.server.egress.NetworkPolicy.Mode.OPEN);
        NetworkBody.describe(n.putObject("network"), policy);
        if (!sb.secretNames().isEmpty()) sb.secretNames().forEach(n.putArray("secrets")::add);
        ObjectNode md = n.putObject("metadata");
        sb.metadata().forEach(md::put);
        n.put("runtime", sb.runtime());
        ObjectNode l = n.putObject("limits");
        l.put("memoryMB", sb.limits().memoryMB());
        l.put("cpus", sb.limits().cpus());
        l.put("pids", sb.limits().pids());
        l.put("diskMB", sb.limits().diskMB());
        l.put("outputMB", sb.limits().outputMB());
        l.put("commandTimeoutSeconds", sb.limits().commandTimeoutSeconds());
        return n;
    }

    /** E2B's lifecycle: {@code autoPause: true} pauses the sandbox at its timeout instead of ending it. */
    private static boolean autoPause(JsonNode b) {
        JsonNode v = b.get("autoPause");
        if (v == null || v.isNull()) return false;
        if (!v.isBoolean()) throw StockadeError.invalid("autoPause must be true or false");
        JsonNode memory = b.get("autoPauseMemory");
        if (memory != null && !memory.isNull() && !memory.isBoolean()) throw StockadeError.invalid("autoPauseMemory must be true or false");
        return v.asBoolean();
    }

    private static CreateRequest.LimitsRequest limits(JsonNode l) {
        if (l == null || l.isNull()) return CreateRequest.LimitsRequest.NONE;
        if (!l.isObject()) throw StockadeError.invalid("limits must be an object");
        var names = l.fieldNames();
        while (names.hasNext()) {
            String f = names.next();
            if (!List.of("memoryMB", "cpus", "pids", "diskMB", "outputMB", "commandTimeoutSeconds").contains(f)) {
                throw StockadeError.invalid("limits." + f + " is not a known limit (memoryMB, cpus, pids, diskMB, outputMB,"
                        + " commandTimeoutSeconds)");
            }
        }
        Double cpus = null;
        if (l.hasNonNull("cpus")) {
            if (!l.get("cpus").isNumber()) throw StockadeError.invalid("limits.cpus must be a number");
            cpus = l.get("cpus").asDouble();
        }
        return new CreateRequest.LimitsRequest(optInt(l, "memoryMB"), cpus, optInt(l, "pids"), optInt(l, "diskMB"),
                optInt(l, "outputMB"), optInt(l, "commandTimeoutSeconds"));
    }

    private static Integer optInt(JsonNode n, String f) {
        return n.hasNonNull(f) ? intField(n, f, false) : null;
    }

    static int intField(JsonNode n, String f, boolean required) {
        JsonNode v = n.get(f);
        if (v == null || v.isNull()) {
            if (required) throw StockadeError.invalid(f + " is required");
            return 0;
        }
        if (!v.isIntegralNumber() || !v.canConvertToInt()) throw StockadeError.invalid(f + " must be a whole number");
        return v.intValue();
    }

    static String textField(JsonNode n, String f) {
        JsonNode v = n.get(f);
        if (v == null || v.isNull()) return null;
        if (!v.isTextual()) throw StockadeError.invalid(f + " must be a string");
        return v.asText();
    }

    static Map<String, String> stringMap(JsonNode n, String f) {
        JsonNode v = n.get(f);
        if (v == null || v.isNull()) return Map.of();
        if (!v.isObject()) throw StockadeError.invalid(f + " must be an object of strings");
        Map<String, String> m = new LinkedHashMap<>();
        var it = v.fields();
        while (it.hasNext()) {
            var e = it.next();
            if (!e.getValue().isTextual()) throw StockadeError.invalid(f + "." + e.getKey() + " must be a string");
            m.put(e.getKey(), e.getValue().asText());
        }
        return m;
    }

    private static StockadeError methodNotAllowed(String method, String path) {
        return new StockadeError(StockadeError.Code.INVALID_ARGUMENT, method + " is not allowed on " + path);
    }
}
