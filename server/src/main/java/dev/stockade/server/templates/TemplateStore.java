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
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * The records of E2B's Template API (issue 17) in the store (schema v4: templates, template_builds,
 * template_tags): a tenant's templates by alias, their builds and their tags. Every lookup takes
 * the tenant: another tenant's template is not found, never forbidden. Also the {@link TemplateCatalog}
 * a create resolves a built template's name through. Thread-safe (the store serialises writes);
 * called from request threads and from {@link TemplateBuilds}' build thread.
 */
public final class TemplateStore implements TemplateCatalog {
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
            Template t = first(query(c, TEMPLATE_COLUMNS + " WHERE tenant = ? AND alias = ?", TemplateStore::template, tenant, alias));
            long now = System.currentTimeMillis();
            if (t == null) {
                t = new Template(newId(), tenant, alias, now);
                update(c, "INSERT INTO templates (id, tenant, alias, created_ms) VALUES (?, ?, ?, ?)", t.id(), tenant, alias, now);
            }
            String buildId = UUID.randomUUID().toString();
            update(c, "INSERT INTO template_builds (id, template, status, tags, created_ms) VALUES (?, ?, 'waiting', ?, ?)",
                    buildId, t.id(), json(tags), now);
            return new Build(buildId, t.id(), Status.WAITING, List.copyOf(tags), null, null, null, null, now, null);
        });
    }

    /** The tenant's template of that id or alias, or null. */
    public Template find(String tenant, String idOrAlias) {
        return store.read(c -> first(query(c, TEMPLATE_COLUMNS + " WHERE tenant = ? AND (id = ? OR alias = ?)"
                + " ORDER BY id = ? DESC", TemplateStore::template, tenant, idOrAlias, idOrAlias, idOrAlias)));
    }

    /** The tenant's templates, oldest first. */
    public List<Template> list(String tenant) {
        return store.read(c -> query(c, TEMPLATE_COLUMNS + " WHERE tenant = ? ORDER BY created_ms, id", TemplateStore::template, tenant));
    }

    /** A build of the template, or null. */
    public Build build(String templateId, String buildId) {
        return store.read(c -> first(query(c, BUILD_COLUMNS + " WHERE template = ? AND id = ?", TemplateStore::build, templateId, buildId)));
    }

    /** The template's builds, newest first. */
    public List<Build> builds(String templateId) {
        return store.read(c -> query(c, BUILD_COLUMNS + " WHERE template = ? ORDER BY created_ms DESC, id", TemplateStore::build, templateId));
    }

    /** waiting → building with its start request; CONFLICT when it was started already. */
    public void start(String buildId, String request) {
        int n = store.critical(c -> update(c, "UPDATE template_builds SET status = 'building', request = ? WHERE id = ? AND status = 'waiting'",
                request, buildId));
        if (n != 1) throw new StockadeError(StockadeError.Code.CONFLICT, "build " + buildId + " was started already;"
                + " request a new build (POST /v3/templates) to build again");
    }

    /** building → ready (its config recorded and its tags pointed at it) or error (its reason), with its log. */
    public void finish(String buildId, Status status, String config, String reason, String log) {
        store.critical(c -> {
            long now = System.currentTimeMillis();
            int n = update(c, "UPDATE template_builds SET status = ?, config = ?, reason = ?, log = ?, finished_ms = ?"
                    + " WHERE id = ? AND status = 'building'", status.wire(), config, reason, log, now, buildId);
            if (n == 1 && status == Status.READY) {
                Build b = first(query(c, BUILD_COLUMNS + " WHERE id = ?", TemplateStore::build, buildId));
                for (String tag : b.tags()) tag(c, b.templateId(), tag, buildId, now);
            }
            return null; // n == 0: deleted meanwhile
        });
    }

    /** Builds a server left building when it stopped: error, with that reason. */
    public int failInterrupted(String reason) {
        return store.critical(c -> update(c, "UPDATE template_builds SET status = 'error', reason = ?, finished_ms = ?"
                + " WHERE status = 'building'", reason, System.currentTimeMillis()));
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
                if (update(c, "DELETE FROM template_tags WHERE template = ? AND tag = ?", templateId, t) != 1) {
                    throw StockadeError.notFound("the template has no tag '" + t + "'");
                }
            }
            return null;
        });
    }

    /** The template's tags, by name. */
    public List<Tag> tags(String templateId) {
        return store.read(c -> query(c, "SELECT tag, build, created_ms FROM template_tags WHERE template = ? ORDER BY tag",
                rs -> new Tag(rs.getString(1), rs.getString(2), rs.getLong(3)), templateId));
    }

    /** The build a tag names, or null. */
    public String tagged(String templateId, String tag) {
        return store.read(c -> first(query(c, "SELECT build FROM template_tags WHERE template = ? AND tag = ?",
                rs -> rs.getString(1), templateId, tag)));
    }

    /** Deletes the tenant's template with its builds and tags; false when it has none of that id. */
    public boolean delete(String tenant, String id) {
        return store.critical(c -> update(c, "DELETE FROM templates WHERE tenant = ? AND id = ?", tenant, id) == 1);
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
        update(c, "INSERT INTO template_tags (template, tag, build, created_ms) VALUES (?, ?, ?, ?)"
                + " ON CONFLICT (template, tag) DO UPDATE SET build = excluded.build, created_ms = excluded.created_ms",
                template, tag, build, now);
    }

    private static final String TEMPLATE_COLUMNS = "SELECT id, tenant, alias, created_ms FROM templates";
    private static final String BUILD_COLUMNS = "SELECT id, template, status, tags, request, config, reason, log, created_ms,"
            + " finished_ms FROM template_builds";

    /** One row's value. */
    @FunctionalInterface
    private interface RowReader<T> {
        T read(ResultSet rs) throws SQLException;
    }

    private static <T> List<T> query(Connection c, String sql, RowReader<T> reader, Object... params) throws SQLException {
        try (PreparedStatement ps = bind(c.prepareStatement(sql), params); ResultSet rs = ps.executeQuery()) {
            List<T> out = new ArrayList<>();
            while (rs.next()) out.add(reader.read(rs));
            return out;
        }
    }

    private static int update(Connection c, String sql, Object... params) throws SQLException {
        try (PreparedStatement ps = bind(c.prepareStatement(sql), params)) {
            return ps.executeUpdate();
        }
    }

    private static PreparedStatement bind(PreparedStatement ps, Object... params) throws SQLException {
        try {
            for (int i = 0; i < params.length; i++) ps.setObject(i + 1, params[i]);
            return ps;
        } catch (SQLException e) {
            ps.close();
            throw e;
        }
    }

    private static <T> T first(List<T> rows) {
        return rows.isEmpty() ? null : rows.getFirst();
    }

    private static Build build(ResultSet rs) throws SQLException {
        long created = rs.getLong(9);
        long finished = rs.getLong(10);
        Long finishedMs = rs.wasNull() ? null : finished;
        return new Build(rs.getString(1), rs.getString(2), Status.valueOf(rs.getString(3).toUpperCase(java.util.Locale.ROOT)),
                strings(rs.getString(4)), rs.getString(5), rs.getString(6), rs.getString(7), rs.getString(8), created, finishedMs);
    }

    private static Template template(ResultSet rs) throws SQLException {
        return new Template(rs.getString(1), rs.getString(2), rs.getString(3), rs.getLong(4));
    }

    /** E2B's template ids: 20 of a-z0-9. */
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
