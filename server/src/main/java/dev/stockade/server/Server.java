package dev.stockade.server;

import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.agent.AgentScript;
import dev.stockade.server.api.RequestBounds;
import dev.stockade.server.api.Router;
import dev.stockade.server.audit.AuditLog;
import dev.stockade.server.store.Store;
import dev.stockade.server.tenancy.QuotaGate;
import dev.stockade.server.tenancy.Tenancy;
import dev.stockade.server.config.ServerConfig;
import dev.stockade.server.core.Runtimes;
import dev.stockade.server.core.SandboxManager;
import dev.stockade.server.egress.EgressProxy;
import dev.stockade.server.egress.InterceptingTls;
import dev.stockade.server.egress.ServerFetchGate;
import dev.stockade.server.egress.StockadeCa;
import dev.stockade.server.packages.PackageIndex;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.StandardOpenOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.NetworkConnectionLimit;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.GracefulHandler;
import org.eclipse.jetty.util.thread.QueuedThreadPool;

/**
 * Wires the server together: configuration → runtime (found through ServiceLoader) → template →
 * sandbox manager → HTTP router. Owns the HTTP server (Jetty 12 core: ARCHITECTURE.md "Threads" says
 * why) and the virtual-thread executor that runs every request.
 */
final class Server {
    private final ServerConfig config;
    private final org.eclipse.jetty.server.Server http;
    private final ServerConnector connector;
    private final SandboxManager manager;
    private final ExecutorService executor;
    private final String apiKey;
    private final CountDownLatch closedLatch = new CountDownLatch(1);
    private final AtomicBoolean closed = new AtomicBoolean();

    private final FileChannel lock;
    private final EgressProxy egress;
    private final PackageIndex index;

    private final Store store;
    private final dev.stockade.server.templates.Templates templates;

    private Server(ServerConfig config, org.eclipse.jetty.server.Server http, ServerConnector connector, SandboxManager manager, ExecutorService executor, String apiKey,
                   FileChannel lock, EgressProxy egress, PackageIndex index, Store store,
                   dev.stockade.server.templates.Templates templates) {
        this.store = store;
        this.templates = templates;
        this.lock = lock;
        this.egress = egress;
        this.index = index;
        this.config = config;
        this.http = http;
        this.connector = connector;
        this.manager = manager;
        this.executor = executor;
        this.apiKey = apiKey;
    }

