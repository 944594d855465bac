package dev.stockade.server.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.server.core.TemplateCatalog;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.templates.BuildLog;
import dev.stockade.server.templates.TemplateBuilds;
import dev.stockade.server.templates.TemplateFiles;
import dev.stockade.server.templates.TemplateNames;
import dev.stockade.server.templates.TemplateStore;
import dev.stockade.server.templates.Templates;
import dev.stockade.server.tenancy.Principal;
import java.io.IOException;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * E2B's Template API as the e2b 2.51 SDKs call it (issue 17; docs: /work/notes/issue17-wire.md):
 * request a build ({@code POST /v3/templates}), the COPY uploads (files endpoint, then a PUT on the
 * absolute signed URL it answers, which carries no API key), start it
 * ({@code POST /v2/templates/{id}/builds/{buildID}}), poll its status, aliases, tags, list and delete.
 * Every record is the caller's tenant's: another tenant's template is not found. Bodies are read
 * into self-validating records. Runs on request virtual threads; builds run in {@link TemplateBuilds}.
 */
final class TemplatesApi {
    private static final int MAX_BODY = 1024 * 1024;
    private static final int PAGE = 100;
    /** How long a files URL may be used: the SDKs upload right after asking (E2B's presigned URLs last longer; 1 h suffices). */
    private static final long URL_SECONDS = 3600;

    private final Templates templates;
    private final Clock clock;
    /** Signs the upload URLs; per server run, so a URL does not outlive the server that made it. */
    private final byte[] secret = new byte[32];

    TemplatesApi(Templates templates, Clock clock) {
        this.templates = templates;
        this.clock = clock;
        new SecureRandom().nextBytes(secret);
    }

    /** E2B's TemplateBuildRequestV3: name (or the deprecated alias), tags, resources (read, checked, not used yet). */
    record BuildRequest(TemplateNames.Name name, List<String> tags) {
        static BuildRequest read(JsonNode b, String tenant) {
            String name = BodyFields.textField(b, "name");
            String alias = BodyFields.textField(b, "alias");
            if (name == null) name = alias;
            if (name == null) throw StockadeError.invalid("name is required (alias or alias:tag)");
            for (String f : List.of("cpuCount", "memoryMB", "minFreeDiskMb")) {
                Integer v = BodyFields.optInt(b, f);
                if (v != null && v < 0) throw StockadeError.invalid(f + " must not be negative");
            }
            TemplateNames.Name n = TemplateNames.parse(name, tenant);
            List<String> tags = new ArrayList<>();
            tags.add(n.tag()); // the name's tag, default when none: what Sandbox.create(alias[:tag]) runs
            tags.addAll(TemplateNames.tags(strings(b, "tags")));
            return new BuildRequest(n, List.copyOf(new java.util.LinkedHashSet<>(tags)));
        }
    }

    /** E2B's AssignTemplateTagsRequest {target, tags}. */
    record AssignTags(TemplateNames.Name target, List<String> tags) {
        static AssignTags read(JsonNode b, String tenant) {
            String target = BodyFields.textField(b, "target");
            if (target == null) throw StockadeError.invalid("target is required (alias:tag or alias)");
            List<String> tags = TemplateNames.tags(strings(b, "tags"));
            if (tags.isEmpty()) throw StockadeError.invalid("tags must name at least one tag");
            return new AssignTags(TemplateNames.parse(target, tenant), tags);
        }
    }

    /** E2B's DeleteTemplateTagsRequest {name, tags}: the name without a tag, never the default tag. */
    record RemoveTags(String alias, List<String> tags) {
        static RemoveTags read(JsonNode b, String tenant) {
            String name = BodyFields.textField(b, "name");
            if (name == null) throw StockadeError.invalid("name is required (the template's alias or id)");
            TemplateNames.Name n = TemplateNames.parse(name, tenant);
            if (n.tagGiven()) throw StockadeError.invalid("name must not carry a tag: the tags to remove go in tags");
            List<String> tags = TemplateNames.tags(strings(b, "tags"));
            if (tags.isEmpty()) throw StockadeError.invalid("tags must name at least one tag");
            if (tags.contains(TemplateNames.DEFAULT_TAG)) throw StockadeError.invalid("the default tag cannot be removed");
            return new RemoveTags(n.alias(), tags);
        }
    }

