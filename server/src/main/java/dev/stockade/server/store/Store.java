package dev.stockade.server.store;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.concurrent.locks.ReentrantLock;
import org.sqlite.SQLiteConfig;

/**
 * The server's embedded store: one SQLite database, DATA/stockade.db (0600), in WAL mode so readers
 * never wait for the writer and a killed process loses nothing it committed. Other processes (the
 * CLI's {@code keys} and {@code tenants} commands) may open the same file while the server runs;
 * SQLite's own locking orders them, and the server reads keys from the file on every request, so
 * what the CLI changes holds at once.
 *
 * <p>Two connections, each used by one thread at a time (held under its lock):
 * {@link #critical()} commits with {@code synchronous=FULL} (tenants and keys: a revocation must
 * survive a power cut); {@link #log()} with {@code synchronous=NORMAL} (the audit log: durable
 * against a crash of the server, cheap enough for every request). A {@link #transaction} takes the
 * database's write lock when it begins ({@code BEGIN IMMEDIATE}), so a read-then-write transaction
 * never loses a race with the other connection's writes (issue 15: a revocation must never fail).
 */
public final class Store implements AutoCloseable {
    /** The file name inside the data directory. */
    public static final String FILE = "stockade.db";
    private static final int SCHEMA_VERSION = 3;

    private final Path file;
    private final Connection critical;
    private final Connection log;
    private final ReentrantLock criticalLock = new ReentrantLock();
    private final ReentrantLock logLock = new ReentrantLock();

    private final Sealer sealer;

    private Store(Path file, Connection critical, Connection log, Sealer sealer) {
        this.file = file;
        this.critical = critical;
        this.log = log;
        this.sealer = sealer;
    }

    /** Seals values no copy of the database may reveal (the key is DATA/store.key, not in the database). */
    public Sealer sealer() {
        return sealer;
    }