    static Server start(ServerConfig config) {
        // Jetty (and sqlite-jdbc, when it finds it) log through SLF4J, which has no provider here: its
        // own notice of that would be the only line it prints (failures are logged through JUL).
        if (System.getProperty("slf4j.internal.verbosity") == null) System.setProperty("slf4j.internal.verbosity", "ERROR");
        FileChannel lock = null;
        SandboxManager manager = null;
        EgressProxy egress = null;
        PackageIndex index = null;
        Store store = null;
        dev.stockade.server.templates.Templates templates = null;
        org.eclipse.jetty.server.Server http = null;
        try {
            Path data = config.dataDir();
            Files.createDirectories(data);
            Files.setPosixFilePermissions(data, PosixFilePermissions.fromString("rwx--x--x"));
            dev.stockade.server.error.HostPaths.hide(data);
            lock = lockDataDir(data);
            store = Store.open(data);
            ObjectMapper json = requestJson();
            Tenancy tenancy = new Tenancy(store, json);
            String key = tenancy.bootstrap(config.apiKey() == null || config.apiKey().isBlank() ? null : config.apiKey(),
                    data.resolve(ADMIN_KEY_FILE));
            QuotaGate quotas = new QuotaGate(t -> tenancy.tenant(t).quota(), System::currentTimeMillis);
            AuditLog audit = new AuditLog(store);
            Runtimes runtimes = Runtimes.load(config.runtime(), data.resolve("runtime"));
            StockadeCa ca = StockadeCa.loadOrCreate(data.resolve("egress-ca"));
            Path agent = installAgent(data, caBundle(ca));
            Path sockets = egressSockets(data);
            index = new PackageIndex(config.packages(), ServerFetchGate.from(config.egress()));
            egress = new EgressProxy(config.egress(), List.of(index),
                    new InterceptingTls(ca, config.egress().extraTrustPem()));
            // The port is bound before any sandbox is taken over: a start that cannot listen (the
            // port taken, a typo) must fail before it touches what an earlier server left running.
            http = httpServer();
            ServerConnector connector = (ServerConnector) http.getConnectors()[0];
            connector.setHost(config.host());
            connector.setPort(config.port());
            connector.open();
            templates = dev.stockade.server.templates.Templates.open(store, data);
            manager = new SandboxManager(config, runtimes, agent, egress, sockets, store, data.resolve("snapshots"), quotas,
                    templates.store());
            ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
            http.setHandler(new GracefulHandler(new Router(executor, json, manager, tenancy, quotas, audit, index.policy(),
                    templates)));
            http.start();
            return new Server(config, http, connector, manager, executor, key, lock, egress, index, store, templates);
        } catch (Exception e) {
            // Undo in reverse, leaving the sandboxes (those taken over from an earlier run, recorded)
            // for the next start: a failed start must not destroy what it never served.
            if (http != null) {
                try {
                    http.stop();
                    // A connector opened but never started is not closed by stop(): release the port.
                    for (var c : http.getConnectors()) if (c instanceof ServerConnector sc) sc.close();
                } catch (Exception suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            if (manager != null) manager.detach();
            if (egress != null) egress.close();
            if (index != null) index.close();
            if (templates != null) templates.close();
            if (store != null) store.close();
            if (lock != null) {
                try {
                    lock.close();
                } catch (IOException suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            if (e instanceof IOException io) {
                throw new UncheckedIOException("starting the server failed: " + io.getMessage()
                        + ". Check that the port is free and the data directory is writable.", io);
            }
            if (e instanceof RuntimeException re) throw re;
            throw new IllegalStateException("starting the HTTP server failed: " + e.getMessage(), e);
        }
    }

    /**
     * The API's HTTP server, not yet bound: request line and headers bounded (414/431 beyond), every
     * refusal Jetty makes itself answered in the API's JSON error shape, a connection idle between
     * requests closed after {@link #IDLE_SECONDS}, at most {@link #MAX_CONNECTIONS} connections (more
     * wait in the accept queue), no Server header.
     */
    static org.eclipse.jetty.server.Server httpServer() {
        QueuedThreadPool pool = new QueuedThreadPool();
        pool.setName("http");
        org.eclipse.jetty.server.Server http = new org.eclipse.jetty.server.Server(pool);
        HttpConfiguration hc = new HttpConfiguration();
        hc.setRequestHeaderSize(RequestBounds.MAX_HEADER_BLOCK);
        hc.setSendServerVersion(false);
        hc.setSendXPoweredBy(false);
        // E2B's SDKs percent-encode path parameters: a template name "team/alias" arrives as
        // team%2Falias, which Jetty refuses by default; the router matches raw segments and decodes them.
        hc.setUriCompliance(org.eclipse.jetty.http.UriCompliance.DEFAULT.with("stockade-e2b",
                org.eclipse.jetty.http.UriCompliance.Violation.AMBIGUOUS_PATH_SEPARATOR));
        ServerConnector connector = new ServerConnector(http, new HttpConnectionFactory(hc));
        connector.setAcceptQueueSize(512);
        // Every command streams several small frames, each flushed at once: with Nagle's algorithm
        // on, a frame can wait ~40 ms for the client's delayed ACK.
        connector.setAcceptedTcpNoDelay(true);
        // Between requests, and while a read or write waits on the client (a slow client); a handler
        // that streams a silent command's output is not idle (Router ignores the timeout then).
        connector.setIdleTimeout(IDLE_SECONDS * 1000);
        http.addConnector(connector);
        http.addBean(new NetworkConnectionLimit(MAX_CONNECTIONS, connector));
        http.setErrorHandler(new RequestBounds.JsonErrors());
        return http;
    }

    /**
     * The mapper every request body is parsed with (JSON bodies, Connect messages): bounded depth, string
     * and number sizes, and a duplicate key refused (400) — {@code {"timeout":1,"timeout":9}} means
     * whatever a parser picks, and a proxy or an audit reader may pick the other value.
     */
    static ObjectMapper requestJson() {
        ObjectMapper json = new ObjectMapper();
        json.getFactory().setStreamReadConstraints(StreamReadConstraints.builder()
                .maxNestingDepth(64).maxStringLength(16 * 1024 * 1024).maxNumberLength(64).build());
        json.enable(com.fasterxml.jackson.core.JsonParser.Feature.STRICT_DUPLICATE_DETECTION);
        return json;
    }

    /**
     * One server per data directory: a server reaps every sandbox of its directory at start, so a
     * second one would destroy the first one's sandboxes. The lock dies with the process.
     */
    private static FileChannel lockDataDir(Path data) throws IOException {
        FileChannel ch = FileChannel.open(data.resolve("runtime.lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        try {
            if (ch.tryLock() == null) throw new java.nio.channels.OverlappingFileLockException();
        } catch (java.nio.channels.OverlappingFileLockException e) {
            ch.close();
            throw new IllegalStateException("another Stockade server already uses the data directory " + data
                    + ": stop it or choose another --data-dir");
        }
        return ch;
    }

    /** Seconds a connection may stay silent between requests, or while the server waits on the client's bytes. */
    static final long IDLE_SECONDS = 30;
    /** Connections open at once; more wait in the accept queue. */
    static final int MAX_CONNECTIONS = 4096;

    /** Where the first start writes the admin key it makes (0600), for the operator to read. */
    static final String ADMIN_KEY_FILE = "api-key";

    /**
     * Writes the agent's directory where sandboxes bind it from (read-only, owned by root), compiled
     * to bytecode by the same /usr/bin/python3 the sandboxes run ({@link AgentScript#install}), with
     * the CA bundle beside it; named after both, so an existing install is never stale.
     */
    private static Path installAgent(Path data, byte[] caBundle) throws IOException {
        Path root = data.resolve("agent");
        Files.createDirectories(root);
        Files.setPosixFilePermissions(root, PosixFilePermissions.fromString("rwxr-xr-x"));
        String bundleHash;
        try {
            bundleHash = HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(caBundle));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        Path target = root.resolve(AgentScript.sha256().substring(0, 16) + "-" + bundleHash.substring(0, 8));
        if (Files.isDirectory(target)) return target;
        Path tmp = Files.createTempDirectory(root, "install-");
        try {
            Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxr-xr-x"));
            AgentScript.install(tmp);
            Path bundle = tmp.resolve(CA_BUNDLE);
            Files.write(bundle, caBundle);
            Files.setPosixFilePermissions(bundle, PosixFilePermissions.fromString("r--r--r--"));
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
            return target;
        } catch (java.nio.file.FileAlreadyExistsException raced) {
            return target;
        } finally {
            if (Files.exists(tmp)) {
                try (var files = Files.walk(tmp)) { // deepest first: the package's directory is inside
                    for (Path f : files.sorted(java.util.Comparator.reverseOrder()).toList()) Files.deleteIfExists(f);
                }
            }
        }
    }

    /** The file of the agent's directory that sandbox processes trust for TLS (the agent points SSL_CERT_FILE and friends at it). */
    static final String CA_BUNDLE = "ca-bundle.pem";
    private static final Path HOST_CA_BUNDLE = Path.of("/etc/ssl/certs/ca-certificates.crt");

    /**
     * The public CAs sandboxes already trust (the host's bundle, which the template's /etc copies)
     * plus Stockade's egress CA, which signs certificates only for the hosts whose requests the proxy
     * rewrites (secrets, header rules) and whose key never leaves the host.
     */
    private static byte[] caBundle(StockadeCa ca) throws IOException {
        String pub = Files.isRegularFile(HOST_CA_BUNDLE) ? Files.readString(HOST_CA_BUNDLE) : "";
        if (!pub.isEmpty() && !pub.endsWith("\n")) pub += "\n";
        return (pub + "# Stockade egress CA (this server's; its key stays on the host)\n" + ca.certificatePem())
                .getBytes(java.nio.charset.StandardCharsets.UTF_8);
    }

    /**
     * DATA/egress holds one directory per running sandbox with its proxy socket, bound by the server
     * before the sandbox starts.
     */
    private static Path egressSockets(Path data) throws IOException {
        Path dir = data.resolve("egress");
        Files.createDirectories(dir);
        // Traversable (not listable) by others: runc binds each socket from inside the sandbox's user
        // namespace, as an unprivileged host uid. Each socket is its sandbox root's, mode 0600.
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
        // What an earlier server left here is the SandboxManager's to sort out (it knows which
        // sandboxes it keeps).
        return dir;
    }

    String host() {
        return config.host();
    }

    int port() {
        return connector.getLocalPort();
    }

    String apiKey() {
        return apiKey;
    }

    void awaitClose() throws InterruptedException {
        closedLatch.await();
    }

    void close() {
        stop(true, 1);
    }

    /**
     * Stops accepting requests, lets those running finish for up to {@code graceSeconds}, then either
     * ends every sandbox or leaves them running for the next server on this data directory. Returns
     * how many sandboxes were left running.
     */
    int stop(boolean endSandboxes, int graceSeconds) {
        if (!closed.compareAndSet(false, true)) return 0;
        int left = 0;
        try {
            http.setStopTimeout(graceSeconds * 1000L);
            try {
                http.stop();
            } catch (Exception e) {
                // what could not stop in time was cut off; the sandboxes are handled below all the same
            }
            if (endSandboxes) manager.close();
            else left = manager.detach();
            egress.close();
            index.close();
            executor.shutdownNow();
            // A build still running is left building: the next start marks it failed.
            templates.close();
            store.close();
            try {
                lock.close();
            } catch (IOException ignored) {
                // released with the process anyway
            }
        } finally {
            closedLatch.countDown();
        }
        return left;
    }
}
