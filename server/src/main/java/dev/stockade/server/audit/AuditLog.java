package dev.stockade.server.audit;

import dev.stockade.server.store.Store;
import dev.stockade.server.store.StoreException;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Types;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The append-only audit log in the {@link Store}: each entry is committed before the request that
 * made it is done (durable against a crash of the server); the table's triggers refuse updates and
 * deletes. Reads page forward by sequence number.
 */
public final class AuditLog {
    private static final Logger LOG = Logger.getLogger(AuditLog.class.getName());
    private static final int FIELD_MAX = 512;

    private final Store store;

    public AuditLog(Store store) {
        this.store = store;
    }

    /** Appends an entry. A store failure is logged, never thrown into the request it describes. */
    public void append(AuditEntry e) {
        try {
            store.log(c -> {
                try (PreparedStatement s = c.prepareStatement("INSERT INTO audit(time_ms, tenant, key_id, via, remote,"
                        + " action, sandbox, target, status, outcome, detail, duration_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)")) {
                    s.setLong(1, e.time().toEpochMilli());
                    text(s, 2, e.tenant());
                    text(s, 3, e.keyId());
                    s.setString(4, cut(e.via()));
                    text(s, 5, e.remote());
                    s.setString(6, cut(e.action()));
                    text(s, 7, e.sandbox());
                    text(s, 8, e.target());
                    s.setInt(9, e.status());
                    s.setString(10, cut(e.outcome()));
                    text(s, 11, e.detail());
                    s.setLong(12, e.durationMs());
                    s.executeUpdate();
                }
                return null;
            });
        } catch (StoreException ex) {
            LOG.log(Level.SEVERE, "the audit log could not record " + e.action() + " by " + e.tenant() + "/" + e.keyId(), ex);
        }
    }

    /** What to read: all fields optional (null); entries with seq greater than {@code after}, oldest first. */
    public record Query(String tenant, String sandbox, String action, long after, int limit) {}

    public List<AuditEntry> read(Query q) {
        StringBuilder sql = new StringBuilder("SELECT seq, time_ms, tenant, key_id, via, remote, action, sandbox, target,"
                + " status, outcome, detail, duration_ms FROM audit WHERE seq > ?");
        List<String> args = new ArrayList<>();
        if (q.tenant() != null) { sql.append(" AND tenant = ?"); args.add(q.tenant()); }
        if (q.sandbox() != null) { sql.append(" AND sandbox = ?"); args.add(q.sandbox()); }
        if (q.action() != null) { sql.append(" AND action = ?"); args.add(q.action()); }
        sql.append(" ORDER BY seq LIMIT ?");
        return store.read(c -> {
            List<AuditEntry> out = new ArrayList<>();
            try (PreparedStatement s = c.prepareStatement(sql.toString())) {
                int i = 1;
                s.setLong(i++, q.after());
                for (String a : args) s.setString(i++, a);
                s.setInt(i, q.limit());
                try (ResultSet rs = s.executeQuery()) {
                    while (rs.next()) {
                        out.add(new AuditEntry(rs.getLong(1), Instant.ofEpochMilli(rs.getLong(2)), rs.getString(3),
                                rs.getString(4), rs.getString(5), rs.getString(6), rs.getString(7), rs.getString(8),
                                rs.getString(9), rs.getInt(10), rs.getString(11), rs.getString(12), rs.getLong(13)));
                    }
                }
            }
            return out;
        });
    }

    private static void text(PreparedStatement s, int i, String v) throws java.sql.SQLException {
        if (v == null) s.setNull(i, Types.VARCHAR); else s.setString(i, cut(v));
    }

    private static String cut(String v) {
        return v.length() <= FIELD_MAX ? v : v.substring(0, FIELD_MAX) + "…";
    }
}
