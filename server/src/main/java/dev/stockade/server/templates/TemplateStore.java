package dev.stockade.server.templates;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import dev.stockade.server.core.TemplateCatalog;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.store.Store;
import java.security.SecureRandom;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.regex.Pattern;

/**
 * The records of E2B's Template API (issue 17) in the store (schema v4: templates, template_builds,
 * template_tags): a tenant's templates by alias, their builds and their tags. Every lookup takes
 * the tenant: another tenant's template is not found, never forbidden. Also the {@link TemplateCatalog}
 * a create resolves a built template's name through. Thread-safe (the store serialises writes);
 * called from request threads and from {@link TemplateBuilds}' build thread.
 */
public final class TemplateStore implements TemplateCatalog {
    /** E2B's template ids: 20 of a-z0-9. */
    public static final Pattern ID = Pattern.compile("[a-z0-9]{20}");
    private static final String ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Store store;
    private final SecureRandom random = new SecureRandom();

    public TemplateStore(Store store) {
        this.store = store;
    }

    /** A tenant's template. */
    public record Template(String id, String tenant, String alias, long createdMs) {}

    /** Build states, as E2B's TemplateBuildStatus spells them. */
    public enum Status {
        WAITING, BUILDING, READY, ERROR;

        public String wire() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }

        public boolean terminal() {
            return this == READY || this == ERROR;
        }
    }

    /**
     * One build: its tags (assigned when it becomes ready), the start request, the config it resulted
     * in, why it failed, its log (JSON texts, null until known).
     */
    public record Build(String id, String templateId, Status status, List<String> tags, String request, String config,
                        String reason, String log, long createdMs, Long finishedMs) {}

    /** A tag naming a build. */
    public record Tag(String tag, String buildId, long createdMs) {}

    /** The template of that alias of the tenant, created if it has none; and a new waiting build of it. */
    public Build newBuild(String tenant, String alias, List<String> tags) {
        return store.transaction(c -> {
            Template t = byAlias(c, tenant, alias);
            long now = System.currentTimeMillis();
            if (t == null) {
                t = new Template(newId(), tenant, alias, now);
                try (PreparedStatement ps = c.prepareStatement("INSERT INTO templates (id, tenant, alias, created_ms) VALUES (?, ?, ?, ?)")) {
                    ps.setString(1, t.id());
                    ps.setString(2, tenant);
                    ps.setString(3, alias);
                    ps.setLong(4, now);
                    ps.executeUpdate();
                }
            }
            String buildId = UUID.randomUUID().toString();
            try (PreparedStatement ps = c.prepareStatement(
                    "INSERT INTO template_builds (id, template, status, tags, created_ms) VALUES (?, ?, 'waiting', ?, ?)")) {
                ps.setString(1, buildId);
                ps.setString(2, t.id());
                ps.setString(3, json(tags));
                ps.setLong(4, now);
                ps.executeUpdate();
            }
            return new Build(buildId, t.id(), Status.WAITING, List.copyOf(tags), null, null, null, null, now, null);
        });
    }

    /** The tenant's template of that id or alias, or null. */
    public Template find(String tenant, String idOrAlias) {
        return store.read(c -> {
            Template t = ID.matcher(idOrAlias).matches() ? byId(c, tenant, idOrAlias) : null;
            return t != null ? t : byAlias(c, tenant, idOrAlias);
        });
    }

    /** The tenant's templates, oldest first. */
    public List<Template> list(String tenant) {
        return store.read(c -> {
            List<Template> out = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT id, tenant, alias, created_ms FROM templates WHERE tenant = ? ORDER BY created_ms, id")) {
                ps.setString(1, tenant);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) out.add(template(rs));
                }
            }
            return out;
        });
    }

    /** A build of the template, or null. */
    public Build build(String templateId, String buildId) {
        return store.read(c -> {
            try (PreparedStatement ps = c.prepareStatement(BUILD_COLUMNS + " WHERE template = ? AND id = ?")) {
                ps.setString(1, templateId);
                ps.setString(2, buildId);
                try (ResultSet rs = ps.executeQuery()) {
                    return rs.next() ? build(rs) : null;
                }
            }
        });
    }

    /** The template's builds, newest first. */
    public List<Build> builds(String templateId) {
        return store.read(c -> {
            List<Build> out = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement(BUILD_COLUMNS + " WHERE template = ? ORDER BY created_ms DESC, id")) {
                ps.setString(1, templateId);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) out.add(build(rs));
                }
            }
            return out;
        });
    }

    /** waiting → building with its start request; CONFLICT when it was started already. */
    public void start(String buildId, String request) {
        int n = store.critical(c -> {
            try (PreparedStatement ps = c.prepareStatement(
                    "UPDATE template_builds SET status = 'building', request = ? WHERE id = ? AND status = 'waiting'")) {
                ps.setString(1, request);
                ps.setString(2, buildId);
                return ps.executeUpdate();
            }
        });
        if (n != 1) throw new StockadeError(StockadeError.Code.CONFLICT, "build " + buildId + " was started already;"
                + " request a new build (POST /v3/templates) to build again");
    }

    /**
     * building → ready (its config recorded and its tags pointed at it) or error (its reason), with its log.
     */
    public void finish(String buildId, Status status, String config, String reason, String log) {
        store.critical(c -> {
            long now = System.currentTimeMillis();
            try (PreparedStatement ps = c.prepareStatement("UPDATE template_builds SET status = ?, config = ?, reason = ?,"
                    + " log = ?, finished_ms = ? WHERE id = ? AND status = 'building'")) {
                ps.setString(1, status.wire());
                ps.setString(2, config);
                ps.setString(3, reason);
                ps.setString(4, log);
                ps.setLong(5, now);
                ps.setString(6, buildId);
                if (ps.executeUpdate() != 1) return null; // deleted meanwhile
            }
            if (status == Status.READY) {
                String template;
                List<String> tags;
                try (PreparedStatement ps = c.prepareStatement("SELECT template, tags FROM template_builds WHERE id = ?")) {
                    ps.setString(1, buildId);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        template = rs.getString(1);
                        tags = strings(rs.getString(2));
                    }
                }
                for (String tag : tags) tag(c, template, tag, buildId, now);
            }
            return null;
        });
    }

    /** Builds a server left building when it stopped: error, "the server restarted during the build". */
    public int failInterrupted(String reason) {
        return store.critical(c -> {
            try (PreparedStatement ps = c.prepareStatement("UPDATE template_builds SET status = 'error', reason = ?,"
                    + " finished_ms = ? WHERE status = 'building'")) {
                ps.setString(1, reason);
                ps.setLong(2, System.currentTimeMillis());
                return ps.executeUpdate();
            }
        });
    }

    /** Points tags of the template at a ready build. */
    public void assignTags(String templateId, String buildId, List<String> tags) {
        store.critical(c -> {
            long now = System.currentTimeMillis();
            for (String t : tags) tag(c, templateId, t, buildId, now);
            return null;
        });
    }

    /** Removes tags of the template; NOT_FOUND (nothing removed) when one of them is not there. */
    public void removeTags(String templateId, List<String> tags) {
        store.critical(c -> {
            for (String t : tags) {
                try (PreparedStatement ps = c.prepareStatement("DELETE FROM template_tags WHERE template = ? AND tag = ?")) {
                    ps.setString(1, templateId);
                    ps.setString(2, t);
                    if (ps.executeUpdate() != 1) throw StockadeError.notFound("the template has no tag '" + t + "'");
                }
            }
            return null;
        });
    }

    /** The template's tags, by name. */
    public List<Tag> tags(String templateId) {
        return store.read(c -> {
            List<Tag> out = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT tag, build, created_ms FROM template_tags WHERE template = ? ORDER BY tag")) {
                ps.setString(1, templateId);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) out.add(new Tag(rs.getString(1), rs.getString(2), rs.getLong(3)));
                }
            }
            return out;
        });
    }

    /** The build a tag names, or null. */
    public String tagged(String templateId, String tag) {
        return store.read(c -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT build FROM template_tags WHERE template = ? AND tag = ?")) {
                ps.setString(1, templateId);
                ps.setString(2, tag);
                try (ResultSet rs = ps.executeQuery()) {
                    return rs.next() ? rs.getString(1) : null;
                }
            }
        });
    }

    /** Deletes the tenant's template with its builds and tags; false when it has none of that id. */
    public boolean delete(String tenant, String id) {
        return store.critical(c -> {
            try (PreparedStatement ps = c.prepareStatement("DELETE FROM templates WHERE tenant = ? AND id = ?")) {
                ps.setString(1, tenant);
                ps.setString(2, id);
                return ps.executeUpdate() == 1;
            }
        });
    }

    @Override
    public Resolved resolve(String owner, String name) {
        int colon = name.indexOf(':');
        String alias = colon < 0 ? name : name.substring(0, colon);
        String tag = colon < 0 ? TemplateNames.DEFAULT_TAG : name.substring(colon + 1);
        Template t = find(owner, alias);
        if (t == null) return null;
        String buildId = tagged(t.id(), tag);
        Build b = buildId == null ? null : build(t.id(), buildId);
        if (b == null || b.status() != Status.READY || b.config() == null) return null;
        BuildConfig cfg = BuildConfig.fromJson(b.config());
        return new Resolved(t.id(), t.alias(), cfg.base(), cfg.env(), cfg.workdir(), cfg.user());
    }

    private static void tag(Connection c, String template, String tag, String build, long now) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO template_tags (template, tag, build, created_ms) VALUES (?, ?, ?, ?)"
                + " ON CONFLICT (template, tag) DO UPDATE SET build = excluded.build, created_ms = excluded.created_ms")) {
            ps.setString(1, template);
            ps.setString(2, tag);
            ps.setString(3, build);
            ps.setLong(4, now);
            ps.executeUpdate();
        }
    }

    private static final String BUILD_COLUMNS = "SELECT id, template, status, tags, request, config, reason, log, created_ms,"
            + " finished_ms FROM template_builds";

    private static Build build(ResultSet rs) throws SQLException {
        long finished = rs.getLong(10);
        return new Build(rs.getString(1), rs.getString(2), Status.valueOf(rs.getString(3).toUpperCase(java.util.Locale.ROOT)),
                strings(rs.getString(4)), rs.getString(5), rs.getString(6), rs.getString(7), rs.getString(8), rs.getLong(9),
                rs.wasNull() ? null : finished);
    }

    private static Template byId(Connection c, String tenant, String id) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT id, tenant, alias, created_ms FROM templates WHERE tenant = ? AND id = ?")) {
            ps.setString(1, tenant);
            ps.setString(2, id);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? template(rs) : null;
            }
        }
    }

    private static Template byAlias(Connection c, String tenant, String alias) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT id, tenant, alias, created_ms FROM templates WHERE tenant = ? AND alias = ?")) {
            ps.setString(1, tenant);
            ps.setString(2, alias);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? template(rs) : null;
            }
        }
    }

    private static Template template(ResultSet rs) throws SQLException {
        return new Template(rs.getString(1), rs.getString(2), rs.getString(3), rs.getLong(4));
    }

    private String newId() {
        StringBuilder b = new StringBuilder(20);
        for (int i = 0; i < 20; i++) b.append(ALPHABET.charAt(random.nextInt(ALPHABET.length())));
        return b.toString();
    }

    static String json(List<String> strings) {
        ArrayNode a = JSON.createArrayNode();
        strings.forEach(a::add);
        return a.toString();
    }

    static List<String> strings(String json) {
        try {
            List<String> out = new ArrayList<>();
            for (JsonNode n : JSON.readTree(json)) out.add(n.asText());
            return out;
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("bug: a stored tag list is not JSON: " + e.getMessage(), e);
        }
    }
}
