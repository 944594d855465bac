package dev.stockade.server.core;

import dev.stockade.runtime.RuntimeSandbox;
import dev.stockade.runtime.SandboxRuntime;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * What a server does at start with what an earlier one left: it serves again the sandboxes that were
 * recorded and still run (an earlier server crashed or was stopped with {@code detach}), reports lost
 * those whose container is gone, keeps untouched those whose runtime it does not offer, and removes
 * everything else (containers and egress directories nobody recorded). Runs once, on the thread that
 * constructs {@link SandboxManager}, before any request is served.
 */
final class Recovery {
    private static final Logger LOG = Logger.getLogger(Recovery.class.getName());

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
     */
    private Set<String> takeOver() {
        List<String> unreadable = new ArrayList<>();
        List<SandboxRegistry.Row> rows = registry.load(unreadable);
        for (String id : unreadable) {
            LOG.warning("the record of sandbox " + id + " cannot be read; the sandbox is removed");
            registry.remove(id);
        }
        Set<String> kept = new HashSet<>();
        for (SandboxRegistry.Row row : rows) {
            String id = row.id();
            SandboxAssembler.Prepared p = null;
            Admission.Lease lease = null;
            try {
                Runtimes.Tier tier = runtimes.find(row.facts().runtime());
                if (tier == null) {
                    keepForLater(row);
                    kept.add(id);
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
                p = assembler.reattach(tier, rs, paused, row);
                lease = quotas.restore(row.tenant(), row.facts().limits());
                Sandbox sb = assembler.restore(p, row.facts(), new Sandbox.Owner(row.tenant(), lease), row.endAt());
                if (paused) {
                    Duration left = row.pausedLeft() != null ? row.pausedLeft() : Duration.between(Instant.now(), row.endAt());
                    sb.paused(left.compareTo(Duration.ofSeconds(1)) < 0 ? Duration.ofSeconds(1) : left);
                } else if (row.pausedLeft() != null) {
                    // Resumed just before the crash, not yet recorded: its time left runs from now.
                    sb.endAt(Instant.now().plus(row.pausedLeft()));
                }
                if (paused != (row.pausedLeft() != null)) registry.update(sb);
                table.reserveSlot(row.slot());
                table.put(sb);
                kept.add(id);
            } catch (IOException | RuntimeException ex) {
                if (p != null && p.egress() != null) p.egress().close();
                if (lease != null) lease.close();
                LOG.log(Level.WARNING, "sandbox " + id + " of an earlier run could not be taken over; it is removed", ex);
                lost(row, "the restarted server could not take it over: " + ex.getMessage());
            }
        }
        return kept;
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
                + runtimes.unavailable().getOrDefault(runtime, "not installed")
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
