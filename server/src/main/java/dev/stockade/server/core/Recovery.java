package dev.stockade.server.core;

import dev.stockade.protocol.AgentException;
import dev.stockade.protocol.link.AgentClient;
import dev.stockade.runtime.RuntimeSandbox;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * What a server does at start with what an earlier one left: it serves again the sandboxes that were
 * recorded and still run (an earlier server crashed or was stopped with {@code detach}), reports lost
 * those whose container is gone, keeps untouched those whose runtime it does not offer, and removes
 * everything else (containers and egress directories nobody recorded). Runs once, on the thread that
 * constructs {@link SandboxManager}, before any request is served; it probes the recorded sandboxes
 * on virtual threads of its own, all at once under one deadline ({@link #probeAll}).
 */
final class Recovery {
    private static final Logger LOG = Logger.getLogger(Recovery.class.getName());
    /** Runtime calls (runc/runsc processes) at once while probing. */
    private static final int RUNTIME_CALLS = 16;
    /**
     * The whole probe's bound: a hello waits {@link SandboxAssembler#AGENT_TAKE_OVER_TIMEOUT} and they
     * all wait together, so this only cuts a runtime that hangs (or thousands of sandboxes queued
     * for {@link #RUNTIME_CALLS}).
     */
    private static final Duration DEADLINE = Duration.ofSeconds(30);

    private final SandboxRegistry registry;
    private final Runtimes runtimes;
    private final SandboxTable table;
    private final SandboxAssembler assembler;
    private final EgressDirs egress;
    private final Admission quotas;

    /** @param quotas gives each sandbox taken over its share of its owner's quota again */
    Recovery(SandboxRegistry registry, Runtimes runtimes, SandboxTable table, SandboxAssembler assembler, EgressDirs egress,
             Admission quotas) {
        this.registry = registry;
        this.runtimes = runtimes;
        this.table = table;
        this.assembler = assembler;
        this.egress = egress;
        this.quotas = quotas;
    }

    /** Takes over what it can, then removes what nobody keeps. */
    void run() {
        long t = System.nanoTime();
        Set<String> keep = takeOver();
        if (!keep.isEmpty()) {
            LOG.info(String.format("took over %d sandbox(es) of an earlier run in %.0f ms", keep.size(), (System.nanoTime() - t) / 1e6));
        }
        for (Runtimes.Tier tier : runtimes.all()) {
            Set<String> reaped = tier.runtime().reapExcept(keep);
            if (!reaped.isEmpty()) {
                LOG.info("removed " + reaped.size() + " " + tier.name() + " sandbox(es) left behind by an earlier run: " + reaped);
            }
        }
        egress.removeExcept(keep);
    }

    /**
     * Serves again the sandboxes an earlier server recorded and left running: the same ids, tokens,
     * owners, limits, deadlines, environment, network policy and secrets; their files, processes and
     * interpreter contexts never stopped. A sandbox whose container is gone is reported as lost to its
     * owner (never silently recreated) and its record removed. Returns the ids kept.
     *
     * <p>Two phases. Probing (the runtime's view, then the agent's hello) waits on other processes
     * and on sockets a sandbox's root controls, so it runs for all sandboxes at once under one
     * deadline: a silent agent costs its own sandbox the hello timeout, never the others their turn,
     * and the start waits about one hello timeout however many are silent (issue 15). Putting each
     * sandbox back (egress listener, quota, table, record) is quick and stays on this thread, in the
     * order of the records.
     */
    private Set<String> takeOver() {
        List<String> unreadable = new ArrayList<>();
        List<SandboxRegistry.Row> rows = registry.load(unreadable);
        for (String id : unreadable) {
            LOG.warning("the record of sandbox " + id + " cannot be read; the sandbox is removed");
            registry.remove(id);
        }
        List<Probe> probes = probeAll(rows);
        Set<String> kept = new HashSet<>();
        for (int i = 0; i < rows.size(); i++) {
            SandboxRegistry.Row row = rows.get(i);
            switch (probes.get(i)) {
                case Probe.NotOffered() -> {
                    keepForLater(row);
                    kept.add(row.id());
                }
                case Probe.Gone() -> lost(row, "its container was gone when the server restarted (killed or the host rebooted)"
                        + " — nothing of it could be kept");
                case Probe.Failed(Exception cause) -> failed(row, cause);
                case Probe.Reached r -> {
                    if (restore(row, r)) kept.add(row.id());
                }
            }
        }
        return kept;
    }

    /** Gives a reached sandbox its recorded identity, quota share and deadline back; false if it could not be. */
    private boolean restore(SandboxRegistry.Row row, Probe.Reached r) {
        SandboxAssembler.Prepared p = null;
        Admission.Lease lease = null;
        try {
            p = assembler.reattach(r.tier(), r.sandbox(), r.agent(), row);
            lease = quotas.restore(row.tenant(), row.facts().limits());
            Sandbox sb = assembler.restore(p, row.facts(), new Sandbox.Owner(row.tenant(), lease), row.endAt());
            if (r.paused()) {
                Duration left = row.pausedLeft() != null ? row.pausedLeft() : Duration.between(Instant.now(), row.endAt());
                sb.paused(left.compareTo(Duration.ofSeconds(1)) < 0 ? Duration.ofSeconds(1) : left);
            } else if (row.pausedLeft() != null) {
                // Resumed just before the crash, not yet recorded: its time left runs from now.
                sb.endAt(Instant.now().plus(row.pausedLeft()));
            }
            if (r.paused() != (row.pausedLeft() != null)) registry.update(sb);
            table.reserveSlot(row.slot());
            table.put(sb);
            return true;
        } catch (IOException | RuntimeException ex) {
            if (p != null && p.egress() != null) p.egress().close();
            if (lease != null) lease.close();
            failed(row, ex);
            return false;
        }
    }

    private void failed(SandboxRegistry.Row row, Exception cause) {
        LOG.log(Level.WARNING, "sandbox " + row.id() + " of an earlier run could not be taken over; it is removed", cause);
        // Its owner reads this: the agent's own message names its socket's host path, this does not.
        String why = switch (cause) {
            case AgentException a -> "its agent's hello failed (" + a.code() + ", after at most "
                    + SandboxAssembler.AGENT_TAKE_OVER_TIMEOUT.toSeconds() + " s)";
            case dev.stockade.runtime.RuntimeFailure rf -> dev.stockade.server.error.HostFailure.reason(rf);
            case dev.stockade.server.error.StockadeError se -> se.getMessage();
            // An IOException of the egress socket or the like names host paths: the log above has it.
            default -> "a host-side error (the server's log has the details)";
        };
        lost(row, "the restarted server could not take it over: " + why);
    }

    /** What probing one recorded sandbox found. */
    private sealed interface Probe {
        /** This server does not offer its runtime. */
        record NotOffered() implements Probe {}

        /** Its container is gone. */
        record Gone() implements Probe {}

        /** The runtime failed, the agent did not answer in time, or the deadline passed first. */
        record Failed(Exception cause) implements Probe {}

        /** Running (or paused) and its agent answered (a paused one's agent is not asked). */
        record Reached(Runtimes.Tier tier, RuntimeSandbox sandbox, boolean paused, AgentClient agent) implements Probe {}
    }

    /**
     * Probes every row on a virtual thread of its own, at most {@link #RUNTIME_CALLS} runtime calls
     * (each a runc/runsc process) at a time, the hellos all at once; answers in the order of
     * {@code rows}. What has not answered by {@link #DEADLINE} is Failed, its thread interrupted and
     * not waited for.
     */
    private List<Probe> probeAll(List<SandboxRegistry.Row> rows) {
        Semaphore runtimeCalls = new Semaphore(RUNTIME_CALLS);
        ExecutorService threads = Executors.newThreadPerTaskExecutor(Thread.ofVirtual().name("take-over-", 0).factory());
        try {
            List<Future<Probe>> futures = new ArrayList<>(rows.size());
            for (SandboxRegistry.Row row : rows) futures.add(threads.submit(() -> probe(row, runtimeCalls)));
            long deadline = System.nanoTime() + DEADLINE.toNanos();
            List<Probe> out = new ArrayList<>(rows.size());
            for (Future<Probe> f : futures) {
                try {
                    out.add(f.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS));
                } catch (TimeoutException e) {
                    f.cancel(true);
                    out.add(new Probe.Failed(new TimeoutException("its runtime or agent did not answer within the take-over's "
                            + DEADLINE.toSeconds() + " s")));
                } catch (ExecutionException e) {
                    out.add(new Probe.Failed(e.getCause() instanceof Exception c ? c : e));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    f.cancel(true);
                    out.add(new Probe.Failed(e));
                }
            }
            return out;
        } finally {
            threads.shutdownNow(); // never waits: a probe past the deadline is abandoned, not awaited
        }
    }

    /** Runs on a probe thread: the runtime's view of the sandbox, then its agent's hello. */
    private Probe probe(SandboxRegistry.Row row, Semaphore runtimeCalls) throws InterruptedException {
        String id = row.id();
        Runtimes.Tier tier = runtimes.find(row.facts().runtime());
        if (tier == null) return new Probe.NotOffered();
        RuntimeSandbox rs;
        boolean paused;
        runtimeCalls.acquire();
        try {
            rs = tier.runtime().attach(id);
            if (rs == null) return new Probe.Gone();
            paused = tier.runtime().isPaused(id);
        } catch (RuntimeException e) {
            return new Probe.Failed(e);
        } finally {
            runtimeCalls.release();
        }
        try {
            return new Probe.Reached(tier, rs, paused, SandboxAssembler.reachAgent(rs, paused, row.facts()));
        } catch (RuntimeException e) {
            return new Probe.Failed(e);
        }
    }

    /**
     * A sandbox whose runtime this server does not offer is left exactly as it is, still recorded,
     * its uid range reserved (no new sandbox may share its host uids): a later server that offers the
     * runtime takes it over. Its owner is told why it is not served.
     */
    private void keepForLater(SandboxRegistry.Row row) {
        String runtime = row.facts().runtime();
        table.reserveSlot(row.slot());
        String why = "its runtime " + runtime + " is not available on this server now ("
                + java.util.Objects.requireNonNullElse(runtimes.clientReason(runtime), "not installed")
                + "); it is kept, untouched, for a server that offers " + runtime;
        table.lost(row.id(), row.tenant(), why);
        LOG.warning("sandbox " + row.id() + " of tenant " + row.tenant() + " is not served: " + why);
    }

    /** Records that a sandbox of an earlier run is lost: its owner is told so, and its token answers "gone". */
    private void lost(SandboxRegistry.Row row, String why) {
        registry.remove(row.id());
        table.tombstone(row.id(), row.facts().accessToken());
        table.lost(row.id(), row.tenant(), why);
        LOG.warning("sandbox " + row.id() + " of tenant " + row.tenant() + " is lost: " + why);
    }
}
