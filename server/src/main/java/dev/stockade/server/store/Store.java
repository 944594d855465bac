package dev.stockade.server.store;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantLock;
import org.sqlite.SQLiteConfig;

/**
 * The server's embedded store: one SQLite database, DATA/stockade.db (0600), in WAL mode so readers
 * never wait for the writer and a killed process loses nothing it committed. Other processes (the
 * CLI's {@code keys} and {@code tenants} commands) may open the same file while the server runs;
 * SQLite's own locking orders them, and the server reads keys from the file on every request, so
 * what the CLI changes holds at once.
 *
 * <p>Two connections. Writes ({@link #critical}, {@link #log}, {@link #transaction}) go to one
 * writer connection by <em>group commit</em>: a caller queues its work and takes the write lock; the
 * holder runs every queued work, each in a savepoint of one transaction (one failing work rolls back
 * alone), commits once and hands each caller its own result. A batch holding any critical work
 * commits with {@code synchronous=FULL} (tenants, keys, the sandboxes a create acknowledged: the
 * commit reaches the disk before it returns), one of audit entries only with {@code NORMAL} (durable
 * against a crash of the server, not of the machine). Reads ({@link #read}) go to a second,
 * query-only connection and never wait for a disk flush.
 *
 * <p>Why (issue 16): a burst of 100 creates through a full pool answered in 0.85 s (quiet host) to
 * 1.2 s (loaded) median, and the store was where it waited: one flush per create, every request's key lookup queued behind those
 * flushes on the same connection, and the audit connection and the critical one meeting at
 * SQLite's write lock, whose busy handler sleeps 1, 2, 5 ... 100 ms (one create waited 883 ms).
 * One writer never meets itself at that lock, and a batch pays one flush for all it holds.
 *
 * <p>Thread-safety: every method may be called from any thread. A {@link Work} runs on the calling
 * thread or on the thread of another caller that commits its batch; it must not block on anything
 * but the database, and a work given to {@link #read} must not write.
 */
public final class Store implements AutoCloseable {
    /** The file name inside the data directory. */
    public static final String FILE = "stockade.db";
    private static final int SCHEMA_VERSION = 4;

    private final Path file;
    private final Connection writer;
    private final Connection reader;
    private final ReentrantLock writeLock = new ReentrantLock();
    private final ReentrantLock readLock = new ReentrantLock();
    /** Works waiting for the next batch, in arrival order; guarded by itself. */
    private final ArrayDeque<Pending<?>> queued = new ArrayDeque<>();
    /** Batches committed or failed so far (guarded by the write lock; read by tests to see works grouped). */
    private long batches;
    /** The writer's synchronous setting now (only the write lock's holder reads or changes it). */
    private String synchronous = "FULL";

    private final Sealer sealer;

