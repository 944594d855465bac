package dev.stockade.server.core;

import dev.stockade.server.error.HostFailure;
import dev.stockade.server.error.StockadeError;

import dev.stockade.runtime.Capabilities;
import dev.stockade.runtime.RuntimeFailure;
import dev.stockade.runtime.SandboxRuntime;
import dev.stockade.server.egress.NetworkPolicy;
import dev.stockade.server.egress.SandboxEgress;
import java.time.Duration;
import java.time.Instant;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Carries out a live sandbox's state changes: asks {@link Lifecycle} whether its state allows the
 * operation, acts on the runtime, changes the {@link Sandbox}, and records the change in the store;
 * an end also gives back everything the sandbox held (container, egress, quota share, record, slot).
 * Each change runs under the sandbox's monitor. Called from request threads (through
 * {@link SandboxManager}) and from the reaper's thread (as its {@link Reaper.Actions}).
 */
final class Transitions implements Reaper.Actions {
    private static final Logger LOG = Logger.getLogger(Transitions.class.getName());

    private final Runtimes runtimes;
    private final SandboxRegistry registry;
    private final SandboxTable table;
    private final EgressDirs egress;

    Transitions(Runtimes runtimes, SandboxRegistry registry, SandboxTable table, EgressDirs egress) {
        this.runtimes = runtimes;
        this.registry = registry;
        this.table = table;
        this.egress = egress;
    }

    /** Freezes a running sandbox; its timeout stops while it is paused. CONFLICT if already paused or while a snapshot copies it. */
    @Override
    public void pause(Sandbox sb) {
        String id = sb.id();
        synchronized (sb) {
            Lifecycle.allow(sb.state(), Lifecycle.Operation.PAUSE, id);
            // A snapshot's copy has frozen it already and thaws it when done: the runtime would
            // refuse a second freeze (a 503 before issue 15); the caller retries after the copy.
            if (sb.copying()) {
                throw new StockadeError(StockadeError.Code.CONFLICT, "sandbox " + id + " is being snapshotted: pause it once the snapshot is done");
            }
            SandboxRuntime runtime = runtimes.of(sb);
            CreatePolicy.requireCapability(runtime.name(), runtime.capabilities(), Capabilities.PAUSE, "pause sandboxes");
            try {
                runtime.pause(id);
            } catch (RuntimeFailure e) {
                throw HostFailure.of(StockadeError.Code.UNAVAILABLE, "pausing sandbox " + id + " failed", e);
            }
            Duration left = Duration.between(Instant.now(), sb.endAt());
            sb.paused(left.compareTo(Duration.ofSeconds(1)) < 0 ? Duration.ofSeconds(1) : left);
            record(sb);
        }
    }

    /**
     * Thaws a paused sandbox, its timeout running again from what was left at the pause or from
     * {@code timeoutSeconds} when given; a running sandbox's deadline moves to {@code timeoutSeconds}
     * from now only when that is later (connect extends, never shortens).
     */
    void resume(Sandbox sb, Integer timeoutSeconds) {
        String id = sb.id();
        synchronized (sb) {
            SandboxState state = sb.state();
            if (Lifecycle.allow(state, Lifecycle.Operation.RESUME, id) == Lifecycle.Effect.RESUMES
                    && state instanceof SandboxState.Paused p) {
                try {
                    runtimes.of(sb).resume(id);
                } catch (RuntimeFailure e) {
                    throw HostFailure.of(StockadeError.Code.UNAVAILABLE, "resuming sandbox " + id + " failed", e);
                }
                sb.endAt(Instant.now().plus(timeoutSeconds == null ? p.remaining() : Duration.ofSeconds(timeoutSeconds)));
                sb.resumed();
            } else if (timeoutSeconds != null) {
                // E2B's connect never shortens a running sandbox's life: a later deadline only.
                Instant asked = Instant.now().plusSeconds(timeoutSeconds);
                if (asked.isAfter(sb.endAt())) sb.endAt(asked);
            }
            record(sb);
        }
    }

    /** A new timeout from now; a paused sandbox's counts from its resume. */
    void setTimeout(Sandbox sb, int seconds) {
        synchronized (sb) {
            Lifecycle.allow(sb.state(), Lifecycle.Operation.SET_TIMEOUT, sb.id());
            if (sb.isPaused()) {
                sb.paused(Duration.ofSeconds(seconds));
            } else {
                sb.endAt(Instant.now().plusSeconds(seconds));
            }
            record(sb);
        }
    }

    /** Replaces the sandbox's network policy (already checked against the operator's rules). */
    void setNetwork(Sandbox sb, NetworkPolicy policy) {
        Lifecycle.allow(sb.state(), Lifecycle.Operation.SET_NETWORK, sb.id());
        if (policy.mode() != NetworkPolicy.Mode.NONE) {
            SandboxRuntime runtime = runtimes.of(sb);
            CreatePolicy.requireCapability(runtime.name(), runtime.capabilities(), Capabilities.NETWORK_ALLOWLIST,
                    "give sandboxes network access");
        }
        SandboxEgress e = sb.egress();
        if (e == null) {
            throw new StockadeError(StockadeError.Code.UNAVAILABLE, "this server runs without an egress proxy:"
                    + " sandbox " + sb.id() + " has no network to configure");
        }
        e.setPolicy(policy);
        record(sb);
    }

    /** Ends a sandbox (a kill, the reaper, a failed create, the server stopping); nothing if it has ended already. */
    @Override
    public void end(Sandbox sb, String why) {
        boolean wasPaused;
        synchronized (sb) {
            if (!sb.isLive()) return;
            Lifecycle.allow(sb.state(), Lifecycle.Operation.KILL, sb.id());
            wasPaused = sb.isPaused();
            sb.ended(why);
        }
        SandboxRuntime runtime = runtimes.of(sb);
        try {
            if (wasPaused) {
                // Thawed first, so that its processes take their SIGKILL at once.
                try {
                    runtime.resume(sb.id());
                } catch (RuntimeFailure e) {
                    LOG.log(Level.FINE, "resuming paused sandbox " + sb.id() + " before its end failed", e);
                }
            }
            runtime.destroy(sb.id());
        } finally {
            egress.close(sb.id(), sb.egress());
            sb.owner().lease().close();
            try {
                registry.remove(sb.id());
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "removing the record of sandbox " + sb.id() + " failed; the next start removes it", e);
            }
            table.remove(sb);
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
}