    /** E2B's TemplateBuildStartV2, into a {@link TemplateBuilds.Start}; unknown keys (the SDK's extra step keys) ignored. */
    static TemplateBuilds.Start readStart(JsonNode b) {
        String fromImage = BodyFields.textField(b, "fromImage");
        String fromTemplate = BodyFields.textField(b, "fromTemplate");
        if ((fromImage == null) == (fromTemplate == null)) {
            throw StockadeError.invalid("exactly one of fromImage and fromTemplate is required");
        }
        if (fromTemplate != null) fromTemplate = fromTemplate.trim().toLowerCase(Locale.ROOT);
        if (b.has("force")) BodyFields.boolField(b, "force");
        if (b.hasNonNull("fromImageRegistry") && !b.get("fromImageRegistry").isObject()) {
            throw StockadeError.invalid("fromImageRegistry must be an object");
        }
        JsonNode steps = b.path("steps");
        if (!steps.isMissingNode() && !steps.isNull() && !steps.isArray()) throw StockadeError.invalid("steps must be a list");
        if (steps.size() > 1000) throw StockadeError.invalid("a template has at most 1000 steps");
        List<TemplateBuilds.Step> out = new ArrayList<>();
        for (JsonNode s : steps) {
            int i = out.size() + 1;
            if (!s.isObject()) throw StockadeError.invalid("steps[" + i + "] must be an object");
            String type = BodyFields.textField(s, "type");
            if (type == null || type.isEmpty()) throw StockadeError.invalid("steps[" + i + "].type is required");
            List<String> args = strings(s, "args");
            if (s.has("force")) BodyFields.boolField(s, "force");
            String hash = BodyFields.textField(s, "filesHash");
            if (hash != null && !TemplateFiles.HASH.matcher(hash).matches()) {
                throw StockadeError.invalid("steps[" + i + "].filesHash must be 64 lower-case hex digits");
            }
            out.add(new TemplateBuilds.Step(type.toUpperCase(Locale.ROOT), args));
        }
        return new TemplateBuilds.Start(fromImage, fromTemplate, out, BodyFields.textField(b, "startCmd"),
                BodyFields.textField(b, "readyCmd"));
    }

    void requestBuild(Request r, Route.Params p) throws IOException {
        String tenant = r.principal.tenant();
        BuildRequest req = BuildRequest.read(r.jsonBody(MAX_BODY), tenant);
        TemplateStore.Build b = templates.store().newBuild(tenant, req.name().alias(), req.tags());
        r.audit(b.templateId(), "build " + b.id() + " of " + req.name().text());
        ObjectNode out = r.json.createObjectNode();
        out.put("templateID", b.templateId());
        out.put("buildID", b.id());
        out.put("public", false);
        out.putArray("names").add(req.name().alias());
        ArrayNode tags = out.putArray("tags");
        req.tags().forEach(tags::add);
        out.putArray("aliases").add(req.name().alias());
        r.sendJson(202, out);
    }

    void filesUrl(Request r, Route.Params p) throws IOException {
        String tenant = r.principal.tenant();
        TemplateStore.Template t = template(tenant, p.get("templateID"));
        String hash = hash(p.get("hash"));
        long expires = clock.instant().getEpochSecond() + URL_SECONDS;
        String query = "tenant=" + URLEncoder.encode(tenant, StandardCharsets.UTF_8) + "&expires=" + expires
                + "&signature=" + URLEncoder.encode(signature(tenant, t.id(), hash, expires), StandardCharsets.UTF_8);
        ObjectNode out = r.json.createObjectNode();
        out.put("present", templates.files().present(tenant, hash));
        out.put("url", origin(r) + "/templates/" + t.id() + "/files/" + hash + "?" + query);
        r.sendJson(201, out);
    }

