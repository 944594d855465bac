package dev.stockade.server.core;

import dev.stockade.server.error.StockadeError;

import dev.stockade.runtime.ResourceUsage;
import dev.stockade.runtime.RuntimeFailure;
import dev.stockade.runtime.SandboxRuntime;
import dev.stockade.runtime.SandboxSpec;
import dev.stockade.server.config.ServerConfig;
import dev.stockade.server.egress.EgressProxy;
import dev.stockade.server.egress.NetworkPolicy;
import dev.stockade.server.store.Store;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedSet;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The front of sandbox lifecycle, what the API calls: create, look up, pause, resume, extend, kill,
 * snapshot, re-police. It decides whether and with what limits; the runtime decides how. The work is
 * done by the rooms it wires together:
 * {@link CreatePolicy} (a request → a checked {@link CreatePlan}, no I/O),
 * {@link SandboxAssembler} (starts sandboxes and builds every {@link Sandbox}),
 * {@link Lifecycle} (which operation each state allows) and {@link Transitions} (carries them out),
 * {@link SandboxTable} (ids, slots, tokens, tombstones, lost sandboxes),
 * {@link SandboxRegistry} (the store's record), {@link Recovery} (take-over at start),
 * {@link Reaper} (timeouts, idle policy, vanished containers), {@link UsageSampler} (resource usage
 * history), {@link Pools} and {@link EgressDirs}.
 *
 * <p>Called from API handler threads (virtual threads) concurrently; a sandbox's state changes under
 * its own monitor. The reaper runs on its own virtual thread and ends sandboxes through {@link Transitions}.
 */
public final class SandboxManager implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(SandboxManager.class.getName());
    /** Template names the E2B SDKs send by default, all served by the host-Python template. */
    public static final Set<String> DEFAULT_TEMPLATE_NAMES = CreatePolicy.DEFAULT_TEMPLATE_NAMES;

    private final Runtimes runtimes;
    private final SandboxTable table = new SandboxTable();
    private final SandboxRegistry registry;
    private final Snapshots snapshots;
    private final EgressDirs egress;
    private final CreatePolicy policy;
    private final SandboxAssembler assembler;
    private final Transitions transitions;
    private final Pools pools;
    private final Reaper reaper;
    private final UsageSampler usage;
    private final AtomicBoolean closed = new AtomicBoolean();

    /**
     * @param egress the egress proxy every sandbox's traffic leaves through; null: sandboxes get no
     *     egress path at all (loopback only, whatever they ask for)
     * @param egressSockets a directory owned by the server where each sandbox's proxy socket is bound
     * @param store where the sandboxes are recorded, so that a server started after a crash takes
     *     them over (null: nothing is recorded, and a start removes whatever an earlier server left)
     * @param snapshotsDir where snapshots' files are kept (with a store; null: no snapshots)
     * @param quotas gives each sandbox taken over its share of its owner's quota again
     */
    public SandboxManager(ServerConfig config, Runtimes runtimes, Path agentDir, EgressProxy egress, Path egressSockets,
                          Store store, Path snapshotsDir, Admission quotas) {
        this(config, runtimes, agentDir, egress, egressSockets, store, snapshotsDir, quotas, TemplateCatalog.NONE);
    }

    /** @param templates the tenants' templates built through the Template API (issue 17) */
    public SandboxManager(ServerConfig config, Runtimes runtimes, Path agentDir, EgressProxy egress, Path egressSockets,
                          Store store, Path snapshotsDir, Admission quotas, TemplateCatalog templates) {
        this.runtimes = runtimes;
        this.registry = new SandboxRegistry(store);
        this.snapshots = store == null || snapshotsDir == null ? null : new Snapshots(store, snapshotsDir);
        this.egress = new EgressDirs(egress, egressSockets);
        this.policy = new CreatePolicy(config, CreatePolicy.Catalog.of(runtimes), egress != null,
                snapshots == null ? (owner, name) -> null : snapshots::find, templates, new SecureRandom());
        this.assembler = new SandboxAssembler(table, this.egress, agentDir, config.defaultLimits(), config.outputBytesPerSecond(),
                config.concurrentStarts());
        new Recovery(registry, runtimes, table, assembler, this.egress, quotas).run();
        this.transitions = new Transitions(runtimes, registry, table, this.egress);
        this.reaper = new Reaper(table, runtimes, transitions);
        this.usage = new UsageSampler(table, runtimes);
        this.pools = new Pools(config.pool(), runtimes, assembler);
    }

    /**
     * What a runtime says of itself: its name, whether this server offers it (and if not, why), its
     * isolation, its optional features, and its pool ({@code pool} null without one).
     */
    public record RuntimeInfo(String name, boolean isDefault, boolean available, String reason, String isolation,
                              SortedSet<String> capabilities, int poolReady, PoolStatus pool, Map<String, PoolStatus> pools,
                              StartTurns.Status starts) {}

    /** Every runtime installed: those offered (the default first), then those this host cannot run. */
    public List<RuntimeInfo> runtimeInfo() {
        List<RuntimeInfo> out = new ArrayList<>();
        for (Runtimes.Tier t : runtimes.all()) {
            out.add(new RuntimeInfo(t.name(), t.name().equals(runtimes.defaultName()), true, null,
                    t.runtime().isolation(), new TreeSet<>(t.runtime().capabilities()), pools.ready(t.name()),
                    pools.status(t.name()), pools.statuses(t.name()), assembler.startStatus(t.name())));
        }
        runtimes.unavailable().keySet().forEach(name -> out.add(new RuntimeInfo(name, false, false, runtimes.clientReason(name), null,
                new TreeSet<>(), 0, null, Map.of(), null)));
        return out;
    }

    /** Ready sandboxes in the pools now (0 without a pool). */
    public int poolReady() {
        return pools.readyTotal();
    }

    /**
     * Creates a sandbox owned by {@code owner}. Once the request's limits are resolved, the admission
     * decides whether the owner may have it; its lease is held until the sandbox ends.
     */
    public Sandbox create(CreateRequest req, String owner, Admission admission) {
        if (closed.get()) throw new StockadeError(StockadeError.Code.UNAVAILABLE, "the server is shutting down");
        CreatePlan plan = policy.plan(req, owner, table.size());
        Runtimes.Tier tier = runtimes.require(plan.runtime());
        Admission.Lease lease = admission.admit(owner, plan.limits());
        Sandbox.Owner who = new Sandbox.Owner(owner, lease);
        pools.createStarted();
        boolean created = false;
        try {
            SandboxAssembler.Prepared p = plan.poolable() ? handOver(pools.take(tier.name(), plan.alias()), plan) : null;
            if (p == null) {
                Path seedFiles = plan.seed() == null ? null : snapshots.filesOf(plan.seed().id());
                p = assembler.start(tier, plan.limits(), plan.network(), plan.secrets(), SandboxSpec.Warmup.NONE, seedFiles);
            }
            // A failure from here on has ended the sandbox (and given its share back): it propagates.
            Sandbox sb = activate(p, plan, who);
            created = true;
            return sb;
        } finally {
            if (!created) lease.close();
            pools.createEnded();
        }
    }

    /** A pooled sandbox given the plan's limits, network and secrets; null (and it removed) if that fails. */
    private SandboxAssembler.Prepared handOver(SandboxAssembler.Prepared p, CreatePlan plan) {
        if (p == null) return null;
        try {
            SandboxRuntime runtime = p.tier().runtime();
            runtime.setBackground(p.id(), false);
            if (!p.limits().equals(plan.limits())) runtime.update(p.id(), plan.limits());
            if (p.egress() != null) p.egress().handOver(plan.network(), plan.secrets());
            return p;
        } catch (RuntimeFailure | StockadeError e) {
            LOG.log(Level.INFO, "a pooled sandbox could not be handed over; starting a fresh one", e);
            assembler.discard(p);
            return null;
        }
    }

    /** Makes a prepared sandbox its owner's: visible, and recorded before the create answers. */
    private Sandbox activate(SandboxAssembler.Prepared p, CreatePlan plan, Sandbox.Owner owner) {
        Sandbox sb = assembler.activate(p, plan, owner);
        table.put(sb);
        if (closed.get()) {
            transitions.end(sb, "the server stopped");
            throw new StockadeError(StockadeError.Code.UNAVAILABLE, "the server is shutting down");
        }
        try {
            // Recorded before the create answers: an acknowledged sandbox survives a crash of the server.
            registry.put(sb);
        } catch (RuntimeException e) {
            transitions.end(sb, "it could not be recorded");
            LOG.log(Level.WARNING, "sandbox " + sb.id() + " could not be recorded in the store", e);
            throw new StockadeError(StockadeError.Code.UNAVAILABLE, "sandbox " + sb.id() + " could not be recorded in the"
                    + " store; it was removed. The server's log has why (check the disk of its data directory).", e);
        }
        return sb;
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
        return table.access(id, token);
    }

    /** A running sandbox, or NOT_FOUND (the same answer for never-existed, ended and starting); CONFLICT if paused. */
    public Sandbox get(String id) {
        Sandbox sb = table.find(id);
        if (sb == null) throw notFound(id);
        Lifecycle.allow(sb.state(), Lifecycle.Operation.USE, id);
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

    /**
     * The answer for a sandbox {@code tenant} may not see: for its own sandbox that was lost at a
     * restart, why; for everything else the one not-found answer.
     */
    public StockadeError notFoundFor(String tenant, String id) {
        return table.notFoundFor(tenant, id);
    }

    /** A running or paused sandbox (its owner may see, kill, resume it), or NOT_FOUND. */
    public Sandbox live(String id) {
        Sandbox sb = table.find(id);
        if (sb == null || !sb.isLive()) throw notFound(id);
        return sb;
    }

    /** The sandbox with this id whatever its state, or null: for ownership checks, never for use. */
    public Sandbox find(String id) {
        return table.find(id);
    }

    public List<Sandbox> list() {
        return table.live();
    }

    /**
     * Freezes a running sandbox (the runtime's cgroup freezer): no CPU; memory, processes, files and
     * interpreter contexts kept. Its timeout stops while it is paused. CONFLICT if already paused.
     */
    public void pause(String id) {
        transitions.pause(live(id));
    }

    /**
     * Resumes a paused sandbox where it was (E2B's connect); its timeout runs again from what was left
     * at the pause, or {@code timeoutSeconds} when given. A running sandbox's timeout is extended to
     * {@code timeoutSeconds} from now, never shortened.
     */
    public Sandbox resume(String id, Integer timeoutSeconds) {
        if (timeoutSeconds != null) policy.checkTimeout(timeoutSeconds);
        Sandbox sb = live(id);
        transitions.resume(sb, timeoutSeconds);
        return sb;
    }

    /**
     * A running or paused sandbox's resource usage samples taken from {@code from} to {@code to}
     * (the last 15 minutes are kept), oldest first; NOT_FOUND once it has ended.
     */
    public List<UsageSample> usage(String id, Instant from, Instant to) {
        live(id);
        return usage.between(id, from, to);
    }

    /**
     * Bytes free on a sandbox's disk now, as its runtime reads them on the host (its disk is a
     * filesystem of its own); -1 when the runtime cannot tell. The files API refuses an upload
     * that cannot fit before writing any of it.
     */
    public long diskFree(Sandbox sb) {
        try {
            ResourceUsage u = runtimes.of(sb).stats(sb.id());
            return Math.max(0, u.diskTotalBytes() - u.diskUsedBytes());
        } catch (RuntimeFailure e) {
            return -1;
        }
    }

    /**
     * A running sandbox's timeout from now. As E2B's API does, a timeout of 0 or less means now: the
     * sandbox reaches its end of life at once (killed, or paused with autoPause), which the E2B SDKs'
     * {@code setTimeout(0)} relies on. A paused sandbox's timeout (counted from its resume) must be
     * a valid one.
     */
    public void setTimeout(String id, int seconds) {
        Sandbox sb = live(id);
        if (seconds > 0 || sb.isPaused()) policy.checkTimeout(seconds);
        transitions.setTimeout(sb, Math.max(0, seconds));
    }

    /**
     * Snapshots a sandbox's files (see {@link Snapshots#take}); with {@code memory} its memory and
     * processes too, which no runtime offers yet (a 400 naming the capability).
     */
    public Snapshots.Snapshot snapshot(String id, String tenant, String name, boolean memory) {
        if (snapshots == null) throw StockadeError.invalid("this server cannot snapshot sandboxes (it runs without a store)");
        snapshots.checkName(tenant, name);
        Sandbox sb = live(id);
        return snapshots.take(sb, runtimes.of(sb), tenant, name, memory);
    }

    /** The tenant's snapshots (none without a store). */
    public Snapshots snapshots() {
        if (snapshots == null) throw StockadeError.invalid("this server keeps no snapshots (it runs without a store)");
        return snapshots;
    }

    /** Ends the sandbox and removes everything of it; NOT_FOUND if it is not running. */
    public void kill(String id) {
        transitions.end(live(id), "killed by a client");
    }

    /** Replaces a running sandbox's network policy; open connections it now refuses are cut. */
    public void setNetwork(String id, NetworkPolicy policy) {
        Sandbox sb = live(id);
        this.policy.checkNetwork(policy);
        transitions.setNetwork(sb, policy);
    }

    /** Egress attempts allowed since the server started (all sandboxes). */
    public long egressAllowedTotal() {
        return egress.allowedTotal();
    }

    /** Egress attempts refused since the server started (all sandboxes). */
    public long egressRefusedTotal() {
        return egress.refusedTotal();
    }

    /** Ends every sandbox (the server is stopping). */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) return;
        reaper.close();
        usage.close();
        pools.close();
        List<Thread> enders = new ArrayList<>();
        for (Sandbox sb : table.all()) {
            enders.add(Thread.ofVirtual().start(() -> {
                try {
                    transitions.end(sb, "the server stopped");
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
        for (Runtimes.Tier t : runtimes.all()) {
            t.runtime().reapExcept(Set.of());
            t.runtime().close();
        }
    }

    /**
     * Stops without ending the sandboxes (an orderly stop of `serve`): they keep running, recorded,
     * for the next server on this data directory to take over. The pool's sandboxes (recorded by
     * nobody) are removed; each sandbox's egress listener is closed, its directory kept (the sandbox
     * sees that directory: the next server binds its socket there again). Returns how many were left.
     */
    public int detach() {
        if (!closed.compareAndSet(false, true)) return 0;
        reaper.close();
        usage.close();
        pools.close();
        int left = 0;
        for (Sandbox sb : table.all()) {
            if (!sb.isLive()) continue;
            egress.closeListener(sb.id(), sb.egress());
            left++;
        }
        // What the runtimes hold for all sandboxes (layers' id maps); the mounts already made keep theirs.
        for (Runtimes.Tier t : runtimes.all()) t.runtime().close();
        return left;
    }
}
