package dev.stockade.server.core;

import dev.stockade.server.error.HostFailure;
import dev.stockade.server.error.StockadeError;

import dev.stockade.runtime.Capabilities;
import dev.stockade.runtime.RuntimeFailure;
import dev.stockade.runtime.SandboxRuntime;
import dev.stockade.server.store.Store;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * Snapshots (E2B's createSnapshot): a sandbox's files — what it changed on top of its template,
 * deletions included — kept under DATA/snapshots/ID and recorded in the store, owned by a tenant.
 * Creating a sandbox with a snapshot's id or name as its template starts it with those files
 * (a fork). Memory and processes are not kept: a snapshot is the filesystem only, and every
 * answer says so.
 */
public final class Snapshots {
    public static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,62}");
    private static final Pattern ID = Pattern.compile("snap-[a-z0-9]{20}");

    private final Store store;
    private final Path dir;
    private final SecureRandom random = new SecureRandom();

    /** One snapshot as the API shows it. */
    public record Snapshot(String id, String tenant, String name, String source, Instant created, long bytes) {}

    Snapshots(Store store, Path dir) {
        this.store = store;
        this.dir = dir;
        try {
            Files.createDirectories(dir);
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
        } catch (IOException e) {
            throw new UncheckedIOException("preparing " + dir + " failed: " + e.getMessage(), e);
        }
        removeUnrecorded();
    }

    boolean enabled() {
        return store != null;
    }

    /** A new id and the directory the runtime copies into (it must not exist yet). */
    String newId() {
        String alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        StringBuilder b = new StringBuilder("snap-");
        for (int i = 0; i < 20; i++) b.append(alphabet.charAt(random.nextInt(alphabet.length())));
        return b.toString();
    }

    Path filesOf(String id) {
        return dir.resolve(id);
    }

    void checkName(String tenant, String name) {
        if (name == null) return;
        if (!NAME.matcher(name).matches()) {
            throw StockadeError.invalid("a snapshot name is 1 to 63 characters of letters, digits, '_', '.' and '-',"
                    + " starting with a letter or digit; got '" + name + "'");
        }
        if (CreatePolicy.DEFAULT_TEMPLATE_NAMES.contains(name) || name.endsWith("-hardened") || ID.matcher(name).matches()) {
            throw StockadeError.invalid("snapshot name '" + name + "' is a template's name, ends with -hardened or looks like a"
                    + " snapshot id: choose another");
        }
        if (find(tenant, name) != null) {
            throw new StockadeError(StockadeError.Code.CONFLICT, "tenant " + tenant + " already has a snapshot named " + name);
        }
    }

    /**
     * Snapshots a sandbox's files (E2B's createSnapshot): the sandbox is frozen for the copy and goes
     * on afterwards (a paused one stays paused). The filesystem only: memory and processes are not
     * kept. With {@code memory}: a snapshot that would also hold them, which needs a runtime with the
     * memory-snapshot capability (none offers it yet: a 400 naming it). Runs on the request's thread.
     */
    Snapshot take(Sandbox sb, SandboxRuntime runtime, String tenant, String name, boolean memory) {
        String id = sb.id();
        CreatePolicy.requireCapability(runtime.name(), runtime.capabilities(), Capabilities.SNAPSHOT, "snapshot sandboxes");
        if (memory) {
            CreatePolicy.requireCapability(runtime.name(), runtime.capabilities(), Capabilities.MEMORY_SNAPSHOT,
                    "keep a sandbox's memory and processes in a snapshot (memory: true); a snapshot of its files works without it");
            throw StockadeError.invalid("this server takes no memory snapshots yet (runtime " + runtime.name() + ")");
        }
        String snapId = newId();
        long bytes;
        boolean freeze;
        // The copy runs outside the sandbox's lock (it may take minutes): the reaper and other
        // calls are not held up; the reaper leaves a sandbox being copied alone, and a kill meanwhile
        // makes the copy fail cleanly.
        synchronized (sb) {
            freeze = Lifecycle.allow(sb.state(), Lifecycle.Operation.SNAPSHOT, id) == Lifecycle.Effect.FREEZES_FOR_COPY;
            if (!sb.startCopy()) throw new StockadeError(StockadeError.Code.CONFLICT, "sandbox " + id + " is being snapshotted already");
            if (freeze) {
                try {
                    runtime.pause(id);
                } catch (RuntimeFailure e) {
                    sb.endCopy();
                    throw HostFailure.of(StockadeError.Code.UNAVAILABLE, "freezing sandbox " + id + " for its snapshot failed", e);
                }
            }
        }
        try {
            bytes = runtime.snapshot(id, filesOf(snapId), sb.uidBase());
        } catch (RuntimeFailure e) {
            throw HostFailure.of(StockadeError.Code.UNAVAILABLE, "snapshotting sandbox " + id + " failed", e);
        } finally {
            synchronized (sb) {
                if (freeze && sb.isRunning()) {
                    try {
                        runtime.resume(id);
                    } catch (RuntimeFailure e) {
                        java.util.logging.Logger.getLogger(Snapshots.class.getName()).log(java.util.logging.Level.WARNING,
                                "thawing sandbox " + id + " after its snapshot failed", e);
                    }
                }
                sb.endCopy();
            }
        }
        try {
            return record(snapId, tenant, name, id, bytes);
        } catch (RuntimeException e) {
            deleteFiles(snapId);
            throw e;
        }
    }

    Snapshot record(String id, String tenant, String name, String source, long bytes) {
        Snapshot s = new Snapshot(id, tenant, name, source, Instant.now().truncatedTo(java.time.temporal.ChronoUnit.MILLIS), bytes);
        if (name != null && find(tenant, name) != null) {
            throw new StockadeError(StockadeError.Code.CONFLICT, "tenant " + tenant + " already has a snapshot named " + name);
        }
        store.critical(c -> {
            try (PreparedStatement st = c.prepareStatement(
                    "INSERT INTO snapshots(id, tenant, name, source, created_ms, bytes) VALUES (?, ?, ?, ?, ?, ?)")) {
                st.setString(1, id);
                st.setString(2, tenant);
                if (name == null) st.setNull(3, Types.VARCHAR); else st.setString(3, name);
                st.setString(4, source);
                st.setLong(5, s.created().toEpochMilli());
                st.setLong(6, bytes);
                st.executeUpdate();
            } catch (SQLException e) {
                if (e.getMessage() != null && e.getMessage().contains("UNIQUE")) {
                    throw new StockadeError(StockadeError.Code.CONFLICT, "tenant " + tenant + " already has a snapshot named " + name);
                }
                throw e;
            }
            return null;
        });
        return s;
    }

    /** The tenant's snapshot with this id or name, or null (another tenant's is as unknown as a missing one). */
    public Snapshot find(String tenant, String ref) {
        if (store == null || ref == null) return null;
        return store.read(c -> {
            try (PreparedStatement st = c.prepareStatement("SELECT id, tenant, name, source, created_ms, bytes FROM snapshots"
                    + " WHERE tenant = ? AND (id = ? OR name = ?)")) {
                st.setString(1, tenant);
                st.setString(2, ref);
                st.setString(3, ref);
                try (ResultSet rs = st.executeQuery()) {
                    return rs.next() ? row(rs) : null;
                }
            }
        });
    }

    /** The tenant's snapshots, oldest first; optionally of one source sandbox or with one name. */
    public List<Snapshot> list(String tenant, String source, String name) {
        if (store == null) return List.of();
        return store.read(c -> {
            List<Snapshot> out = new ArrayList<>();
            try (PreparedStatement st = c.prepareStatement("SELECT id, tenant, name, source, created_ms, bytes FROM snapshots"
                    + " WHERE tenant = ? AND (? IS NULL OR source = ?) AND (? IS NULL OR name = ?) ORDER BY created_ms, id")) {
                st.setString(1, tenant);
                st.setString(2, source);
                st.setString(3, source);
                st.setString(4, name);
                st.setString(5, name);
                try (ResultSet rs = st.executeQuery()) {
                    while (rs.next()) out.add(row(rs));
                }
            }
            return out;
        });
    }

    /** Deletes the tenant's snapshot (its files and its record); false when it has none by that id or name. */
    public boolean delete(String tenant, String ref) {
        Snapshot s = find(tenant, ref);
        if (s == null) return false;
        store.critical(c -> {
            try (PreparedStatement st = c.prepareStatement("DELETE FROM snapshots WHERE id = ?")) {
                st.setString(1, s.id());
                st.executeUpdate();
            }
            return null;
        });
        try {
            deleteFiles(s.id());
        } catch (UncheckedIOException e) {
            // The record is gone, so is the snapshot for everyone; the next start removes the files.
            java.util.logging.Logger.getLogger(Snapshots.class.getName()).log(java.util.logging.Level.WARNING,
                    "removing the files of deleted snapshot " + s.id() + " failed", e);
        }
        return true;
    }

    void deleteFiles(String id) {
        if (!ID.matcher(id).matches()) return;
        Path d = dir.resolve(id);
        if (!Files.exists(d)) return;
        try (Stream<Path> all = Files.walk(d)) {
            for (Path p : all.sorted(Comparator.reverseOrder()).toList()) Files.deleteIfExists(p);
        } catch (IOException e) {
            throw new UncheckedIOException("removing snapshot files " + d + " failed: " + e.getMessage(), e);
        }
    }

    /** Directories of snapshots the store does not know (a crash mid-snapshot) go at start. */
    private void removeUnrecorded() {
        if (store == null) return;
        try (Stream<Path> entries = Files.list(dir)) {
            for (Path p : entries.toList()) {
                String id = p.getFileName().toString();
                boolean known = store.read(c -> {
                    try (PreparedStatement st = c.prepareStatement("SELECT 1 FROM snapshots WHERE id = ?")) {
                        st.setString(1, id);
                        try (ResultSet rs = st.executeQuery()) {
                            return rs.next();
                        }
                    }
                });
                if (!known) deleteFiles(id);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cleaning " + dir + " failed: " + e.getMessage(), e);
        }
    }

    private static Snapshot row(ResultSet rs) throws SQLException {
        return new Snapshot(rs.getString(1), rs.getString(2), rs.getString(3), rs.getString(4),
                Instant.ofEpochMilli(rs.getLong(5)), rs.getLong(6));
    }
}