    private Store(Path file, Connection writer, Connection reader, Sealer sealer) {
        this.file = file;
        this.writer = writer;
        this.reader = reader;
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
            Connection writer = connect(file, "FULL");
            Connection reader;
            try {
                migrate(writer);
                reader = connect(file, "NORMAL");
                try (Statement st = reader.createStatement()) {
                    st.execute("PRAGMA query_only=1");
                }
            } catch (SQLException | RuntimeException e) {
                writer.close();
                throw e;
            }
            return new Store(file, writer, reader, sealer);
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
                if (version < 4) createVersion4(s);
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

    /**
     * Templates built through E2B's Template API (issue 17): a tenant's template under an alias, its
     * builds (the start request, the resulting config, why it failed, its log) and its tags (a tag
     * names one ready build; {@code default} is what an alias without a tag means).
     */
    private static void createVersion4(Statement s) throws SQLException {
        s.execute("""
                CREATE TABLE templates (
                  id TEXT PRIMARY KEY,
                  tenant TEXT NOT NULL,
                  alias TEXT NOT NULL,
                  created_ms INTEGER NOT NULL,
                  UNIQUE (tenant, alias))""");
        s.execute("""
                CREATE TABLE template_builds (
                  id TEXT PRIMARY KEY,
                  template TEXT NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
                  status TEXT NOT NULL CHECK (status IN ('waiting', 'building', 'ready', 'error')),
                  tags TEXT NOT NULL,
                  request TEXT,
                  config TEXT,
                  reason TEXT,
                  log TEXT,
                  created_ms INTEGER NOT NULL,
                  finished_ms INTEGER)""");
        s.execute("CREATE INDEX template_builds_template ON template_builds(template, created_ms)");
        s.execute("""
                CREATE TABLE template_tags (
                  template TEXT NOT NULL REFERENCES templates(id) ON DELETE CASCADE,
                  tag TEXT NOT NULL,
                  build TEXT NOT NULL REFERENCES template_builds(id) ON DELETE CASCADE,
                  created_ms INTEGER NOT NULL,
                  PRIMARY KEY (template, tag))""");
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

    /** Writes (and reads that must see them in the same transaction): committed to the disk before it returns. */
    public <T> T critical(Work<T> work) {
        return write(work, true);
    }

    /** The audit log's writes: committed before it returns, durable against a crash of the server (not of the machine). */
    public <T> T log(Work<T> work) {
        return write(work, false);
    }

    /**
     * Runs work in one transaction, as {@link #critical} does every work: a read-then-write sees no
     * other writer in between (the batch holds the database's write lock from its start).
     */
    public <T> T transaction(Work<T> work) {
        return write(work, true);
    }

    /** Reads committed data, on the query-only connection: never waits for a write's disk flush. */
    public <T> T read(Work<T> work) {
        readLock.lock();
        try {
            return work.run(reader);
        } catch (SQLException e) {
            throw failed(e);
        } finally {
            readLock.unlock();
        }
    }

    /** One caller's work in a batch, and what came of it. */
    private static final class Pending<T> {
        final Work<T> work;
        final boolean durable;
        boolean done; // guarded by the write lock (set and read under it)
        T result;
        Throwable failure;

        Pending(Work<T> work, boolean durable) {
            this.work = work;
            this.durable = durable;
        }

        void run(Connection c) throws SQLException {
            Savepoint sp = c.setSavepoint();
            try {
                result = work.run(c);
                c.releaseSavepoint(sp);
            } catch (SQLException | RuntimeException e) {
                c.rollback(sp);
                c.releaseSavepoint(sp);
                failure = e;
            }
        }
    }

    private <T> T write(Work<T> work, boolean durable) {
        if (writeLock.isHeldByCurrentThread()) {
            // A work that writes again from inside a batch: part of that batch's transaction.
            try {
                return work.run(writer);
            } catch (SQLException e) {
                throw failed(e);
            }
        }
        Pending<T> mine = new Pending<>(work, durable);
        synchronized (queued) {
            queued.add(mine);
        }
        writeLock.lock();
        try {
            // While we waited for the lock, its holder may have committed our work with its own.
            if (!mine.done) commitQueued();
        } finally {
            writeLock.unlock();
        }
        Throwable f = mine.failure;
        if (f == null) return mine.result;
        if (f instanceof SQLException e) throw failed(e);
        if (f instanceof RuntimeException e) throw e;
        throw (Error) f;
    }

    /** Under the write lock: every queued work in one transaction, one commit (one flush if any is durable). */
    private void commitQueued() {
        List<Pending<?>> batch;
        synchronized (queued) {
            batch = new ArrayList<>(queued);
            queued.clear();
        }
        boolean durable = batch.stream().anyMatch(p -> p.durable);
        try {
            String wanted = durable ? "FULL" : "NORMAL";
            if (!wanted.equals(synchronous)) {
                try (Statement st = writer.createStatement()) {
                    st.execute("PRAGMA synchronous=" + wanted);
                }
                synchronous = wanted;
            }
            writer.setAutoCommit(false); // the next statement begins IMMEDIATE: the write lock first
            try {
                for (Pending<?> p : batch) p.run(writer);
                writer.commit();
            } catch (Throwable e) {
                try {
                    writer.rollback();
                } catch (SQLException suppressed) {
                    e.addSuppressed(suppressed);
                }
                throw e;
            } finally {
                writer.setAutoCommit(true);
            }
        } catch (SQLException | RuntimeException | Error e) {
            // The transaction did not commit: nothing of the batch holds, whatever its works returned.
            for (Pending<?> p : batch) {
                p.failure = e;
                p.result = null;
            }
        } finally {
            for (Pending<?> p : batch) p.done = true;
            batches++;
        }
    }

    /** Works waiting for the write lock now; package-private for the tests. */
    int queued() {
        synchronized (queued) {
            return queued.size();
        }
    }

    /** How many batches the writer has run (each one transaction); package-private for the tests. */
    long batches() {
        writeLock.lock();
        try {
            return batches;
        } finally {
            writeLock.unlock();
        }
    }

    private StoreException failed(SQLException e) {
        return new StoreException("the store (" + file + ") failed: " + e.getMessage(), e);
    }

    public Path file() {
        return file;
    }

    @Override
    public void close() {
        for (Connection c : new Connection[] {reader, writer}) {
            try {
                c.close();
            } catch (SQLException ignored) {
                // closing: nothing more to do with it
            }
        }
    }
}