    /** The PUT of a files URL: no API key, the signature is the credential. */
    void upload(Request r, Route.Params p) throws IOException {
        Map<String, String> q = r.query();
        String tenant = q.get("tenant");
        String id = BodyFields.percentDecode(p.get("templateID"));
        String hash = BodyFields.percentDecode(p.get("hash"));
        long expires;
        try {
            expires = Long.parseLong(q.getOrDefault("expires", ""));
        } catch (NumberFormatException e) {
            throw badSignature();
        }
        if (tenant == null || !TemplateFiles.HASH.matcher(hash).matches() || !MessageDigest.isEqual(
                signature(tenant, id, hash, expires).getBytes(StandardCharsets.UTF_8),
                q.getOrDefault("signature", "").getBytes(StandardCharsets.UTF_8))) {
            throw badSignature();
        }
        r.principal = Principal.signedUrl(tenant);
        r.audit(id, "upload " + hash);
        if (expires < clock.instant().getEpochSecond()) {
            throw new StockadeError(StockadeError.Code.UNAUTHENTICATED, "this upload URL has expired: ask the files endpoint again");
        }
        String len = r.header("Content-Length");
        if (len == null) throw StockadeError.invalid("an upload needs a Content-Length (chunked uploads are not taken)");
        long length;
        try {
            length = Long.parseLong(len.trim());
        } catch (NumberFormatException e) {
            throw StockadeError.invalid("Content-Length is not a number");
        }
        if (length > TemplateFiles.MAX_BYTES) throw Request.tooLarge(TemplateFiles.MAX_BYTES);
        templates.files().receive(tenant, hash, r.requestBody(), length);
        r.send(200, new byte[0]);
    }

    void startBuild(Request r, Route.Params p) throws IOException {
        String tenant = r.principal.tenant();
        TemplateStore.Template t = template(tenant, p.get("templateID"));
        TemplateStore.Build b = build(t, p.get("buildID"));
        JsonNode body = r.jsonBody(MAX_BODY);
        TemplateBuilds.Start start = readStart(body);
        r.audit(t.id(), "start build " + b.id());
        templates.builds().start(tenant, b.id(), start, body.toString());
        r.send(202, new byte[0]);
    }

    void status(Request r, Route.Params p) throws IOException {
        String tenant = r.principal.tenant();
        TemplateStore.Template t = template(tenant, p.get("templateID"));
        String buildId = BodyFields.percentDecode(p.get("buildID"));
        Map<String, String> q = r.query();
        int offset = queryInt(q, "logsOffset", 0, 0, Integer.MAX_VALUE);
        int limit = queryInt(q, "limit", PAGE, 0, PAGE);
        String level = q.get("level");
        if (level != null && !List.of("debug", "info", "warn", "error").contains(level)) {
            throw StockadeError.invalid("level must be one of debug, info, warn, error");
        }
        // The live log first: a build that ends between the two reads is then read from the store.
        BuildLog live = templates.builds().live(buildId);
        TemplateStore.Build b = build(t, buildId);
        BuildLog log = live != null && !b.status().terminal() ? live : BuildLog.fromJson(b.log());
        ObjectNode out = r.json.createObjectNode();
        out.put("templateID", t.id());
        out.put("buildID", b.id());
        out.put("status", b.status().wire());
        out.putArray("logs");
        out.set("logEntries", BuildLog.entries(r.json, log.page(offset, limit, level)));
        if (b.reason() != null) out.set("reason", r.json.readTree(b.reason()));
        r.sendJson(200, out);
    }

