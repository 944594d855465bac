package dev.stockade.server.core;

import dev.stockade.protocol.AgentException;
import dev.stockade.protocol.link.AgentClient;
import dev.stockade.runtime.Capabilities;
import dev.stockade.runtime.Limits;
import dev.stockade.runtime.RuntimeFailure;
import dev.stockade.runtime.RuntimeSandbox;
import dev.stockade.runtime.SandboxRuntime;
import dev.stockade.runtime.SandboxSpec;
import dev.stockade.server.config.ServerConfig;
import dev.stockade.server.egress.EgressProxy;
import dev.stockade.server.egress.NetworkPolicy;
import dev.stockade.server.egress.SandboxEgress;
import dev.stockade.server.egress.SecretBinding;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.regex.Pattern;

/**
 * Sandbox lifecycle: create, look up, extend, kill, expire. It decides whether and with what limits;
 * the runtime decides how. Called from API handler threads (virtual threads) concurrently; the
 * reaper runs on its own virtual thread and ends sandboxes whose deadline has passed.
 */
public final class SandboxManager implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(SandboxManager.class.getName());
    /** Template names the E2B SDKs send by default, all served by the host-Python template. */
    public static final Set<String> DEFAULT_TEMPLATE_NAMES = Set.of("base", "code-interpreter-v1", "python");
    private static final Pattern METADATA_KEY = Pattern.compile("[A-Za-z0-9_.\\-:/]{1,128}");
    private static final Pattern RUNTIME_NAME = Pattern.compile("[a-z0-9-]{1,32}");
    private static final Pattern ENV_KEY = Pattern.compile("[A-Za-z_][A-Za-z0-9_]{0,255}");
    private static final Duration AGENT_START_TIMEOUT = Duration.ofSeconds(15);
    private static final Duration AGENT_CALL_TIMEOUT = Duration.ofSeconds(30);
    /** How long a restarted server waits for the agent of a sandbox it takes over. */
    private static final Duration AGENT_TAKE_OVER_TIMEOUT = Duration.ofSeconds(5);
    private static final int FIRST_SLOT = 32;
    private static final int LAST_SLOT = 65000;

    private final ServerConfig config;
    private final Runtimes runtimes;
    private final Path agentDir;
    private final EgressProxy egress;
    private final Path egressSockets;
    private final ConcurrentHashMap<String, Sandbox> sandboxes = new ConcurrentHashMap<>();
    private final Set<Integer> slots = ConcurrentHashMap.newKeySet();
    private final SandboxRegistry registry;
    private final Snapshots snapshots;
    /** Sandboxes of an earlier run that could not be taken over, and why (bounded, oldest dropped). */
    private final Map<String, Lost> lostSandboxes = new java.util.LinkedHashMap<>(16, 0.75f, false) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Lost> eldest) {
            return size() > 10_000;
        }
    };
    /** Ended sandboxes' tokens, so calls with them get "not found" rather than "unauthenticated". */
    private final Map<String, String> tombstones = new java.util.LinkedHashMap<>(16, 0.75f, false) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, String> eldest) {
            return size() > 10_000;
        }
    };
    private final SecureRandom random = new SecureRandom();
    private final AtomicBoolean closed = new AtomicBoolean();
    private final Thread reaper;
    /** Creates in flight: the pool refills only while there are none (or when it runs low). */
    private final java.util.concurrent.atomic.AtomicInteger live = new java.util.concurrent.atomic.AtomicInteger();
    /** Warm pools by runtime name (the default runtime's, and the hardened tier's when configured). */
    private final Map<String, SandboxPool> pools;


    /**
     * @param egress the egress proxy every sandbox's traffic leaves through; null: sandboxes get no
     *     egress path at all (loopback only, whatever they ask for)
     * @param egressSockets a directory owned by the server where each sandbox's proxy socket is bound
     * @param store where the sandboxes are recorded, so that a server started after a crash takes
     *     them over (null: nothing is recorded, and a start removes whatever an earlier server left)
     * @param snapshotsDir where snapshots' files are kept (with a store; null: no snapshots)
     * @param quotas gives each sandbox taken over its share of its owner's quota again
     */
    public SandboxManager(ServerConfig config, Runtimes runtimes, Path agentDir, EgressProxy egress, Path egressSockets, dev.stockade.server.store.Store store,
                          Path snapshotsDir, Admission quotas) {
        this.egress = egress;
        this.egressSockets = egressSockets;
        this.config = config;
        this.runtimes = runtimes;
        this.agentDir = agentDir;
        this.registry = new SandboxRegistry(store);
        this.snapshots = store == null || snapshotsDir == null ? null : new Snapshots(store, snapshotsDir);
        long t = System.nanoTime();
        Set<String> keep = takeOver(quotas);
        if (!keep.isEmpty()) {
            LOG.info(String.format("took over %d sandbox(es) of an earlier run in %.0f ms", keep.size(), (System.nanoTime() - t) / 1e6));
        }
        for (Runtimes.Tier tier : runtimes.all()) {
            Set<String> reaped = tier.runtime().reapExcept(keep);
            if (!reaped.isEmpty()) {
                LOG.info("removed " + reaped.size() + " " + tier.name() + " sandbox(es) left behind by an earlier run: " + reaped);
            }
        }
        removeEgressDirsExcept(keep);
        this.reaper = Thread.ofVirtual().name("stockade-reaper").start(this::reapLoop);
        Map<String, SandboxPool> p = new java.util.LinkedHashMap<>();
        if (config.pool().size() > 0) {
            p.put(runtimes.defaultName(), new SandboxPool(this, runtimes.defaultTier(), config.pool().size(), config.pool(), live));
        }
        if (config.pool().hardened() > 0 && !runtimes.defaultName().equals(Runtimes.HARDENED)) {
            Runtimes.Tier hardened = runtimes.find(Runtimes.HARDENED);
            if (hardened == null) {
                LOG.warning("no hardened pool: runtime " + Runtimes.HARDENED + " is not available on this host ("
                        + runtimes.unavailable().getOrDefault(Runtimes.HARDENED, "not installed") + ")");
            } else {
                p.put(hardened.name(), new SandboxPool(this, hardened, config.pool().hardened(), config.pool(), live));
            }
        }
        this.pools = java.util.Collections.unmodifiableMap(p);
    }

    /**
     * Serves again the sandboxes an earlier server recorded and left running (it crashed or was
     * killed): the same ids, tokens, owners, limits, deadlines, environment, network policy and
     * secrets; their files, processes and interpreter contexts never stopped. A sandbox whose
     * container is gone is reported as lost to its owner (never silently recreated) and its record
     * removed. Returns the ids taken over.
     */
    private Set<String> takeOver(Admission quotas) {
        List<String> unreadable = new ArrayList<>();
        List<SandboxRegistry.Row> rows = registry.load(unreadable);
        for (String id : unreadable) {
            LOG.warning("the record of sandbox " + id + " cannot be read; the sandbox is removed");
            registry.remove(id);
        }
        Set<String> kept = new java.util.HashSet<>();
        for (SandboxRegistry.Row row : rows) {
            String id = row.id();
            SandboxEgress e = null;
            Admission.Lease lease = null;
            try {
                Runtimes.Tier tier = runtimes.find(row.runtime());
                if (tier == null) {
                    // Left exactly as it is, still recorded, its uid range reserved (no new sandbox may
                    // share its host uids): a later server that offers the runtime takes it over.
                    slots.add(row.slot());
                    kept.add(id);
                    String why = "its runtime " + row.runtime() + " is not available on this server now ("
                            + runtimes.unavailable().getOrDefault(row.runtime(), "not installed")
                            + "); it is kept, untouched, for a server that offers " + row.runtime();
                    synchronized (lostSandboxes) {
                        lostSandboxes.put(id, new Lost(row.tenant(), why));
                    }
                    LOG.warning("sandbox " + id + " of tenant " + row.tenant() + " is not served: " + why);
                    continue;
                }
                SandboxRuntime runtime = tier.runtime();
                RuntimeSandbox rs = runtime.attach(id);
                if (rs == null) {
                    lost(row, "its container was gone when the server restarted (killed or the host rebooted)"
                            + " — nothing of it could be kept");
                    continue;
                }
                boolean paused = runtime.isPaused(id);
                AgentClient agent = AgentClient.unix(rs.agentSocket(), AGENT_CALL_TIMEOUT, row.uidBase());
                if (!paused) agent.hello(AGENT_TAKE_OVER_TIMEOUT);
                if (egress != null) {
                    Path socket = egressSocketOf(id);
                    Files.createDirectories(socket.getParent());
                    Files.setPosixFilePermissions(socket.getParent(), PosixFilePermissions.fromString("rwx--x--x"));
                    Files.deleteIfExists(socket); // the earlier server's listener died with it
                    e = egress.attach(id, socket, row.uidBase(), row.network(), row.secrets());
                }
                lease = quotas.restore(row.tenant(), row.limits());
                Sandbox sb = new Sandbox(id, row.templateId(), row.alias(), row.runtime(), row.metadata(), row.processEnv(),
                        row.secrets().stream().map(SecretBinding::name).toList(), row.limits(), row.startedAt(), row.endAt(),
                        row.token(), row.uidBase(), new Owner(row.tenant(), lease));
                sb.egress(e);
                sb.initPid(rs.initPid());
                sb.endReasonSource(() -> endReasonOnceStopped(sb, runtime, rs.initPid()));
                sb.secretBindings(row.secrets());
                sb.autoPause(row.autoPause());
                sb.idleTimeoutSeconds(row.idleTimeoutSeconds());
                if (row.seededFrom() != null) sb.seededFrom(row.seededFrom());
                sb.running(agent);
                if (paused) {
                    Duration left = row.pausedLeft() != null ? row.pausedLeft() : Duration.between(Instant.now(), row.endAt());
                    sb.paused(left.compareTo(Duration.ofSeconds(1)) < 0 ? Duration.ofSeconds(1) : left);
                } else if (row.pausedLeft() != null) {
                    // Resumed just before the crash, not yet recorded: its time left runs from now.
                    sb.endAt(Instant.now().plus(row.pausedLeft()));
                }
                if (paused != (row.pausedLeft() != null)) registry.update(sb);
                slots.add(row.slot());
                sandboxes.put(id, sb);
                kept.add(id);
            } catch (IOException | RuntimeException ex) {
                if (e != null) e.close();
                if (lease != null) lease.close();
                LOG.log(Level.WARNING, "sandbox " + id + " of an earlier run could not be taken over; it is removed", ex);
                lost(row, "the restarted server could not take it over: " + ex.getMessage());
            }
        }
        return kept;
    }

    /** Records that a sandbox of an earlier run is lost: its owner is told so, and its token answers "gone". */
    private void lost(SandboxRegistry.Row row, String why) {
        registry.remove(row.id());
        synchronized (tombstones) {
            tombstones.put(row.id(), row.token());
        }
        synchronized (lostSandboxes) {
            lostSandboxes.put(row.id(), new Lost(row.tenant(), why));
        }
        LOG.warning("sandbox " + row.id() + " of tenant " + row.tenant() + " is lost: " + why);
    }

    private record Lost(String tenant, String why) {}

    /**
     * The answer for a sandbox {@code tenant} may not see: for its own sandbox that was lost at a
     * restart, why; for everything else the one not-found answer.
     */
    public StockadeError notFoundFor(String tenant, String id) {
        Lost l;
        synchronized (lostSandboxes) {
            l = id == null ? null : lostSandboxes.get(id);
        }
        if (l != null && l.tenant().equals(tenant)) {
            return StockadeError.notFound("sandbox " + id + " was lost: " + l.why());
        }
        return notFound(id);
    }

    /**
     * What a runtime says of itself: its name, whether this server offers it (and if not, why), its
     * isolation, its optional features, and its pool.
     */
    public record RuntimeInfo(String name, boolean isDefault, boolean available, String reason, String isolation,
                              java.util.SortedSet<String> capabilities, int poolReady) {}

    /** Every runtime installed: those offered (the default first), then those this host cannot run. */
    public List<RuntimeInfo> runtimeInfo() {
        List<RuntimeInfo> out = new ArrayList<>();
        for (Runtimes.Tier t : runtimes.all()) {
            SandboxPool p = pools.get(t.name());
            out.add(new RuntimeInfo(t.name(), t.name().equals(runtimes.defaultName()), true, null,
                    t.runtime().isolation(), new java.util.TreeSet<>(t.runtime().capabilities()), p == null ? 0 : p.ready()));
        }
        runtimes.unavailable().forEach((name, why) -> out.add(new RuntimeInfo(name, false, false, why, null,
                new java.util.TreeSet<>(), 0)));
        return out;
    }

    /** Ready sandboxes in the pools now (0 without a pool). */
    public int poolReady() {
        return pools.values().stream().mapToInt(SandboxPool::ready).sum();
    }

    /** The runtime a sandbox runs on (it was offered when the sandbox started, so it is here). */
    private SandboxRuntime runtimeOf(Sandbox sb) {
        Runtimes.Tier t = runtimes.find(sb.runtime());
        if (t == null) throw new IllegalStateException("sandbox " + sb.id() + " runs on unknown runtime " + sb.runtime());
        return t.runtime();
    }

    /** INVALID_ARGUMENT unless the sandbox's runtime has {@code capability}; the message says what cannot be done. */
    private static void requireCapability(SandboxRuntime runtime, String capability, String what) {
        if (!runtime.capabilities().contains(capability)) {
            throw StockadeError.invalid("runtime " + runtime.name() + " cannot " + what + " (it lacks the '" + capability
                    + "' capability; GET /runtimes lists what each runtime supports)");
        }
    }

    Limits defaultLimits() {
        return config.defaultLimits();
    }

    /**
     * Creates a sandbox owned by {@code owner}. Once the request's limits are resolved, the admission
     * decides whether the owner may have it; its lease is held until the sandbox ends.
     */
    public Sandbox create(CreateRequest req, String owner, Admission admission) {
        if (closed.get()) throw new StockadeError(StockadeError.Code.UNAVAILABLE, "the server is shutting down");
        String templateName = req.template() == null || req.template().isBlank() ? "base" : req.template();
        if (req.runtime() != null && !RUNTIME_NAME.matcher(req.runtime()).matches()) {
            throw StockadeError.invalid("runtime must be a runtime's name (1 to 32 of a-z, 0-9 and -), e.g. runc or runsc;"
                    + " GET /runtimes lists them");
        }
        String runtimeName = req.runtime() == null ? runtimes.defaultName() : req.runtime();
        if (templateName.endsWith(Runtimes.HARDENED_SUFFIX)) {
            templateName = templateName.substring(0, templateName.length() - Runtimes.HARDENED_SUFFIX.length());
            if (req.runtime() != null && !req.runtime().equals(Runtimes.HARDENED)) {
                throw StockadeError.invalid("template '" + req.template() + "' asks for the hardened tier ("
                        + Runtimes.HARDENED + ") but the request names runtime '" + req.runtime() + "': ask for one of them");
            }
            runtimeName = Runtimes.HARDENED;
        }
        Snapshots.Snapshot seed = null;
        if (!DEFAULT_TEMPLATE_NAMES.contains(templateName)) {
            seed = snapshots == null ? null : snapshots.find(owner, templateName);
            if (seed == null) {
                throw StockadeError.invalid("template '" + req.template() + "' does not exist on this server: the templates are "
                        + String.join(", ", DEFAULT_TEMPLATE_NAMES.stream().sorted().toList())
                        + " (each may carry -hardened), or the id or name of one of your snapshots.");
            }
        }
        Runtimes.Tier tier = runtimes.require(runtimeName);
        SandboxRuntime runtime = tier.runtime();
        if (req.autoPause()) requireCapability(runtime, Capabilities.PAUSE, "pause sandboxes (autoPause)");
        if (seed != null) requireCapability(runtime, Capabilities.SNAPSHOT, "start sandboxes from snapshots");
        int timeout = req.timeoutSeconds() == null ? config.defaultTimeoutSeconds() : req.timeoutSeconds();
        checkTimeout(timeout);
        if (req.idleTimeoutSeconds() != null && (req.idleTimeoutSeconds() < 1 || req.idleTimeoutSeconds() > config.maxTimeoutSeconds())) {
            throw StockadeError.invalid("idleTimeout must be between 1 and " + config.maxTimeoutSeconds() + " seconds, got "
                    + req.idleTimeoutSeconds());
        }
        Limits limits = resolveLimits(req.limits() == null ? CreateRequest.LimitsRequest.NONE : req.limits());
        checkMap("metadata", req.metadata(), METADATA_KEY, 64, 1024);
        checkMap("envVars", req.envVars(), ENV_KEY, 256, 32 * 1024);
        NetworkPolicy network = req.network() == null ? NetworkPolicy.none() : req.network();
        checkNetwork(network);
        if (network.mode() != NetworkPolicy.Mode.NONE) {
            requireCapability(runtime, Capabilities.NETWORK_ALLOWLIST, "give sandboxes network access");
        }
        List<SecretBinding> secrets = secrets(req);
        if (!secrets.isEmpty()) requireCapability(runtime, Capabilities.NETWORK_ALLOWLIST, "hold secrets (they need its egress path)");
        if (sandboxes.size() >= config.maxSandboxes()) {
            throw new StockadeError(StockadeError.Code.RESOURCE_EXHAUSTED, "this server already runs " + sandboxes.size()
                    + " sandboxes, its maximum (maxSandboxes). Kill some or raise the limit.");
        }

        if (seed != null && seed.bytes() > (long) limits.diskMB() * 1024 * 1024 * 9 / 10) {
            throw StockadeError.invalid("snapshot " + seed.id() + " holds " + (seed.bytes() >> 20) + " MiB of files, more"
                    + " than 90% of limits.diskMB " + limits.diskMB() + ": ask for a larger disk");
        }
        Admission.Lease lease = admission.admit(owner, limits);
        Owner who = new Owner(owner, lease);
        // Every default template name is the same template on this runtime: any of them can take a pooled one.
        SandboxPool pool = pools.get(tier.name());
        boolean poolable = pool != null && seed == null && DEFAULT_TEMPLATE_NAMES.contains(templateName);
        live.incrementAndGet();
        boolean created = false;
        try {
            Prepared p = poolable ? pool.take() : null;
            if (p != null) {
                boolean handedOver = false;
                try {
                    runtime.setBackground(p.id(), false);
                    if (!p.limits().equals(limits)) runtime.update(p.id(), limits);
                    if (p.egress() != null) p.egress().handOver(network, secrets);
                    handedOver = true;
                } catch (RuntimeFailure | StockadeError e) {
                    LOG.log(Level.INFO, "a pooled sandbox could not be handed over; starting a fresh one", e);
                    discard(p);
                }
                if (handedOver) {
                    // A failure from here on has ended the sandbox (and given its share back): it propagates.
                    Sandbox sb = activate(p, req, who, templateName, limits, secrets, timeout);
                    created = true;
                    return sb;
                }
            }
            Path seedFiles = seed == null ? null : snapshots.filesOf(seed.id());
            Sandbox sb = activate(prepare(tier, limits, network, secrets, SandboxSpec.Warmup.NONE, seedFiles), req, who,
                    seed == null ? templateName : (seed.name() != null ? seed.name() : seed.id()), limits, secrets, timeout);
            if (seed != null) {
                sb.seededFrom(seed.id());
                record(sb);
            }
            created = true;
            return sb;
        } finally {
            if (!created) lease.close();
            live.decrementAndGet();
            for (SandboxPool other : pools.values()) other.wake();
        }
    }

    /** Who owns a sandbox, and the share of its quota the sandbox holds until it ends. */
    record Owner(String tenant, Admission.Lease lease) {}

    /**
     * A started sandbox nobody has yet: its id, uid range, agent and egress. Fresh creates make one
     * and activate it at once; the pool makes them ahead of time.
     */
    record Prepared(String id, Runtimes.Tier tier, int slot, long uidBase, AgentClient agent, SandboxEgress egress, Limits limits,
                    long initPid) {}

    /** Starts a sandbox on {@code tier}; on failure nothing of it is left and StockadeError(UNAVAILABLE) says why. */
    Prepared prepare(Runtimes.Tier tier, Limits limits, NetworkPolicy network, List<SecretBinding> secrets,
                     SandboxSpec.Warmup warmup) {
        return prepare(tier, limits, network, secrets, warmup, null);
    }

    /** With {@code seed}: the sandbox starts with a snapshot's files on top of its template. */
    Prepared prepare(Runtimes.Tier tier, Limits limits, NetworkPolicy network, List<SecretBinding> secrets,
                     SandboxSpec.Warmup warmup, Path seed) {
        SandboxRuntime runtime = tier.runtime();
        String id = newId();
        int slot = claimSlot();
        long uidBase = (long) slot * 65536;
        SandboxEgress e = null;
        try {
            Path egressSocket = null;
            if (egress != null) {
                egressSocket = egressSocketOf(id);
                try {
                    Files.createDirectories(egressSocket.getParent());
                    Files.setPosixFilePermissions(egressSocket.getParent(), PosixFilePermissions.fromString("rwx--x--x"));
                    e = egress.attach(id, egressSocket, uidBase, network, secrets);
                } catch (IOException io) {
                    throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR,
                            "cannot open the sandbox's egress socket " + egressSocket + ": " + io.getMessage());
                }
            }
            RuntimeSandbox rs = runtime.start(new SandboxSpec(id, uidBase, tier.sandboxesRoot().resolve(id), tier.template(),
                    agentDir, limits, egressSocket, warmup, seed));
            // The agent runs as the sandbox's root, i.e. host uid uidBase: every connection is
            // checked against it, so a socket replaced from inside the sandbox leads nowhere.
            AgentClient agent = AgentClient.unix(rs.agentSocket(), AGENT_CALL_TIMEOUT, uidBase);
            agent.hello(AGENT_START_TIMEOUT);
            // A pooled sandbox is ready when its interpreter is: the preload happens here, off any
            // create's path, not in the first cell of whoever takes it.
            if (warmup.defaultContext()) agent.warmDefaultContext(null);
            return new Prepared(id, tier, slot, uidBase, agent, e, limits, rs.initPid());
        } catch (RuntimeFailure | AgentException ex) {
            try {
                runtime.destroy(id);
            } catch (RuntimeException cleanup) {
                ex.addSuppressed(cleanup);
            }
            if (e != null) e.close();
            removeEgressDir(id);
            slots.remove(slot);
            throw new StockadeError(StockadeError.Code.UNAVAILABLE, "starting the sandbox failed: " + ex.getMessage(), ex);
        }
    }

    /** Gives a prepared sandbox its user's identity: a new token, metadata, environment, deadline. */
    private Sandbox activate(Prepared p, CreateRequest req, Owner owner, String templateName, Limits limits,
                             List<SecretBinding> secrets, int timeout) {
        // Millisecond precision: list order and paging cursors (ControlPlaneApi) use the same key.
        Instant now = Instant.now().truncatedTo(java.time.temporal.ChronoUnit.MILLIS);
        Map<String, String> processEnv = new java.util.LinkedHashMap<>(req.envVars());
        for (SecretBinding s : secrets) processEnv.put(s.name(), s.placeholder());
        Sandbox sb = new Sandbox(p.id(), req.template() == null ? "base" : req.template(), templateName, p.tier().name(),
                req.metadata(), processEnv, secrets.stream().map(SecretBinding::name).toList(), limits,
                now, now.plusSeconds(timeout), token(), p.uidBase(), owner);
        sb.egress(p.egress());
        sb.initPid(p.initPid());
        SandboxRuntime runtime = p.tier().runtime();
        sb.endReasonSource(() -> endReasonOnceStopped(sb, runtime, p.initPid()));
        sb.secretBindings(secrets);
        sb.autoPause(req.autoPause());
        if (req.idleTimeoutSeconds() != null) sb.idleTimeoutSeconds(req.idleTimeoutSeconds());
        sb.running(p.agent());
        sandboxes.put(p.id(), sb);
        if (closed.get()) {
            end(sb, "the server stopped");
            throw new StockadeError(StockadeError.Code.UNAVAILABLE, "the server is shutting down");
        }
        try {
            // Recorded before the create answers: an acknowledged sandbox survives a crash of the server.
            registry.put(sb);
        } catch (RuntimeException e) {
            end(sb, "it could not be recorded");
            throw new StockadeError(StockadeError.Code.UNAVAILABLE, "the sandbox could not be recorded in the store ("
                    + e.getMessage() + "); it was removed. Check the data directory's disk.", e);
        }
        return sb;
    }

    /**
     * Runs one throw-away command in a pooled sandbox before it counts as ready, so that the first
     * command of whoever takes it does not pay for the agent's first spawn (its reaper and pump
     * threads, the shell's first start: ~6 ms under runc, ~45 ms under gVisor's ptrace platform).
     * Leaves nothing behind: the command exits and writes no file. A failure is logged, not fatal.
     */
    void warmUpCommand(Prepared p) {
        var request = new dev.stockade.protocol.ExecRequest(List.of("/bin/bash", "-l", "-c", "true"), Map.of(), null, "user",
                false, 30_000, 4096, null);
        try (dev.stockade.protocol.link.EventStream<dev.stockade.protocol.AgentEvent> s = p.agent().exec(request)) {
            long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
            while (System.nanoTime() < deadline) {
                var ev = s.next(Duration.ofSeconds(5));
                if (ev.isPresent() && ev.get() instanceof dev.stockade.protocol.AgentEvent.Ended) return;
            }
            LOG.info("the warm-up command of pooled sandbox " + p.id() + " did not end within 30 s");
        } catch (RuntimeException e) {
            LOG.log(Level.INFO, "the warm-up command of pooled sandbox " + p.id() + " failed", e);
        }
    }

    /**
     * The runtime's end reason, but only for a sandbox whose container has stopped (as the runtime
     * sees it, waited for up to two seconds: a stream breaks a moment before the sentry is gone): a
     * live sandbox's broken stream is never blamed on an old limit event.
     */
    private static java.util.Optional<String> endReasonOnceStopped(Sandbox sb, SandboxRuntime runtime, long initPid) {
        for (int i = 0; i < 20; i++) {
            // The reaper may have ended it meanwhile (and removed the runtime's evidence): it kept why.
            if (sb.stoppedBecause() != null) return java.util.Optional.of(sb.stoppedBecause());
            // The runtime's own view: a dead sentry's host process may linger (a zombie, or the
            // gofer) for a while, but the runtime already reports the container stopped.
            boolean stopped;
            try {
                stopped = !runtime.isAlive(sb.id());
            } catch (RuntimeException e) {
                stopped = initPid > 0 && !ProcessHandle.of(initPid).map(ProcessHandle::isAlive).orElse(false);
            }
            if (stopped) {
                java.util.Optional<String> why = runtime.endReason(sb.id());
                return why.isPresent() || sb.stoppedBecause() == null ? why : java.util.Optional.of(sb.stoppedBecause());
            }
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return java.util.Optional.empty();
            }
        }
        return java.util.Optional.empty();
    }

    /** Removes a prepared sandbox nobody will use. */
    void discard(Prepared p) {
        try {
            p.tier().runtime().destroy(p.id());
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "removing pooled sandbox " + p.id() + " failed", e);
        } finally {
            if (p.egress() != null) p.egress().close();
            removeEgressDir(p.id());
            slots.remove(p.slot());
        }
    }

    /** The outcome of presenting a sandbox access token. */
    public sealed interface Access {
        record Granted(Sandbox sandbox) implements Access {}

        /** The token belonged to a sandbox that has ended: the honest answer is "not found". */
        record Gone() implements Access {}

        /** No token, a wrong one, or an unknown sandbox. */
        record Denied() implements Access {}
    }

    /** Checks an in-sandbox call's access token (constant-time). */
    public Access access(String id, String token) {
        if (token == null || id == null) return new Access.Denied();
        byte[] given = token.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        Sandbox sb = sandboxes.get(id);
        if (sb != null) {
            if (!java.security.MessageDigest.isEqual(given, sb.accessToken().getBytes(java.nio.charset.StandardCharsets.UTF_8))) {
                return new Access.Denied();
            }
            return sb.isRunning() ? new Access.Granted(sb) : new Access.Gone();
        }
        String old;
        synchronized (tombstones) {
            old = tombstones.get(id);
        }
        if (old != null && java.security.MessageDigest.isEqual(given, old.getBytes(java.nio.charset.StandardCharsets.UTF_8))) {
            return new Access.Gone();
        }
        return new Access.Denied();
    }

    /** A running sandbox, or NOT_FOUND (the same answer for never-existed, ended and starting). */
    public Sandbox get(String id) {
        Sandbox sb = id == null ? null : sandboxes.get(id);
        if (sb != null && sb.isPaused()) throw paused(id);
        if (sb == null || !sb.isRunning()) throw notFound(id);
        return sb;
    }

    /** What a call that needs a running sandbox gets while its owner has paused it. */
    public static StockadeError paused(String id) {
        return new StockadeError(StockadeError.Code.CONFLICT, "sandbox " + id + " is paused: resume it first (connect)");
    }

    /** The one answer for a sandbox a caller may not see: never existed, ended, starting, or another tenant's. */
    public static StockadeError notFound(String id) {
        return StockadeError.notFound("sandbox " + id + " not found");
    }

    /** A running or paused sandbox (its owner may see, kill, resume it), or NOT_FOUND. */
    public Sandbox live(String id) {
        Sandbox sb = id == null ? null : sandboxes.get(id);
        if (sb == null || !sb.isLive()) throw notFound(id);
        return sb;
    }

    /**
     * Freezes a running sandbox (the runtime's cgroup freezer): no CPU; memory, processes, files and
     * interpreter contexts kept. Its timeout stops while it is paused. CONFLICT if already paused.
     */
    public void pause(String id) {
        Sandbox sb = live(id);
        synchronized (sb) {
            if (sb.isPaused()) throw new StockadeError(StockadeError.Code.CONFLICT, "sandbox " + id + " is already paused");
            if (!sb.isRunning()) throw notFound(id);
            SandboxRuntime runtime = runtimeOf(sb);
            requireCapability(runtime, Capabilities.PAUSE, "pause sandboxes");
            try {
                runtime.pause(id);
            } catch (RuntimeFailure e) {
                throw new StockadeError(StockadeError.Code.UNAVAILABLE, "pausing sandbox " + id + " failed: " + e.getMessage(), e);
            }
            Duration left = Duration.between(Instant.now(), sb.endAt());
            sb.paused(left.compareTo(Duration.ofSeconds(1)) < 0 ? Duration.ofSeconds(1) : left);
            record(sb);
        }
    }

    /** Records a changed deadline, pause state or policy; a failure is logged (the state in memory holds). */
    private void record(Sandbox sb) {
        try {
            registry.update(sb);
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "recording sandbox " + sb.id() + " failed: a restart would find it as it was", e);
        }
    }

    /**
     * Resumes a paused sandbox where it was (E2B's connect); its timeout runs again from what was left
     * at the pause, or {@code timeoutSeconds} when given. A running sandbox only gets the new timeout.
     */
    public Sandbox resume(String id, Integer timeoutSeconds) {
        if (timeoutSeconds != null) checkTimeout(timeoutSeconds);
        Sandbox sb = live(id);
        synchronized (sb) {
            if (sb.state() instanceof SandboxState.Paused p) {
                try {
                    runtimeOf(sb).resume(id);
                } catch (RuntimeFailure e) {
                    throw new StockadeError(StockadeError.Code.UNAVAILABLE, "resuming sandbox " + id + " failed: " + e.getMessage(), e);
                }
                sb.endAt(Instant.now().plus(timeoutSeconds == null ? p.remaining() : Duration.ofSeconds(timeoutSeconds)));
                sb.resumed();
            } else if (timeoutSeconds != null) {
                sb.endAt(Instant.now().plusSeconds(timeoutSeconds));
            }
            if (!sb.isRunning()) throw notFound(id);
            record(sb);
        }
        return sb;
    }

    /**
     * Snapshots a sandbox's files (E2B's createSnapshot): the sandbox is frozen for the copy and goes
     * on afterwards (a paused one stays paused). The filesystem only: memory and processes are not kept.
     */
    /**
     * With {@code memory}: a snapshot that would also hold the sandbox's memory and processes, which
     * needs a runtime with the memory-snapshot capability (none offers it yet: a 400 naming it).
     */
    public Snapshots.Snapshot snapshot(String id, String tenant, String name, boolean memory) {
        if (snapshots == null) throw StockadeError.invalid("this server cannot snapshot sandboxes (it runs without a store)");
        snapshots.checkName(tenant, name);
        Sandbox sb = live(id);
        SandboxRuntime runtime = runtimeOf(sb);
        requireCapability(runtime, Capabilities.SNAPSHOT, "snapshot sandboxes");
        if (memory) {
            requireCapability(runtime, Capabilities.MEMORY_SNAPSHOT, "keep a sandbox's memory and processes in a snapshot"
                    + " (memory: true); a snapshot of its files works without it");
            throw StockadeError.invalid("this server takes no memory snapshots yet (runtime " + runtime.name() + ")");
        }
        String snapId = snapshots.newId();
        long bytes;
        boolean freeze;
        // The copy runs outside the sandbox's lock (it may take minutes): the reaper and other
        // calls are not held up; the reaper leaves a sandbox being copied alone, and a kill meanwhile
        // makes the copy fail cleanly.
        synchronized (sb) {
            if (!sb.isLive()) throw notFound(id);
            if (!sb.startCopy()) throw new StockadeError(StockadeError.Code.CONFLICT, "sandbox " + id + " is being snapshotted already");
            freeze = sb.isRunning();
            if (freeze) {
                try {
                    runtime.pause(id);
                } catch (RuntimeFailure e) {
                    sb.endCopy();
                    throw new StockadeError(StockadeError.Code.UNAVAILABLE, "freezing sandbox " + id + " failed: " + e.getMessage(), e);
                }
            }
        }
        try {
            bytes = runtime.snapshot(id, snapshots.filesOf(snapId), sb.uidBase());
        } catch (RuntimeFailure e) {
            throw new StockadeError(StockadeError.Code.UNAVAILABLE, "snapshotting sandbox " + id + " failed: " + e.getMessage(), e);
        } finally {
            synchronized (sb) {
                if (freeze && sb.isRunning()) {
                    try {
                        runtime.resume(id);
                    } catch (RuntimeFailure e) {
                        LOG.log(Level.WARNING, "thawing sandbox " + id + " after its snapshot failed", e);
                    }
                }
                sb.endCopy();
            }
        }
        try {
            return snapshots.record(snapId, tenant, name, id, bytes);
        } catch (RuntimeException e) {
            snapshots.deleteFiles(snapId);
            throw e;
        }
    }

    /** The tenant's snapshots (none without a store). */
    public Snapshots snapshots() {
        if (snapshots == null) throw StockadeError.invalid("this server keeps no snapshots (it runs without a store)");
        return snapshots;
    }

    /** The sandbox with this id whatever its state, or null: for ownership checks, never for use. */
    public Sandbox find(String id) {
        return id == null ? null : sandboxes.get(id);
    }

    public List<Sandbox> list() {
        List<Sandbox> out = new ArrayList<>();
        for (Sandbox sb : sandboxes.values()) if (sb.isLive()) out.add(sb);
        out.sort(Comparator.comparing(Sandbox::startedAt).thenComparing(Sandbox::id));
        return out;
    }

    public void setTimeout(String id, int seconds) {
        checkTimeout(seconds);
        Sandbox sb = live(id);
        synchronized (sb) {
            if (sb.state() instanceof SandboxState.Paused p) {
                sb.paused(Duration.ofSeconds(seconds)); // counts from the resume
            } else {
                sb.endAt(Instant.now().plusSeconds(seconds));
            }
            record(sb);
        }
    }

    /** Ends the sandbox and removes everything of it; NOT_FOUND if it is not running. */
    public void kill(String id) {
        Sandbox sb = live(id);
        end(sb, "killed by a client");
    }

    private void end(Sandbox sb, String why) {
        boolean wasPaused;
        synchronized (sb) {
            if (!sb.isLive()) return;
            wasPaused = sb.isPaused();
            sb.ended(why);
        }
        try {
            if (wasPaused) {
                // Thawed first, so that its processes take their SIGKILL at once.
                try {
                    runtimeOf(sb).resume(sb.id());
                } catch (RuntimeFailure e) {
                    LOG.log(Level.FINE, "resuming paused sandbox " + sb.id() + " before its end failed", e);
                }
            }
            runtimeOf(sb).destroy(sb.id());
        } finally {
            closeEgress(sb);
            sb.owner().lease().close();
            try {
                registry.remove(sb.id());
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "removing the record of sandbox " + sb.id() + " failed; the next start removes it", e);
            }
            synchronized (tombstones) {
                tombstones.put(sb.id(), sb.accessToken());
            }
            sandboxes.remove(sb.id());
            slots.remove((int) (sb.uidBase() / 65536));
        }
    }

    /** Replaces a running sandbox's network policy; open connections it now refuses are cut. */
    public void setNetwork(String id, NetworkPolicy policy) {
        Sandbox sb = live(id);
        checkNetwork(policy);
        if (policy.mode() != NetworkPolicy.Mode.NONE) {
            requireCapability(runtimeOf(sb), Capabilities.NETWORK_ALLOWLIST, "give sandboxes network access");
        }
        SandboxEgress e = sb.egress();
        if (e == null) {
            throw new StockadeError(StockadeError.Code.UNAVAILABLE, "this server runs without an egress proxy:"
                    + " sandbox " + id + " has no network to configure");
        }
        e.setPolicy(policy);
        record(sb);
    }

    /** Egress attempts allowed since the server started (all sandboxes). */
    public long egressAllowedTotal() {
        return egress == null ? 0 : egress.allowedTotal();
    }

    /** Egress attempts refused since the server started (all sandboxes). */
    public long egressRefusedTotal() {
        return egress == null ? 0 : egress.refusedTotal();
    }

    private void checkNetwork(NetworkPolicy p) {
        if (p.mode() == NetworkPolicy.Mode.NONE) return;
        if (egress == null) {
            throw StockadeError.invalid("this server runs without an egress proxy: sandboxes have no network"
                    + " (loopback only); ask for network mode none");
        }
        if (p.mode() == NetworkPolicy.Mode.OPEN && !config.egress().allowOpen()) {
            throw StockadeError.invalid("open internet access is not permitted on this server (the operator's"
                    + " egress.allowOpen is off): list the destinations instead (network.allowOut), and they"
                    + " become an allow-list");
        }
        if (!config.egress().allowOpen()) {
            for (String entry : p.allow()) {
                if (tooBroad(entry)) {
                    throw StockadeError.invalid("network.allowOut entry '" + entry + "' covers so much of the internet"
                            + " that it amounts to open access, which the operator does not permit (egress.allowOpen"
                            + " is off): list narrower ranges (IPv4 /8 or longer, IPv6 /16 or longer) or host names");
                }
            }
        }
    }

    /** An address range wider than an IPv4 /8 or an IPv6 /16 (e.g. E2B's 0.0.0.0/0, "all traffic"). */
    static boolean tooBroad(String entry) {
        String s = entry.startsWith("[") && entry.indexOf(']') > 0 ? entry.substring(1, entry.indexOf(']')) : entry;
        int slash = s.lastIndexOf('/');
        if (slash < 0) return false;
        String bits = s.substring(slash + 1);
        int colon = bits.indexOf(':');
        if (colon >= 0) bits = bits.substring(0, colon);
        try {
            int prefix = Integer.parseInt(bits);
            return prefix < (s.substring(0, slash).contains(":") ? 16 : 8);
        } catch (NumberFormatException e) {
            return false; // the policy parser has already refused malformed entries
        }
    }

    /** Secrets become placeholders bound to their hosts; their names must not clash with envVars. */
    private List<SecretBinding> secrets(CreateRequest req) {
        if (req.secrets().isEmpty()) return List.of();
        if (egress == null) {
            throw StockadeError.invalid("secrets need the egress proxy, which this server runs without");
        }
        List<SecretBinding> out = new ArrayList<>();
        for (var e : req.secrets().entrySet()) {
            String name = e.getKey();
            if (!ENV_KEY.matcher(name).matches()) {
                throw StockadeError.invalid("secret name '" + name + "' is invalid: it must match " + ENV_KEY.pattern());
            }
            if (req.envVars().containsKey(name)) {
                throw StockadeError.invalid("secret " + name + " has the name of an envVars entry: give one of them another name");
            }
            String value = e.getValue().value();
            if (value.isEmpty() || value.length() > 32 * 1024 || value.indexOf('\0') >= 0 || value.indexOf('\r') >= 0
                    || value.indexOf('\n') >= 0) {
                throw StockadeError.invalid("secret " + name + " must be 1 to 32768 characters without NUL or line breaks");
            }
            byte[] t = new byte[16];
            random.nextBytes(t);
            try {
                out.add(new SecretBinding(name, SecretBinding.PREFIX + HexFormat.of().formatHex(t), value,
                        e.getValue().hosts()));
            } catch (IllegalArgumentException bad) {
                throw StockadeError.invalid("secret " + name + ": " + bad.getMessage());
            }
        }
        return out;
    }

    private void closeEgress(Sandbox sb) {
        SandboxEgress e = sb.egress();
        if (e == null) return;
        try {
            e.close();
        } catch (RuntimeException ex) {
            LOG.log(Level.WARNING, "closing the egress of sandbox " + sb.id() + " failed", ex);
        }
        removeEgressDir(sb.id());
    }

    /**
     * DATA/egress/ID/proxy.sock: the sandbox sees the directory (SandboxSpec.EGRESS_DIR_INSIDE), so a
     * socket bound there again by a later server is the one its relay reaches.
     */
    private Path egressSocketOf(String id) {
        return egressSockets.resolve(id).resolve(SandboxSpec.EGRESS_SOCKET_NAME);
    }

    /** Egress directories of sandboxes this server does not keep (an earlier server's). */
    private void removeEgressDirsExcept(Set<String> keep) {
        if (egressSockets == null || !Files.isDirectory(egressSockets)) return;
        try (var entries = Files.list(egressSockets)) {
            for (Path p : entries.toList()) {
                String name = p.getFileName().toString();
                if (keep.contains(name)) continue;
                if (Files.isDirectory(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) removeEgressDir(name);
                else Files.deleteIfExists(p);
            }
        } catch (IOException ex) {
            LOG.log(Level.WARNING, "cleaning " + egressSockets + " failed", ex);
        }
    }

    private void removeEgressDir(String id) {
        if (egressSockets == null) return;
        Path dir = egressSockets.resolve(id);
        try {
            Files.deleteIfExists(dir.resolve(SandboxSpec.EGRESS_SOCKET_NAME));
            Files.deleteIfExists(dir);
        } catch (IOException ex) {
            LOG.log(Level.WARNING, "removing the egress directory " + dir + " failed", ex);
        }
    }

    private void reapLoop() {
        long ticks = 0;
        while (!closed.get()) {
            try {
                Thread.sleep(250);
                if (++ticks % 4 == 0) {
                    endVanished();
                    endIdle();
                }
                Instant now = Instant.now();
                for (Sandbox sb : sandboxes.values()) {
                    if (sb.isRunning() && !sb.copying() && !sb.endAt().isAfter(now)) {
                        try {
                            if (sb.autoPause() && runtimeOf(sb).capabilities().contains(Capabilities.PAUSE)) {
                                try {
                                    pause(sb.id());
                                    continue;
                                } catch (StockadeError e) {
                                    LOG.log(Level.WARNING, "pausing expired sandbox " + sb.id() + " failed; ending it", e);
                                }
                            }
                            end(sb, "expired: its timeout passed");
                        } catch (RuntimeException e) {
                            LOG.log(Level.WARNING, "ending expired sandbox " + sb.id() + " failed", e);
                        }
                    }
                }
            } catch (InterruptedException e) {
                return;
            }
        }
    }

    /**
     * A sandbox whose container stopped behind the server's back (its init, the agent, was killed
     * from the host or died) is ended and reported lost to its owner, with why; nothing of it stays.
     */
    private void endVanished() {
        for (Sandbox sb : sandboxes.values()) {
            long pid = sb.initPid();
            if (!sb.isLive() || pid <= 0 || ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) continue;
            java.util.Optional<String> reason = runtimeOf(sb).endReason(sb.id());
            reason.ifPresent(sb::stoppedBecause);
            String why = reason.orElse("its container stopped while it ran (its init, the agent, exited or was killed on the host)");
            synchronized (lostSandboxes) {
                lostSandboxes.put(sb.id(), new Lost(sb.tenant(), why));
            }
            LOG.warning("sandbox " + sb.id() + " of tenant " + sb.tenant() + " is lost: " + why);
            try {
                end(sb, "lost: " + why);
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "removing lost sandbox " + sb.id() + " failed", e);
            }
        }
    }

    /**
     * The idle policy: a running sandbox with an idle timeout, no request in flight, no activity for
     * that long and no process of the user's running (its interpreter contexts and the relay do not
     * count; a background job does) pauses (with autoPause) or ends.
     */
    private void endIdle() {
        long now = System.nanoTime();
        for (Sandbox sb : sandboxes.values()) {
            int idle = sb.idleTimeoutSeconds();
            if (idle <= 0 || !sb.isRunning() || sb.copying() || sb.requestsInFlight() > 0) continue;
            if (now - sb.lastActivityNanos() < idle * 1_000_000_000L) continue;
            boolean busy = userProcesses(sb).stream().anyMatch(cmd -> !cmd.contains("/opt/stockade/"));
            if (busy) {
                sb.touch(); // a job still runs: activity; look again after another idle period
                continue;
            }
            try {
                if (sb.autoPause() && runtimeOf(sb).capabilities().contains(Capabilities.PAUSE)) {
                    pause(sb.id());
                } else {
                    end(sb, "idle: no request, stream or process for " + idle + " s (its idleTimeout)");
                }
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "ending idle sandbox " + sb.id() + " failed", e);
            }
        }
    }

    /**
     * The command lines of the sandbox's processes (other than its init), for the idle policy: read
     * on the host where the runtime can (runc: the cgroup), else asked of the agent (a runtime with a
     * kernel of its own: the processes the agent started that still run — a process they left
     * behind after exiting is not seen). Unknown counts as busy.
     */
    private List<String> userProcesses(Sandbox sb) {
        SandboxRuntime runtime = runtimeOf(sb);
        if (!runtime.capabilities().contains(Capabilities.USERSPACE_KERNEL)) return runtime.processCommands(sb.id());
        try {
            return sb.agent().listProcesses().stream().map(p -> String.join(" ", p.argv())).toList();
        } catch (RuntimeException e) {
            return List.of("(unknown: " + e.getMessage() + ")");
        }
    }

    private void checkTimeout(int seconds) {
        if (seconds < 1 || seconds > config.maxTimeoutSeconds()) {
            throw StockadeError.invalid("timeout must be between 1 and " + config.maxTimeoutSeconds() + " seconds, got " + seconds);
        }
    }

    private Limits resolveLimits(CreateRequest.LimitsRequest r) {
        Limits d = config.defaultLimits();
        Limits max = config.maxLimits();
        int memory = pick("memoryMB", r.memoryMB(), d.memoryMB(), 64, max.memoryMB());
        double cpus = r.cpus() == null ? d.cpus() : r.cpus();
        if (!(cpus >= 0.05 && cpus <= max.cpus())) {
            throw StockadeError.invalid("limits.cpus must be between 0.05 and " + max.cpus() + ", got " + cpus);
        }
        int pids = pick("pids", r.pids(), d.pids(), 16, max.pids());
        int disk = pick("diskMB", r.diskMB(), d.diskMB(), 16, max.diskMB());
        int output = pick("outputMB", r.outputMB(), d.outputMB(), 1, max.outputMB());
        int cmd = pick("commandTimeoutSeconds", r.commandTimeoutSeconds(), d.commandTimeoutSeconds(), 1,
                max.commandTimeoutSeconds());
        return new Limits(memory, cpus, pids, disk, output, cmd);
    }

    private static int pick(String name, Integer asked, int dflt, int min, int max) {
        int v = asked == null ? dflt : asked;
        if (v < min || v > max) {
            throw StockadeError.invalid("limits." + name + " must be between " + min + " and " + max
                    + " on this server, got " + v + " (limits above the server's maxima are refused, not lowered)");
        }
        return v;
    }

    private static void checkMap(String what, Map<String, String> m, Pattern key, int maxEntries, int maxValue) {
        if (m.size() > maxEntries) throw StockadeError.invalid(what + " has " + m.size() + " entries; at most " + maxEntries);
        for (var e : m.entrySet()) {
            if (!key.matcher(e.getKey()).matches()) {
                throw StockadeError.invalid(what + " key '" + e.getKey() + "' is invalid: it must match " + key.pattern());
            }
            if (e.getValue() == null || e.getValue().length() > maxValue || e.getValue().indexOf('\0') >= 0) {
                throw StockadeError.invalid(what + " value of '" + e.getKey() + "' must be a string of at most " + maxValue
                        + " characters without NUL");
            }
        }
    }

    private String newId() {
        String alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
        StringBuilder b = new StringBuilder(20);
        for (int i = 0; i < 20; i++) b.append(alphabet.charAt(random.nextInt(alphabet.length())));
        return b.toString();
    }

    private String token() {
        byte[] t = new byte[24];
        random.nextBytes(t);
        return HexFormat.of().formatHex(t);
    }

    private int claimSlot() {
        for (int i = 0; i < 1000; i++) {
            int slot = FIRST_SLOT + random.nextInt(LAST_SLOT - FIRST_SLOT);
            if (slots.add(slot)) return slot;
        }
        throw new StockadeError(StockadeError.Code.RESOURCE_EXHAUSTED, "no free user-namespace range for a new sandbox");
    }

    /** Ends every sandbox (the server is stopping). */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) return;
        reaper.interrupt();
        pools.values().forEach(SandboxPool::close);
        List<Thread> enders = new ArrayList<>();
        for (Sandbox sb : sandboxes.values()) {
            enders.add(Thread.ofVirtual().start(() -> {
                try {
                    end(sb, "the server stopped");
                } catch (RuntimeException e) {
                    LOG.log(Level.WARNING, "ending sandbox " + sb.id() + " at shutdown failed", e);
                }
            }));
        }
        for (Thread t : enders) {
            try {
                t.join(Duration.ofSeconds(60));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        // Whatever is still there (a create that raced with close) goes too.
        for (Runtimes.Tier t : runtimes.all()) t.runtime().reapExcept(Set.of());
    }

    /**
     * Stops without ending the sandboxes (an orderly stop of `serve`): they keep running, recorded,
     * for the next server on this data directory to take over. The pool's sandboxes (recorded by
     * nobody) are removed; each sandbox's egress listener is closed, its directory kept (the sandbox
     * sees that directory: the next server binds its socket there again). Returns how many were left.
     */
    public int detach() {
        if (!closed.compareAndSet(false, true)) return 0;
        reaper.interrupt();
        pools.values().forEach(SandboxPool::close);
        int left = 0;
        for (Sandbox sb : sandboxes.values()) {
            if (!sb.isLive()) continue;
            SandboxEgress e = sb.egress();
            if (e != null) {
                try {
                    e.close();
                } catch (RuntimeException ex) {
                    LOG.log(Level.WARNING, "closing the egress of sandbox " + sb.id() + " failed", ex);
                }
            }
            left++;
        }
        return left;
    }
}
