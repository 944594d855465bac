package dev.stockade.server.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.server.audit.AuditEntry;
import dev.stockade.server.audit.AuditLog;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.tenancy.ApiKey;
import dev.stockade.server.tenancy.QuotaGate;
import dev.stockade.server.tenancy.Quota;
import dev.stockade.server.tenancy.Tenancy;
import dev.stockade.server.tenancy.Tenant;
import dev.stockade.server.tenancy.TenantAdmin;
import java.io.IOException;
import java.time.Instant;
import java.time.format.DateTimeFormatter;

/**
 * The admin API (admin keys only; the router checks that for every path under {@code /admin}):
 * tenants and their quotas, API keys, the audit log. Changes go through {@link TenantAdmin}, the
 * admin path the CLI takes too, so both follow the same rules. Runs on request virtual threads.
 * <pre>
 * GET  /admin/tenants                 POST /admin/tenants {name, quota?}
 * GET  /admin/tenants/{tenant}        PUT  /admin/tenants/{tenant}/quota {field: value|null, ...}
 * GET  /admin/keys[?tenant=]          POST /admin/keys {tenant, admin?, label?} → the key, once
 * DELETE /admin/keys/{keyID}          revokes at once
 * GET  /admin/audit[?tenant=&amp;sandbox=&amp;action=&amp;after=&amp;limit=]
 * </pre>
 */
final class AdminApi {
    private static final int MAX_BODY = 64 * 1024;

    private final TenantAdmin admin;
    private final QuotaGate quotas;
    private final AuditLog audit;

    AdminApi(TenantAdmin admin, QuotaGate quotas, AuditLog audit) {
        this.admin = admin;
        this.quotas = quotas;
        this.audit = audit;
    }

    /** {@code POST /admin/tenants}: a name and, optionally, a quota (fields as in {@link Quota}). */
    static TenantAdmin.TenantRequest tenantBody(JsonNode b) {
        String name = BodyFields.textField(b, "name");
        return new TenantAdmin.TenantRequest(name, Quota.UNLIMITED.merge(b.get("quota")));
    }

    /** {@code POST /admin/keys}: the tenant, whether the key is an admin's, a label. */
    static TenantAdmin.KeyRequest keyBody(JsonNode b) {
        String tenant = BodyFields.textField(b, "tenant");
        if (tenant == null) throw StockadeError.invalid("tenant is required");
        return new TenantAdmin.KeyRequest(tenant, BodyFields.boolField(b, "admin"), BodyFields.textField(b, "label"));
    }

    void listTenants(Request r, Route.Params p) throws IOException {
        ArrayNode out = r.json.createArrayNode();
        for (Tenant t : admin.tenants()) out.add(tenant(r, t));
        r.sendJson(200, out);
    }

    void createTenant(Request r, Route.Params p) throws IOException {
        JsonNode b = r.jsonBody(MAX_BODY);
        r.audit(BodyFields.textField(b, "name"), null);
        r.sendJson(201, tenant(r, admin.createTenant(tenantBody(b))));
    }

    void getTenant(Request r, Route.Params p) throws IOException {
        r.sendJson(200, tenant(r, admin.tenant(p.get("tenant"))));
    }

    /** Replaces the fields given, keeps the others (null clears one). */
    void setQuota(Request r, Route.Params p) throws IOException {
        String name = p.get("tenant");
        JsonNode b = r.jsonBody(MAX_BODY);
        r.audit(name, b.toString());
        r.sendJson(200, tenant(r, admin.setQuota(name, admin.tenant(name).quota().merge(b))));
    }

    void listKeys(Request r, Route.Params p) throws IOException {
        String t = r.query().get("tenant");
        ArrayNode out = r.json.createArrayNode();
        for (ApiKey k : admin.keys(t == null || t.isEmpty() ? null : t)) out.add(key(r, k));
        r.sendJson(200, out);
    }

    void createKey(Request r, Route.Params p) throws IOException {
        Tenancy.NewKey k = admin.createKey(keyBody(r.jsonBody(MAX_BODY)));
        r.audit(k.key().id(), "for tenant " + k.key().tenant() + (k.key().admin() ? " (admin)" : ""));
        ObjectNode out = key(r, k.key());
        out.put("key", k.secret());
        r.sendJson(201, out);
    }

    void revokeKey(Request r, Route.Params p) throws IOException {
        String id = p.get("keyID");
        r.audit(id, null);
        r.sendJson(200, key(r, admin.revoke(id)));
    }

    void auditLog(Request r, Route.Params p) throws IOException {
        var q = r.query();
        long after = 0;
        int limit = 100;
        try {
            if (q.containsKey("after")) after = Long.parseLong(q.get("after"));
            if (q.containsKey("limit")) limit = Integer.parseInt(q.get("limit"));
        } catch (NumberFormatException e) {
            throw StockadeError.invalid("after and limit must be whole numbers");
        }
        if (after < 0) throw StockadeError.invalid("after must be 0 or more");
        if (limit < 1 || limit > 1000) throw StockadeError.invalid("limit must be between 1 and 1000");
        var entries = audit.read(new AuditLog.Query(blank(q.get("tenant")), blank(q.get("sandbox")),
                blank(q.get("action")), after, limit + 1));
        ObjectNode out = r.json.createObjectNode();
        ArrayNode list = out.putArray("entries");
        for (AuditEntry e : entries.subList(0, Math.min(limit, entries.size()))) {
            ObjectNode n = list.addObject();
            n.put("seq", e.seq());
            n.put("time", DateTimeFormatter.ISO_INSTANT.format(e.time()));
            n.put("tenant", e.tenant());
            n.put("keyId", e.keyId());
            n.put("via", e.via());
            n.put("remote", e.remote());
            n.put("action", e.action());
            n.put("sandbox", e.sandbox());
            n.put("target", e.target());
            n.put("status", e.status());
            n.put("outcome", e.outcome());
            n.put("detail", e.detail());
            n.put("durationMs", e.durationMs());
        }
        if (entries.size() > limit) out.put("next", entries.get(limit - 1).seq());
        else out.putNull("next");
        r.sendJson(200, out);
    }

    private static String blank(String s) {
        return s == null || s.isEmpty() ? null : s;
    }

    private ObjectNode tenant(Request r, Tenant t) {
        ObjectNode n = r.json.createObjectNode();
        n.put("name", t.name());
        n.put("created", iso(t.created()));
        n.set("quota", t.quota().toJson(r.json));
        QuotaGate.Held h = quotas.held(t.name());
        ObjectNode u = n.putObject("usage");
        u.put("sandboxes", h.sandboxes());
        u.put("memoryMB", h.memoryMB());
        u.put("cpus", h.cpus());
        u.put("createsLastMinute", h.createsLastMinute());
        return n;
    }

    static ObjectNode key(Request r, ApiKey k) {
        ObjectNode n = r.json.createObjectNode();
        n.put("id", k.id());
        n.put("tenant", k.tenant());
        n.put("admin", k.admin());
        n.put("label", k.label());
        n.put("created", iso(k.created()));
        if (k.revoked() == null) n.putNull("revoked"); else n.put("revoked", iso(k.revoked()));
        return n;
    }

    private static String iso(Instant i) {
        return DateTimeFormatter.ISO_INSTANT.format(i);
    }

}