    void alias(Request r, Route.Params p) throws IOException {
        String alias = unqualified(r.principal.tenant(), BodyFields.percentDecode(p.get("alias")).trim().toLowerCase(Locale.ROOT));
        ObjectNode out = r.json.createObjectNode();
        if (TemplateCatalog.isBuiltIn(alias)) {
            out.put("templateID", alias);
            out.put("public", true);
        } else {
            TemplateStore.Template t = templates.store().find(r.principal.tenant(), alias);
            if (t == null || !t.alias().equals(alias)) throw StockadeError.notFound("template alias '" + alias + "' not found");
            out.put("templateID", t.id());
            out.put("public", false);
        }
        r.sendJson(200, out);
    }

    void assignTags(Request r, Route.Params p) throws IOException {
        String tenant = r.principal.tenant();
        AssignTags req = AssignTags.read(r.jsonBody(MAX_BODY), tenant);
        TemplateStore.Template t = template(tenant, req.target().alias());
        String buildId = templates.store().tagged(t.id(), req.target().tag());
        if (buildId == null) throw StockadeError.notFound("template '" + t.alias() + "' has no tag '" + req.target().tag() + "'");
        r.audit(t.id(), "tag " + String.join(",", req.tags()) + " → " + buildId);
        templates.store().assignTags(t.id(), buildId, req.tags());
        ObjectNode out = r.json.createObjectNode();
        out.put("buildID", buildId);
        ArrayNode tags = out.putArray("tags");
        req.tags().forEach(tags::add);
        r.sendJson(201, out);
    }

    void removeTags(Request r, Route.Params p) throws IOException {
        String tenant = r.principal.tenant();
        RemoveTags req = RemoveTags.read(r.jsonBody(MAX_BODY), tenant);
        TemplateStore.Template t = template(tenant, req.alias());
        r.audit(t.id(), "untag " + String.join(",", req.tags()));
        templates.store().removeTags(t.id(), req.tags());
        r.send(204, new byte[0]);
    }

    void tags(Request r, Route.Params p) throws IOException {
        TemplateStore.Template t = template(r.principal.tenant(), p.get("templateID"));
        ArrayNode out = r.json.createArrayNode();
        for (TemplateStore.Tag tag : templates.store().tags(t.id())) {
            out.addObject().put("tag", tag.tag()).put("buildID", tag.buildId())
                    .put("createdAt", Instant.ofEpochMilli(tag.createdMs()).toString());
        }
        r.sendJson(200, out);
    }

    void list(Request r, Route.Params p) throws IOException {
        ArrayNode out = r.json.createArrayNode();
        for (TemplateStore.Template t : templates.store().list(r.principal.tenant())) {
            List<TemplateStore.Build> builds = templates.store().builds(t.id());
            TemplateStore.Build shown = builds.stream().filter(b -> b.status() == TemplateStore.Status.READY).findFirst()
                    .orElse(builds.isEmpty() ? null : builds.getFirst());
            ObjectNode n = out.addObject();
            n.put("templateID", t.id());
            n.put("buildID", shown == null ? "" : shown.id());
            n.put("cpuCount", 0);
            n.put("memoryMB", 0);
            n.put("diskSizeMB", 0);
            n.put("public", false);
            n.put("createdAt", Instant.ofEpochMilli(t.createdMs()).toString());
            long updated = shown == null ? t.createdMs() : shown.finishedMs() != null ? shown.finishedMs() : shown.createdMs();
            n.put("updatedAt", Instant.ofEpochMilli(updated).toString());
            n.putNull("createdBy");
            n.putNull("lastSpawnedAt");
            n.put("spawnCount", 0);
            n.put("buildCount", builds.size());
            n.put("envdVersion", "");
            n.putArray("aliases").add(t.alias());
            n.putArray("names").add(t.alias());
            n.put("buildStatus", shown == null ? "waiting" : shown.status().wire());
        }
        r.sendJson(200, out);
    }

