package dev.stockade.server.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.server.core.Admission;
import dev.stockade.server.core.Sandbox;
import dev.stockade.server.core.SandboxManager;
import dev.stockade.server.core.UsageSample;
import dev.stockade.server.error.StockadeError;
import java.io.IOException;
import java.time.Instant;
import java.time.format.DateTimeFormatter;
import java.util.Map;

/**
 * One sandbox's life on the control plane (E2B's REST API): create, get, kill, timeout, refresh,
 * connect (resume), pause and its resource usage (metrics). Each endpoint reads its body into a record, asks
 * {@link SandboxManager}, and answers; the router has already checked that a {@code {sandboxID}}
 * is the caller's. Runs on request virtual threads.
 */
final class SandboxLifecycleApi {
    private static final int MAX_BODY = 1024 * 1024;

    private final SandboxManager manager;
    private final Admission admission;

    SandboxLifecycleApi(SandboxManager manager, Admission admission) {
        this.manager = manager;
        this.admission = admission;
    }

    /** {@code POST /sandboxes/{id}/timeout}: the new timeout, in seconds from now. */
    record TimeoutBody(int timeout) {
        static TimeoutBody read(JsonNode b) {
            return new TimeoutBody(BodyFields.intField(b, "timeout", true));
        }
    }

    /** {@code POST /sandboxes/{id}/refreshes}: E2B's keep-alive, optionally with a new timeout. */
    record RefreshBody(Integer duration) {
        static RefreshBody read(JsonNode b) {
            return new RefreshBody(b.hasNonNull("duration") ? BodyFields.intField(b, "duration", false) : null);
        }
    }

    /**
     * E2B's connect (v1 and v2): resumes a paused sandbox (its timeout, when given, counts from the
     * resume); on a running one a timeout only ever extends the deadline.
     */
    record ConnectBody(Integer timeout) {
        static ConnectBody read(JsonNode b) {
            return new ConnectBody(b.hasNonNull("timeout") ? BodyFields.intField(b, "timeout", false) : null);
        }
    }

    /**
     * E2B's pause. {@code memory: false} asks for the filesystem only; a frozen sandbox keeps
     * everything either way, so the flag is checked and changes nothing.
     */
    record PauseBody(boolean memory) {
        static PauseBody read(JsonNode b) {
            return new PauseBody(BodyFields.boolField(b, "memory"));
        }
    }

    /**
     * {@code GET /sandboxes/{id}/metrics?start=&end=}: unix seconds, both optional (from the
     * sandbox's start until now); {@code end} covers its whole second, as the SDK rounds to seconds.
     */
    record MetricsRange(Instant from, Instant to) {
        static MetricsRange read(Map<String, String> q, Instant startedAt) {
            Instant from = q.containsKey("start") ? Instant.ofEpochSecond(seconds(q, "start")) : startedAt;
            Instant to = q.containsKey("end") ? Instant.ofEpochSecond(seconds(q, "end")).plusMillis(999) : Instant.now();
            if (from.isAfter(to)) throw StockadeError.invalid("start must not be after end");
            return new MetricsRange(from, to);
        }

        private static long seconds(Map<String, String> q, String name) {
            String v = q.get(name);
            if (v == null || !v.matches("\\d{1,12}")) {
                throw StockadeError.invalid(name + " must be a unix time in whole seconds, got '" + v + "'");
            }
            return Long.parseLong(v);
        }
    }

    void create(Request r, Route.Params p) throws IOException {
        Sandbox sb = manager.create(CreateBody.read(r.jsonBody(MAX_BODY)), r.principal.tenant(), admission);
        r.auditSandbox = sb.id();
        String downgrade = sb.egress() == null ? null : NetworkBody.downgradeNote(sb.egress().policy());
        if (downgrade != null) r.audit(null, "network: " + downgrade);
        ObjectNode out = SandboxJson.summary(r.json, sb);
        if (sb.seededFrom() != null) SandboxJson.restoredFrom(out.putObject("restoredFrom"), sb.seededFrom());
        r.sendJson(201, out);
    }

    void get(Request r, Route.Params p) throws IOException {
        r.sendJson(200, SandboxJson.detail(r.json, manager.live(p.sandboxId())));
    }

    void kill(Request r, Route.Params p) throws IOException {
        manager.kill(p.sandboxId());
        r.send(204, new byte[0]);
    }

    void timeout(Request r, Route.Params p) throws IOException {
        TimeoutBody body = TimeoutBody.read(r.jsonBody(MAX_BODY));
        manager.setTimeout(p.sandboxId(), body.timeout());
        r.send(204, new byte[0]);
    }

    void refresh(Request r, Route.Params p) throws IOException {
        RefreshBody body = RefreshBody.read(r.jsonBody(MAX_BODY));
        manager.live(p.sandboxId());
        if (body.duration() != null) manager.setTimeout(p.sandboxId(), body.duration());
        r.send(204, new byte[0]);
    }

    void connect(Request r, Route.Params p) throws IOException {
        String id = p.sandboxId();
        ConnectBody body = ConnectBody.read(r.jsonBody(MAX_BODY));
        boolean wasPaused = manager.live(id).isPaused();
        long t = System.nanoTime();
        Sandbox sb = manager.resume(id, body.timeout());
        if (wasPaused) r.audit(null, String.format("resumed in %.1f ms", (System.nanoTime() - t) / 1e6));
        ObjectNode out = SandboxJson.summary(r.json, sb);
        if (wasPaused) SandboxJson.preserved(out.putObject("resumed"));
        r.sendJson(200, out);
    }

    void metrics(Request r, Route.Params p) throws IOException {
        MetricsRange range = MetricsRange.read(r.query(), manager.live(p.sandboxId()).startedAt());
        ArrayNode out = r.json.createArrayNode();
        for (UsageSample s : manager.usage(p.sandboxId(), range.from(), range.to())) {
            ObjectNode n = out.addObject();
            n.put("timestamp", DateTimeFormatter.ISO_INSTANT.format(s.at()));
            n.put("timestampUnix", s.at().getEpochSecond());
            n.put("cpuCount", s.cpuCount());
            n.put("cpuUsedPct", Math.round(s.cpuUsedPct() * 100) / 100.0);
            n.put("memUsed", s.memUsed());
            n.put("memTotal", s.memTotal());
            n.put("memCache", s.memCache());
            n.put("diskUsed", s.diskUsed());
            n.put("diskTotal", s.diskTotal());
            // Stockade's own, beside E2B's fields (the SDKs keep only the fields they know).
            n.put("inodesUsed", s.inodesUsed());
            n.put("inodesTotal", s.inodesTotal());
        }
        r.sendJson(200, out);
    }

    void pause(Request r, Route.Params p) throws IOException {
        String id = p.sandboxId();
        PauseBody.read(r.jsonBody(MAX_BODY));
        long t = System.nanoTime();
        manager.pause(id);
        r.audit(null, String.format("paused in %.1f ms", (System.nanoTime() - t) / 1e6));
        // E2B answers 204; Stockade says what survives (a frozen sandbox keeps everything),
        // also when the client asked for its filesystem only (memory: false).
        ObjectNode out = r.json.createObjectNode();
        out.put("sandboxID", id);
        out.put("state", "paused");
        SandboxJson.preserved(out.putObject("preserved"));
        r.sendJson(200, out);
    }
}
