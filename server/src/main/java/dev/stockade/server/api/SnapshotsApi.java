package dev.stockade.server.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.server.core.SandboxManager;
import dev.stockade.server.core.Snapshots;
import dev.stockade.server.error.StockadeError;
import java.io.IOException;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * Snapshots of a tenant's sandboxes: take one ({@code POST /sandboxes/{id}/snapshots}), list them
 * ({@code GET /snapshots}), delete one (E2B's deleteSnapshot, {@code DELETE /templates/{id}}: a
 * snapshot is a template of its tenant). A create from a snapshot is a create
 * ({@link SandboxLifecycleApi}). Runs on request virtual threads.
 */
final class SnapshotsApi {
    private static final int MAX_BODY = 1024 * 1024;

    private final SandboxManager manager;

    SnapshotsApi(SandboxManager manager) {
        this.manager = manager;
    }

    /** A snapshot to take: an optional name; {@code memory} is read for E2B's sake (files only are kept). */
    record SnapshotBody(String name, boolean memory) {
        static SnapshotBody read(JsonNode b) {
            String name = BodyFields.textField(b, "name");
            return new SnapshotBody(name, BodyFields.boolField(b, "memory"));
        }
    }

    /** A page of the list: size, cursor, and the filters (null: any). */
    record SnapshotQuery(int limit, String after, String sandboxId, String name) {
        static SnapshotQuery read(Map<String, String> q) {
            return new SnapshotQuery(SandboxListApi.pageLimit(q), q.get("nextToken"), blank(q.get("sandboxID")),
                    blank(q.get("name")));
        }
    }

    void create(Request r, Route.Params p) throws IOException {
        SnapshotBody body = SnapshotBody.read(r.jsonBody(MAX_BODY));
        long t = System.nanoTime();
        Snapshots.Snapshot snap = manager.snapshot(p.sandboxId(), r.principal.tenant(), body.name(), body.memory());
        long ms = (System.nanoTime() - t) / 1_000_000;
        r.audit(snap.id(), snap.bytes() + " bytes in " + ms + " ms");
        ObjectNode out = SandboxJson.snapshot(r.json, snap);
        out.put("durationMs", ms);
        r.sendJson(201, out);
    }

    void list(Request r, Route.Params p) throws IOException {
        SnapshotQuery q = SnapshotQuery.read(r.query());
        // Pages in id order (ids are random, so the order is arbitrary but stable while snapshots come and go).
        List<Snapshots.Snapshot> all = manager.snapshots().list(r.principal.tenant(), q.sandboxId(), q.name())
                .stream().sorted(Comparator.comparing(Snapshots.Snapshot::id))
                .filter(s -> q.after() == null || s.id().compareTo(q.after()) > 0).toList();
        ArrayNode out = r.json.createArrayNode();
        for (Snapshots.Snapshot s : all.subList(0, Math.min(q.limit(), all.size()))) out.add(SandboxJson.snapshot(r.json, s));
        if (all.size() > q.limit()) r.setResponseHeader("X-Next-Token", all.get(q.limit() - 1).id());
        r.sendJson(200, out);
    }

    void delete(Request r, Route.Params p) throws IOException {
        String id = p.get("templateID");
        r.audit(id, null);
        if (!manager.snapshots().delete(r.principal.tenant(), id)) throw StockadeError.notFound("snapshot " + id + " not found");
        r.send(204, new byte[0]);
    }

    private static String blank(String s) {
        return s == null || s.isEmpty() ? null : s;
    }
}
