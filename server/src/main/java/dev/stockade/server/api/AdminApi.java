package dev.stockade.server.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.server.audit.AuditEntry;
import dev.stockade.server.audit.AuditLog;
import dev.stockade.server.core.StockadeError;
import dev.stockade.server.tenancy.ApiKey;
import dev.stockade.server.tenancy.QuotaGate;
import dev.stockade.server.tenancy.Quota;
import dev.stockade.server.tenancy.Tenancy;
import dev.stockade.server.tenancy.Tenant;
import java.io.IOException;
import java.time.Instant;
import java.time.format.DateTimeFormatter;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The admin API (admin keys only): tenants and their quotas, API keys, the audit log.
 * <pre>
 * GET  /admin/tenants                 POST /admin/tenants {name, quota?}
 * GET  /admin/tenants/{name}          PUT  /admin/tenants/{name}/quota {field: value|null, ...}
 * GET  /admin/keys[?tenant=]          POST /admin/keys {tenant, admin?, label?} → the key, once
 * DELETE /admin/keys/{id}             revokes at once
 * GET  /admin/audit[?tenant=&amp;sandbox=&amp;action=&amp;after=&amp;limit=]
 * </pre>
 */
final class AdminApi {
    private static final int MAX_BODY = 64 * 1024;
    private static final Pattern TENANT = Pattern.compile("/admin/tenants/([^/]+)(/quota)?");
    private static final Pattern KEY = Pattern.compile("/admin/keys/([^/]+)");

    private final Tenancy tenancy;
    private final QuotaGate quotas;
    private final AuditLog audit;

    AdminApi(Tenancy tenancy, QuotaGate quotas, AuditLog audit) {
        this.tenancy = tenancy;
        this.quotas = quotas;
        this.audit = audit;
    }

    /** Returns false when no route matches. The caller has checked that the key is an admin's. */
    boolean handle(Request r) throws IOException {
        String path = r.path();
        String method = r.method();
        switch (path) {
            case "/admin/tenants" -> {
                switch (method) {
                    case "GET" -> {
                        ArrayNode out = r.json.createArrayNode();
                        for (Tenant t : tenancy.tenants()) out.add(tenant(r, t));
                        r.sendJson(200, out);
                    }
                    case "POST" -> {
                        JsonNode b = r.jsonBody(MAX_BODY);
                        String name = ControlPlaneApi.textField(b, "name");
                        r.audit(name, null);
                        Tenant t = tenancy.createTenant(name, Quota.UNLIMITED.merge(b.get("quota")));
                        r.sendJson(201, tenant(r, t));
                    }
                    default -> throw notAllowed(r);
                }
                return true;
            }
            case "/admin/keys" -> {
                switch (method) {
                    case "GET" -> {
                        String t = r.query().get("tenant");
                        ArrayNode out = r.json.createArrayNode();
                        for (ApiKey k : tenancy.keys(t == null || t.isEmpty() ? null : t)) out.add(key(r, k));
                        r.sendJson(200, out);
                    }
                    case "POST" -> {
                        JsonNode b = r.jsonBody(MAX_BODY);
                        String t = ControlPlaneApi.textField(b, "tenant");
                        if (t == null) throw StockadeError.invalid("tenant is required");
                        JsonNode admin = b.get("admin");
                        if (admin != null && !admin.isNull() && !admin.isBoolean()) throw StockadeError.invalid("admin must be true or false");
                        Tenancy.NewKey k = tenancy.createKey(t, admin != null && admin.asBoolean(false),
                                ControlPlaneApi.textField(b, "label"));
                        r.audit(k.key().id(), "for tenant " + t + (k.key().admin() ? " (admin)" : ""));
                        ObjectNode out = key(r, k.key());
                        out.put("key", k.secret());
                        r.sendJson(201, out);
                    }
                    default -> throw notAllowed(r);
                }
                return true;
            }
            case "/admin/audit" -> {
                if (!method.equals("GET")) throw notAllowed(r);
                auditLog(r);
                return true;
            }
            default -> { }
        }
        Matcher t = TENANT.matcher(path);
        if (t.matches()) {
            String name = t.group(1);
            if (t.group(2) == null) {
                if (!method.equals("GET")) throw notAllowed(r);
                r.sendJson(200, tenant(r, tenancy.tenant(name)));
            } else {
                if (!method.equals("PUT")) throw notAllowed(r);
                JsonNode b = r.jsonBody(MAX_BODY);
                r.audit(name, b.toString());
                Tenant now = tenancy.setQuota(name, tenancy.tenant(name).quota().merge(b));
                r.sendJson(200, tenant(r, now));
            }
            return true;
        }
        Matcher k = KEY.matcher(path);
        if (k.matches()) {
            if (!method.equals("DELETE")) throw notAllowed(r);
            r.audit(k.group(1), null);
            r.sendJson(200, key(r, tenancy.revoke(k.group(1))));
            return true;
        }
        return false;
    }

    private void auditLog(Request r) throws IOException {
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

    private static StockadeError notAllowed(Request r) {
        return StockadeError.invalid(r.method() + " is not allowed on " + r.path());
    }
}