    /** Opens (creating if needed) the store of a data directory and brings its schema up to date. */
    public static Store open(Path dataDir) {
        try {
            Files.createDirectories(dataDir);
            Path file = dataDir.resolve(FILE);
            // The JDBC driver unpacks its native library; keep it in the data directory, not /tmp.
            Path lib = dataDir.resolve("lib");
            Files.createDirectories(lib);
            System.setProperty("org.sqlite.tmpdir", lib.toString());
            if (!Files.exists(file)) {
                Files.createFile(file, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            }
            Sealer sealer = Sealer.loadOrCreate(dataDir);
            Connection critical = connect(file, "FULL");
            Connection log;
            try {
                migrate(critical);
                log = connect(file, "NORMAL");
            } catch (SQLException | RuntimeException e) {
                critical.close();
                throw e;
            }
            return new Store(file, critical, log, sealer);
        } catch (IOException e) {
            throw new UncheckedIOException("opening the store in " + dataDir + " failed: " + e.getMessage(), e);
        } catch (SQLException e) {
            throw new StoreException("opening the store in " + dataDir + " failed: " + e.getMessage(), e);
        }
    }

    private static Connection connect(Path file, String synchronous) throws SQLException {
        // Transactions begin IMMEDIATE: they take the write lock first (waiting busy_timeout for it)
        // instead of reading a snapshot first and failing with SQLITE_BUSY_SNAPSHOT when another
        // connection (the audit log's, a CLI's) wrote meanwhile; busy_timeout cannot retry that.
        SQLiteConfig config = new SQLiteConfig();
        config.setTransactionMode(SQLiteConfig.TransactionMode.IMMEDIATE);
        Connection c = DriverManager.getConnection("jdbc:sqlite:" + file, config.toProperties());
        try (Statement s = c.createStatement()) {
            s.execute("PRAGMA journal_mode=WAL");
            s.execute("PRAGMA synchronous=" + synchronous);
            s.execute("PRAGMA busy_timeout=5000");
            s.execute("PRAGMA foreign_keys=ON");
        } catch (SQLException e) {
            c.close();
            throw e;
        }
        return c;
    }

    private static void migrate(Connection c) throws SQLException {
        try (Statement s = c.createStatement()) {
            int version;
            try (var rs = s.executeQuery("PRAGMA user_version")) {
                version = rs.next() ? rs.getInt(1) : 0;
            }
            if (version > SCHEMA_VERSION) {
                throw new StoreException("the store's schema is version " + version + ", newer than this server's ("
                        + SCHEMA_VERSION + "): run the newer server, or restore a backup of the data directory", null);
            }
            if (version == SCHEMA_VERSION) return;
            c.setAutoCommit(false);
            try {
                if (version < 1) createVersion1(s);
                if (version < 2) {
                    // The sandboxes a server runs, so that the next one takes them over (issue 6).
                    s.execute("""
                            CREATE TABLE sandboxes (
                              id TEXT PRIMARY KEY,
                              tenant TEXT NOT NULL,
                              spec TEXT NOT NULL,
                              token TEXT NOT NULL,
                              slot INTEGER NOT NULL,
                              started_ms INTEGER NOT NULL,
                              end_ms INTEGER NOT NULL,
                              paused_left_ms INTEGER)""");
                }
                if (version < 3) {
                    // Snapshots: a sandbox's files, kept under DATA/snapshots/ID for new sandboxes (issue 6).
                    s.execute("""
                            CREATE TABLE snapshots (
                              id TEXT PRIMARY KEY,
                              tenant TEXT NOT NULL,
                              name TEXT,
                              source TEXT NOT NULL,
                              created_ms INTEGER NOT NULL,
                              bytes INTEGER NOT NULL,
                              UNIQUE (tenant, name))""");
                }
                s.execute("PRAGMA user_version=" + SCHEMA_VERSION);
                c.commit();
            } catch (SQLException | RuntimeException e) {
                c.rollback();
                throw e;
            } finally {
                c.setAutoCommit(true);
            }
        }
    }

    private static void createVersion1(Statement s) throws SQLException {
        s.execute("""
                CREATE TABLE tenants (
                  name TEXT PRIMARY KEY,
                  created_ms INTEGER NOT NULL,
                  quota TEXT NOT NULL)""");
        s.execute("""
                CREATE TABLE api_keys (
                  id TEXT PRIMARY KEY,
                  tenant TEXT NOT NULL REFERENCES tenants(name),
                  hash TEXT NOT NULL UNIQUE,
                  admin INTEGER NOT NULL,
                  label TEXT NOT NULL,
                  created_ms INTEGER NOT NULL,
                  revoked_ms INTEGER)""");
        s.execute("""
                CREATE TABLE audit (
                  seq INTEGER PRIMARY KEY AUTOINCREMENT,
                  time_ms INTEGER NOT NULL,
                  tenant TEXT,
                  key_id TEXT,
                  via TEXT NOT NULL,
                  remote TEXT,
                  action TEXT NOT NULL,
                  sandbox TEXT,
                  target TEXT,
                  status INTEGER NOT NULL,
                  outcome TEXT NOT NULL,
                  detail TEXT,
                  duration_ms INTEGER NOT NULL)""");
        s.execute("CREATE INDEX audit_tenant ON audit(tenant, seq)");
        s.execute("CREATE INDEX audit_sandbox ON audit(sandbox, seq)");
        // Append-only, whoever holds the file open through SQLite: rows are never changed or removed.
        s.execute("CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END");
        s.execute("CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END");
    }

    /** Work on a connection, under its lock; SQL failures become {@link StoreException}. */
    @FunctionalInterface
    public interface Work<T> {
        T run(Connection c) throws SQLException;
    }

    /** Tenants and keys: every commit reaches the disk before it returns. */
    public <T> T critical(Work<T> work) {
        return with(critical, criticalLock, work);
    }

    /** The audit log: commits survive a crash of the server (not of the machine). */
    public <T> T log(Work<T> work) {
        return with(log, logLock, work);
    }

    /** Runs work in one transaction on the critical connection. */
    public <T> T transaction(Work<T> work) {
        return critical(c -> {
            c.setAutoCommit(false);
            try {
                T result = work.run(c);
                c.commit();
                return result;
            } catch (SQLException | RuntimeException e) {
                c.rollback();
                throw e;
            } finally {
                c.setAutoCommit(true);
            }
        });
    }

    private <T> T with(Connection c, ReentrantLock lock, Work<T> work) {
        lock.lock();
        try {
            return work.run(c);
        } catch (SQLException e) {
            throw new StoreException("the store (" + file + ") failed: " + e.getMessage(), e);
        } finally {
            lock.unlock();
        }
    }

    public Path file() {
        return file;
    }

    @Override
    public void close() {
        for (Connection c : new Connection[] {log, critical}) {
            try {
                c.close();
            } catch (SQLException ignored) {
                // closing: nothing more to do with it
            }
        }
    }
}
