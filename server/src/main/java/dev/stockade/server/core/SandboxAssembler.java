package dev.stockade.server.core;

import dev.stockade.server.error.HostFailure;
import dev.stockade.server.error.StockadeError;

import dev.stockade.protocol.link.AgentClient;
import dev.stockade.protocol.AgentException;
import dev.stockade.runtime.Limits;
import dev.stockade.runtime.RuntimeFailure;
import dev.stockade.runtime.RuntimeSandbox;
import dev.stockade.runtime.SandboxRuntime;
import dev.stockade.runtime.SandboxSpec;
import dev.stockade.server.egress.NetworkPolicy;
import dev.stockade.server.egress.SandboxEgress;
import dev.stockade.server.egress.SecretBinding;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.LockSupport;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The one place a {@link Sandbox} is put together. First a container with its agent and egress, nobody's
 * yet ({@link Prepared}): started fresh ({@link #start}), ahead of time for a pool ({@link #startForPool}),
 * or found again after a restart ({@link #reattach}). Then {@link #activate} gives it its user's identity
 * (create and pool hand-over) or {@link #restore} gives back the one recorded (take-over); both build it
 * the same way. Also removes a prepared sandbox nobody will use.
 *
 * <p>Called from request threads, the pool's refill threads and, at start, the recovery.
 */
final class SandboxAssembler implements SandboxPool.Starter {
    private static final Logger LOG = Logger.getLogger(SandboxAssembler.class.getName());
    private static final Duration AGENT_START_TIMEOUT = Duration.ofSeconds(15);
    private static final Duration AGENT_CALL_TIMEOUT = Duration.ofSeconds(30);
    /** How long a restarted server waits for the agent of a sandbox it takes over (all of them at once: {@link Recovery}). */
    static final Duration AGENT_TAKE_OVER_TIMEOUT = Duration.ofSeconds(5);

    /**
     * A started sandbox nobody has yet: its id, uid range, agent and egress. Fresh creates make one
     * and activate it at once; the pool makes them ahead of time; a take-over finds one again.
     */
    record Prepared(String id, Runtimes.Tier tier, int slot, long uidBase, AgentClient agent, SandboxEgress egress,
                    Limits limits, long initPid) {}

    /** How long a start may wait for its turn ({@link StartTurns}) before the create fails as UNAVAILABLE. */
    private static final Duration START_TURN_TIMEOUT = Duration.ofSeconds(60);

    private final Map<String, StartTurns> startTurns = new ConcurrentHashMap<>();
    private final int concurrentStarts;
    private final SandboxTable table;
    private final EgressDirs egress;
    private final Path agentDir;
    private final Limits poolLimits;
    private final long outputBytesPerSecond;

    /**
     * @param poolLimits the limits pooled sandboxes start with (the server's defaults)
     * @param outputBytesPerSecond the rate each sandbox's output is relayed at ({@link OutputPace}; 0: unpaced)
     * @param concurrentStarts how many sandboxes of one tier start at once ({@link StartTurns})
     */
    SandboxAssembler(SandboxTable table, EgressDirs egress, Path agentDir, Limits poolLimits, long outputBytesPerSecond,
                     int concurrentStarts) {
        this.concurrentStarts = concurrentStarts;
        this.table = table;
        this.outputBytesPerSecond = outputBytesPerSecond;
        this.egress = egress;
        this.agentDir = agentDir;
        this.poolLimits = poolLimits;
    }

    /**
     * Starts a sandbox on {@code tier} (with {@code seed}: a snapshot's files on top of its template);
     * on failure nothing of it is left and StockadeError(UNAVAILABLE) says why.
     */
    Prepared start(Runtimes.Tier tier, Limits limits, NetworkPolicy network, List<SecretBinding> secrets,
                   SandboxSpec.Warmup warmup, Path seed) {
        return start(tier, limits, network, secrets, warmup, seed, id -> {});
    }

    /** {@link #start}, telling {@code onId} the sandbox's id before anything of it exists. */
    private Prepared start(Runtimes.Tier tier, Limits limits, NetworkPolicy network, List<SecretBinding> secrets,
                           SandboxSpec.Warmup warmup, Path seed, java.util.function.Consumer<String> onId) {
        SandboxRuntime runtime = tier.runtime();
        StartTurns turns = turns(tier.name());
        turns.begin();
        boolean turnHeld = true;
        String id;
        int slot;
        try {
            id = table.newId();
            onId.accept(id);
            slot = table.claimSlot();
        } catch (RuntimeException ex) {
            turns.end();
            throw ex;
        }
        long uidBase = (long) slot * 65536;
        SandboxEgress e = null;
        try {
            Path egressSocket = egress.socketOf(id);
            try {
                e = egress.open(id, uidBase, network, secrets);
            } catch (IOException io) {
                throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR,
                        "cannot open the sandbox's egress socket " + egressSocket + ": " + io.getMessage());
            }
            RuntimeSandbox rs = runtime.start(new SandboxSpec(id, uidBase, tier.sandboxesRoot().resolve(id), tier.template(),
                    agentDir, limits, egressSocket, warmup, seed));
            // The agent runs as the sandbox's root, i.e. host uid uidBase: every connection is
            // checked against it, so a socket replaced from inside the sandbox leads nowhere.
            AgentClient agent = AgentClient.unix(rs.agentSocket(), AGENT_CALL_TIMEOUT, uidBase);
            long helloFrom = System.nanoTime();
            awaitSocket(rs.agentSocket(), helloFrom + AGENT_START_TIMEOUT.toNanos());
            agent.hello(AGENT_START_TIMEOUT.minusNanos(System.nanoTime() - helloFrom));
            // The start's CPU-bound part is over: the next start's turn (a pool's warm-up below runs in the background).
            turns.end();
            turnHeld = false;
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
            egress.close(id, e);
            table.releaseSlot(slot);
            // The runtime's own words (runc's stderr, host paths) go to the log; the agent link's name none.
            throw ex instanceof RuntimeFailure rf ? HostFailure.of(StockadeError.Code.UNAVAILABLE, "starting sandbox " + id + " failed", rf)
                    : new StockadeError(StockadeError.Code.UNAVAILABLE, "starting sandbox " + id + " failed: " + ex.getMessage(), ex);
        } finally {
            if (turnHeld) turns.end();
        }
    }

    private StartTurns turns(String tier) {
        return startTurns.computeIfAbsent(tier, t -> new StartTurns(concurrentStarts, START_TURN_TIMEOUT));
    }

    /** How {@code tier}'s starts take turns now. */
    StartTurns.Status startStatus(String tier) {
        return turns(tier).status();
    }

    /** How often a starting sandbox's directory is looked at for the agent's socket. */
    private static final long SOCKET_POLL_NANOS = 200_000;

    /**
     * Waits until the agent's socket exists (or the deadline passes; hello then says why). The
     * agent binds it ~10 ms after its container starts and listens microseconds later; a stat every
     * 0.2 ms finds it within that (a few microseconds each), where hello's connect attempts, each
     * a refused connection and two exceptions, back off to 4 ms apart (issue 16: ~2 ms of a cold
     * create went to that back-off).
     */
    private static void awaitSocket(Path socket, long deadline) {
        while (!Files.exists(socket, LinkOption.NOFOLLOW_LINKS) && System.nanoTime() < deadline) {
            LockSupport.parkNanos(SOCKET_POLL_NANOS);
            if (Thread.currentThread().isInterrupted()) return;
        }
    }

    /** A sandbox for a pool: the server's default limits, no network, no secrets, its first command already run. */
    @Override
    public Prepared startForPool(Runtimes.Tier tier, SandboxSpec.Warmup warmup, java.util.function.Consumer<String> onId) {
        Prepared p = start(tier, poolLimits, NetworkPolicy.none(), List.of(), warmup, null, onId);
        warmUpCommand(p);
        return p;
    }

    /**
     * Reaches again the agent of a sandbox an earlier server left running (unless it is paused: a
     * frozen agent cannot answer), waiting at most {@link #AGENT_TAKE_OVER_TIMEOUT}: an agent that
     * stays silent (its socket replaced from inside) fails with TIMEOUT. Runs on the take-over's
     * probe threads, for many sandboxes at once.
     */
    static AgentClient reachAgent(RuntimeSandbox rs, boolean paused, Sandbox.Facts f) {
        AgentClient agent = AgentClient.unix(rs.agentSocket(), AGENT_CALL_TIMEOUT, f.uidBase());
        if (!paused) agent.hello(AGENT_TAKE_OVER_TIMEOUT);
        return agent;
    }

    /**
     * The sandbox of an earlier server recorded as {@code row}, found running ({@code rs}) and its
     * agent reached ({@link #reachAgent}): its egress listener bound again on the same path. The slot
     * is the caller's to reserve.
     */
    Prepared reattach(Runtimes.Tier tier, RuntimeSandbox rs, AgentClient agent, SandboxRegistry.Row row) throws IOException {
        Sandbox.Facts f = row.facts();
        SandboxEgress e = egress.open(f.id(), f.uidBase(), row.network(), f.secrets());
        return new Prepared(f.id(), tier, f.slot(), f.uidBase(), agent, e, f.limits(), rs.initPid());
    }

    /** Gives a prepared sandbox its user's identity: a new token, metadata, environment, deadline. */
    Sandbox activate(Prepared p, CreatePlan plan, Sandbox.Owner owner) {
        // Millisecond precision: list order and paging cursors (api/SandboxListApi) use the same key.
        Instant now = Instant.now().truncatedTo(ChronoUnit.MILLIS);
        var facts = new Sandbox.Facts(p.id(), plan.templateId(), plan.alias(), p.tier().name(), plan.metadata(),
                plan.processEnv(), plan.secrets(), plan.limits(), now, table.newToken(), p.uidBase(), plan.autoPause(),
                plan.idleTimeoutSeconds(), plan.seed() == null ? null : plan.seed().id(), plan.defaultUser());
        return assemble(p, facts, owner, now.plusSeconds(plan.timeoutSeconds()));
    }

    /** Gives a re-attached sandbox the identity recorded for it. */
    Sandbox restore(Prepared p, Sandbox.Facts facts, Sandbox.Owner owner, Instant endAt) {
        return assemble(p, facts, owner, endAt);
    }

    private Sandbox assemble(Prepared p, Sandbox.Facts facts, Sandbox.Owner owner, Instant endAt) {
        SandboxRuntime runtime = p.tier().runtime();
        long initPid = p.initPid();
        // The burst is one output limit's worth: a single run's whole output goes at full speed.
        OutputPace pace = OutputPace.of(outputBytesPerSecond, facts.limits().outputMB() * 1024L * 1024L);
        Sandbox sb = new Sandbox(facts, owner, endAt, p.egress(), initPid, s -> endReasonOnceStopped(s, runtime, initPid), pace);
        sb.running(p.agent());
        return sb;
    }

    /**
     * Runs one throw-away command in a pooled sandbox before it counts as ready, so that the first
     * command of whoever takes it does not pay for the agent's first spawn (its reaper and pump
     * threads, the shell's first start: ~6 ms under runc, ~45 ms under gVisor's ptrace platform).
     * Leaves nothing behind: the command exits and writes no file. A failure is logged, not fatal.
     */
    private static void warmUpCommand(Prepared p) {
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
    private static Optional<String> endReasonOnceStopped(Sandbox sb, SandboxRuntime runtime, long initPid) {
        for (int i = 0; i < 20; i++) {
            // The reaper may have ended it meanwhile (and removed the runtime's evidence): it kept why.
            if (sb.stoppedBecause() != null) return Optional.of(sb.stoppedBecause());
            // The runtime's own view: a dead sentry's host process may linger (a zombie, or the
            // gofer) for a while, but the runtime already reports the container stopped.
            boolean stopped;
            try {
                stopped = !runtime.isAlive(sb.id());
            } catch (RuntimeException e) {
                stopped = initPid > 0 && !ProcessHandle.of(initPid).map(ProcessHandle::isAlive).orElse(false);
            }
            if (stopped) {
                Optional<String> why = runtime.endReason(sb.id());
                return why.isPresent() || sb.stoppedBecause() == null ? why : Optional.of(sb.stoppedBecause());
            }
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return Optional.empty();
            }
        }
        return Optional.empty();
    }

    /**
     * Removes the container of a pooled sandbox still starting (the server is stopping): its start
     * then fails and cleans up after itself (egress, slot), or, had it just finished, is discarded.
     */
    @Override
    public void abandon(Runtimes.Tier tier, String id) {
        try {
            tier.runtime().destroy(id);
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "removing pooled sandbox " + id + " while it started failed", e);
        }
    }

    /** Removes a prepared sandbox nobody will use. */
    @Override
    public void discard(Prepared p) {
        try {
            p.tier().runtime().destroy(p.id());
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "removing pooled sandbox " + p.id() + " failed", e);
        } finally {
            egress.close(p.id(), p.egress());
            table.releaseSlot(p.slot());
        }
    }
}