    /**
     * Deletes the tenant's template of that id or alias: true when it was one (204 sent), false when
     * the id names none, so that the route tries the snapshots (a snapshot is a template too in E2B).
     * A sandbox running from a template keeps running: its template is its base plus a recorded
     * config, nothing it still reads, so deleting never conflicts (409) yet.
     */
    boolean delete(Request r, Route.Params p) throws IOException {
        String id = BodyFields.percentDecode(p.get("templateID")).trim().toLowerCase(Locale.ROOT);
        if (TemplateCatalog.isBuiltIn(id)) {
            throw new StockadeError(StockadeError.Code.CONFLICT, "'" + id + "' is one of the server's built-in templates: it cannot be deleted");
        }
        TemplateStore.Template t = templates.store().find(r.principal.tenant(), id);
        if (t == null) return false;
        r.audit(t.id(), "template " + t.alias());
        templates.store().delete(r.principal.tenant(), t.id());
        r.send(204, new byte[0]);
        return true;
    }

    private TemplateStore.Template template(String tenant, String raw) {
        String id = unqualified(tenant, BodyFields.percentDecode(raw).trim());
        TemplateStore.Template t = templates.store().find(tenant, id.toLowerCase(Locale.ROOT));
        if (t == null) throw StockadeError.notFound("template '" + id + "' not found");
        return t;
    }

    private TemplateStore.Build build(TemplateStore.Template t, String raw) {
        String id = BodyFields.percentDecode(raw);
        TemplateStore.Build b = templates.store().build(t.id(), id);
        if (b == null) throw StockadeError.notFound("build '" + id + "' of template " + t.id() + " not found");
        return b;
    }

    /** A name without its namespace ({@code tenant/alias}, as the SDKs may send it %2F-encoded); another tenant's is not found. */
    private static String unqualified(String tenant, String name) {
        int slash = name.indexOf('/');
        if (slash < 0) return name;
        if (!name.substring(0, slash).equalsIgnoreCase(tenant)) throw StockadeError.notFound("template '" + name + "' not found");
        return name.substring(slash + 1);
    }

    private static String hash(String raw) {
        String h = BodyFields.percentDecode(raw);
        if (!TemplateFiles.HASH.matcher(h).matches()) {
            throw StockadeError.invalid("hash must be the SHA-256 of the files as 64 lower-case hex digits");
        }
        return h;
    }

    private String signature(String tenant, String templateId, String hash, long expires) {
        // SignedFileUrls' digest, keyed with this server's secret instead of a sandbox's token.
        return new String(SignedFileUrls.sign("template-files:" + tenant + ":" + templateId + ":" + hash + ":" + expires
                + ":" + HexFormat.of().formatHex(secret)), StandardCharsets.UTF_8);
    }

    private static StockadeError badSignature() {
        return new StockadeError(StockadeError.Code.UNAUTHENTICATED, "this upload URL's signature is not valid:"
                + " use the URL the files endpoint (GET /templates/{templateID}/files/{hash}) answered, unchanged");
    }

    /** The scheme and authority the caller reached this server at: the upload URL must be absolute. */
    private static String origin(Request r) {
        String host = r.header("Host");
        if (host == null || host.isBlank()) throw StockadeError.invalid("a Host header is required");
        String proto = r.header("X-Forwarded-Proto");
        return ("https".equalsIgnoreCase(proto) ? "https" : "http") + "://" + host;
    }

    private static int queryInt(Map<String, String> q, String name, int dflt, int min, int max) {
        String v = q.get(name);
        if (v == null || v.isEmpty()) return dflt;
        try {
            int n = Integer.parseInt(v);
            if (n < min || n > max) throw StockadeError.invalid(name + " must be between " + min + " and " + max);
            return n;
        } catch (NumberFormatException e) {
            throw StockadeError.invalid(name + " must be a whole number");
        }
    }

    private static List<String> strings(JsonNode n, String f) {
        JsonNode v = n.get(f);
        if (v == null || v.isNull()) return List.of();
        if (!v.isArray()) throw StockadeError.invalid(f + " must be a list of strings");
        List<String> out = new ArrayList<>();
        for (JsonNode e : v) {
            if (!e.isTextual()) throw StockadeError.invalid(f + " must be a list of strings");
            out.add(e.asText());
        }
        return out;
    }
}
