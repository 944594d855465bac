package dev.stockade.server.core;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.runtime.Limits;
import dev.stockade.server.egress.NetworkPolicy;
import dev.stockade.server.egress.SecretBinding;
import dev.stockade.server.store.Store;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The sandboxes this server runs, in the {@link Store} (table {@code sandboxes}), so that a server
 * started after a crash takes them over instead of losing them. A row is written when a sandbox
 * becomes visible to its owner and before the create answers, changed with its deadline, pause state
 * and network policy, and removed when the sandbox ends. Rows are put and removed with the store's
 * durable commits: an acknowledged create is on disk. Changes commit as the audit log does
 * ({@link Store#log}: to the WAL, durable against a crash of the server, not of the machine):
 * what they record, a deadline, a pause or a policy, dies with the sandbox's processes in a crash of
 * the machine anyway, and a disk flush per pause/resume cost about 1 ms here once the freezer was
 * written directly (issue 16). Recovery takes the runtime's word for paused or not.
 *
 * <p>What a row holds is what the server needs to serve the sandbox again: owner, token, template,
 * limits, metadata, environment, network policy, secret bindings with their values (the proxy must
 * keep substituting them), uid slot, start and end times, and the time left when paused. The spec
 * and the token are sealed ({@link dev.stockade.server.store.Sealer}, the key outside the database):
 * environment variables, header rules and secrets are often credentials, and no copy of the database
 * may reveal them.
 */
final class SandboxRegistry {
    private final Store store;
    private final ObjectMapper json = new ObjectMapper();

    SandboxRegistry(Store store) {
        this.store = store;
    }

    /** One recorded sandbox, as a restarted server reads it back. */
    record Row(Sandbox.Facts facts, String tenant, int slot, Instant endAt, Duration pausedLeft, NetworkPolicy network) {
        String id() {
            return facts.id();
        }
    }

    void put(Sandbox sb) {
        if (store == null) return;
        int slot = sb.facts().slot();
        String spec = spec(sb);
        store.critical(c -> {
            try (PreparedStatement s = c.prepareStatement("INSERT OR REPLACE INTO sandboxes(id, tenant, spec, token, slot,"
                    + " started_ms, end_ms, paused_left_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")) {
                s.setString(1, sb.id());
                s.setString(2, sb.tenant());
                s.setString(3, spec);
                s.setString(4, store.sealer().seal(sb.accessToken()));
                s.setInt(5, slot);
                s.setLong(6, sb.startedAt().toEpochMilli());
                s.setLong(7, sb.endAt().toEpochMilli());
                pausedLeft(s, 8, sb);
                s.executeUpdate();
            }
            return null;
        });
    }

    /** The deadline, the pause state and the network policy changed (no disk flush: see the class comment). */
    void update(Sandbox sb) {
        if (store == null) return;
        String spec = spec(sb);
        store.log(c -> {
            try (PreparedStatement s = c.prepareStatement("UPDATE sandboxes SET spec=?, end_ms=?, paused_left_ms=? WHERE id=?")) {
                s.setString(1, spec);
                s.setLong(2, sb.endAt().toEpochMilli());
                pausedLeft(s, 3, sb);
                s.setString(4, sb.id());
                s.executeUpdate();
            }
            return null;
        });
    }

    void remove(String id) {
        if (store == null) return;
        store.critical(c -> {
            try (PreparedStatement s = c.prepareStatement("DELETE FROM sandboxes WHERE id=?")) {
                s.setString(1, id);
                s.executeUpdate();
            }
            return null;
        });
    }

    /** Every recorded sandbox; rows that cannot be read are returned as ids in {@code unreadable}. */
    List<Row> load(List<String> unreadable) {
        if (store == null) return List.of();
        return store.read(c -> {
            List<Row> out = new ArrayList<>();
            try (PreparedStatement s = c.prepareStatement("SELECT id, tenant, spec, token, slot, started_ms, end_ms,"
                    + " paused_left_ms FROM sandboxes ORDER BY started_ms");
                 ResultSet rs = s.executeQuery()) {
                while (rs.next()) {
                    String id = rs.getString(1);
                    try {
                        long left = rs.getLong(8);
                        Duration pausedLeft = rs.wasNull() ? null : Duration.ofMillis(left);
                        out.add(row(id, rs.getString(2), json.readTree(open(rs.getString(3))), open(rs.getString(4)),
                                rs.getInt(5), Instant.ofEpochMilli(rs.getLong(6)), Instant.ofEpochMilli(rs.getLong(7)), pausedLeft));
                    } catch (JsonProcessingException | RuntimeException e) {
                        unreadable.add(id);
                    }
                }
            }
            return out;
        });
    }

    private static void pausedLeft(PreparedStatement s, int i, Sandbox sb) throws SQLException {
        if (sb.state() instanceof SandboxState.Paused p) s.setLong(i, p.remaining().toMillis());
        else s.setNull(i, Types.INTEGER);
    }

    private String open(String sealed) {
        return store.sealer().open(sealed);
    }

    /** The row's spec, sealed: environment variables, header rules and secrets are often credentials. */
    private String spec(Sandbox sb) {
        return store.sealer().seal(plainSpec(sb));
    }

    private String plainSpec(Sandbox sb) {
        ObjectNode n = json.createObjectNode();
        n.put("templateId", sb.templateId());
        n.put("alias", sb.alias());
        n.put("runtime", sb.runtime());
        n.put("uidBase", sb.uidBase());
        n.put("autoPause", sb.autoPause());
        n.put("idleTimeoutSeconds", sb.idleTimeoutSeconds());
        if (sb.seededFrom() != null) n.put("seededFrom", sb.seededFrom());
        if (sb.defaultUser() != null) n.put("defaultUser", sb.defaultUser());
        Limits l = sb.limits();
        ObjectNode limits = n.putObject("limits");
        limits.put("memoryMB", l.memoryMB());
        limits.put("cpus", l.cpus());
        limits.put("pids", l.pids());
        limits.put("diskMB", l.diskMB());
        limits.put("outputMB", l.outputMB());
        limits.put("commandTimeoutSeconds", l.commandTimeoutSeconds());
        sb.metadata().forEach(n.putObject("metadata")::put);
        sb.processEnv().forEach(n.putObject("processEnv")::put);
        ArrayNode secrets = n.putArray("secrets");
        for (SecretBinding b : sb.secretBindings()) {
            ObjectNode o = secrets.addObject();
            o.put("name", b.name());
            o.put("placeholder", b.placeholder());
            o.put("value", b.value());
            b.hosts().forEach(o.putArray("hosts")::add);
        }
        NetworkPolicy p = sb.egress() == null ? NetworkPolicy.none() : sb.egress().policy();
        ObjectNode net = n.putObject("network");
        net.put("mode", p.mode().name());
        p.allow().forEach(net.putArray("allow")::add);
        p.deny().forEach(net.putArray("deny")::add);
        ObjectNode rules = net.putObject("headerRules");
        p.headerRules().forEach((host, headers) -> headers.forEach(rules.with(host)::put));
        if (p.downgrade() != null) {
            ObjectNode d = net.putObject("downgrade");
            d.put("requested", p.downgrade().requested().name());
            d.put("askedThrough", p.downgrade().askedThrough());
            d.put("reason", p.downgrade().reason());
        }
        return n.toString();
    }

    private static Row row(String id, String tenant, JsonNode n, String token, int slot, Instant started, Instant end,
                           Duration pausedLeft) {
        JsonNode l = n.get("limits");
        Limits limits = new Limits(l.get("memoryMB").asInt(), l.get("cpus").asDouble(), l.get("pids").asInt(),
                l.get("diskMB").asInt(), l.get("outputMB").asInt(), l.get("commandTimeoutSeconds").asInt());
        List<SecretBinding> secrets = new ArrayList<>();
        for (JsonNode s : n.path("secrets")) {
            List<String> hosts = new ArrayList<>();
            s.path("hosts").forEach(h -> hosts.add(h.asText()));
            secrets.add(new SecretBinding(s.get("name").asText(), s.get("placeholder").asText(), s.get("value").asText(), hosts));
        }
        JsonNode net = n.get("network");
        Map<String, Map<String, String>> rules = new LinkedHashMap<>();
        net.path("headerRules").fields().forEachRemaining(e -> {
            Map<String, String> headers = new LinkedHashMap<>();
            e.getValue().fields().forEachRemaining(h -> headers.put(h.getKey(), h.getValue().asText()));
            rules.put(e.getKey(), headers);
        });
        NetworkPolicy network = NetworkPolicy.of(NetworkPolicy.Mode.valueOf(net.get("mode").asText()), texts(net.path("allow")),
                texts(net.path("deny")), rules);
        JsonNode d = net.get("downgrade");
        if (d != null) {
            network = network.downgradedFrom(new NetworkPolicy.Downgrade(NetworkPolicy.Mode.valueOf(d.get("requested").asText()),
                    d.get("askedThrough").asText(), d.get("reason").asText()));
        }
        var facts = new Sandbox.Facts(id, n.get("templateId").asText(), n.get("alias").asText(), n.get("runtime").asText(),
                strings(n.path("metadata")), strings(n.path("processEnv")), secrets, limits, started, token,
                n.get("uidBase").asLong(), n.path("autoPause").asBoolean(), n.path("idleTimeoutSeconds").asInt(0),
                n.hasNonNull("seededFrom") ? n.get("seededFrom").asText() : null,
                n.hasNonNull("defaultUser") ? n.get("defaultUser").asText() : null);
        return new Row(facts, tenant, slot, end, pausedLeft, network);
    }

    private static List<String> texts(JsonNode a) {
        List<String> out = new ArrayList<>();
        a.forEach(x -> out.add(x.asText()));
        return out;
    }

    private static Map<String, String> strings(JsonNode o) {
        Map<String, String> out = new LinkedHashMap<>();
        o.fields().forEachRemaining(e -> out.put(e.getKey(), e.getValue().asText()));
        return out;
    }
}
