package dev.stockade.server.core;

import dev.stockade.server.error.StockadeError;

import dev.stockade.runtime.Capabilities;
import dev.stockade.runtime.SandboxRuntime;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Ends sandboxes nobody ends by hand, on its own virtual thread: every 250 ms those whose timeout has
 * passed (paused instead with autoPause, where the runtime can pause), every second those whose
 * container stopped behind the server's back (reported lost to their owner) and those idle for their
 * idle timeout. It decides when; the ending itself goes through {@link Actions} ({@link Transitions},
 * so a reaped sandbox ends exactly as a killed one does).
 */
final class Reaper implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Reaper.class.getName());

    /** What the reaper does to a sandbox once it has decided. */
    interface Actions {
        void pause(Sandbox sb);

        void end(Sandbox sb, String why);
    }

    private final SandboxTable table;
    private final Runtimes runtimes;
    private final Actions actions;
    private final Thread thread;

    Reaper(SandboxTable table, Runtimes runtimes, Actions actions) {
        this.table = table;
        this.runtimes = runtimes;
        this.actions = actions;
        this.thread = Thread.ofVirtual().name("stockade-reaper").start(this::loop);
    }

    private void loop() {
        long ticks = 0;
        while (!Thread.currentThread().isInterrupted()) {
            try {
                Thread.sleep(250);
            } catch (InterruptedException e) {
                return;
            }
            if (++ticks % 4 == 0) {
                endVanished();
                endIdle();
            }
            endExpired();
        }
    }

    private void endExpired() {
        Instant now = Instant.now();
        for (Sandbox sb : table.all()) {
            if (!sb.isRunning() || sb.copying() || sb.endAt().isAfter(now)) continue;
            try {
                if (sb.autoPause() && canPause(sb)) {
                    try {
                        actions.pause(sb);
                        continue;
                    } catch (StockadeError e) {
                        LOG.log(Level.WARNING, "pausing expired sandbox " + sb.id() + " failed; ending it", e);
                    }
                }
                actions.end(sb, "expired: its timeout passed");
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "ending expired sandbox " + sb.id() + " failed", e);
            }
        }
    }

    /**
     * A sandbox whose container stopped behind the server's back (its init, the agent, was killed
     * from the host or died) is ended and reported lost to its owner, with why; nothing of it stays.
     */
    private void endVanished() {
        for (Sandbox sb : table.all()) {
            long pid = sb.initPid();
            if (!sb.isLive() || pid <= 0 || ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false)) continue;
            Optional<String> reason = runtimes.of(sb).endReason(sb.id());
            reason.ifPresent(sb::stoppedBecause);
            String why = reason.orElse("its container stopped while it ran (its init, the agent, exited or was killed on the host)");
            table.lost(sb.id(), sb.tenant(), why);
            LOG.warning("sandbox " + sb.id() + " of tenant " + sb.tenant() + " is lost: " + why);
            try {
                actions.end(sb, "lost: " + why);
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
        for (Sandbox sb : table.all()) {
            int idle = sb.idleTimeoutSeconds();
            if (idle <= 0 || !sb.isRunning() || sb.copying() || sb.requestsInFlight() > 0) continue;
            if (now - sb.lastActivityNanos() < idle * 1_000_000_000L) continue;
            boolean busy = userProcesses(sb).stream().anyMatch(cmd -> !cmd.contains("/opt/stockade/"));
            if (busy) {
                sb.touch(); // a job still runs: activity; look again after another idle period
                continue;
            }
            try {
                if (sb.autoPause() && canPause(sb)) {
                    actions.pause(sb);
                } else {
                    actions.end(sb, "idle: no request, stream or process for " + idle + " s (its idleTimeout)");
                }
            } catch (RuntimeException e) {
                LOG.log(Level.WARNING, "ending idle sandbox " + sb.id() + " failed", e);
            }
        }
    }

    private boolean canPause(Sandbox sb) {
        return runtimes.of(sb).capabilities().contains(Capabilities.PAUSE);
    }

    /**
     * The command lines of the sandbox's processes (other than its init), for the idle policy: read
     * on the host where the runtime can (runc: the cgroup), else asked of the agent (a runtime with a
     * kernel of its own: the processes the agent started that still run — a process they left
     * behind after exiting is not seen). Unknown counts as busy.
     */
    private List<String> userProcesses(Sandbox sb) {
        SandboxRuntime runtime = runtimes.of(sb);
        if (!runtime.capabilities().contains(Capabilities.USERSPACE_KERNEL)) return runtime.processCommands(sb.id());
        try {
            return sb.agent().listProcesses().stream().map(p -> String.join(" ", p.argv())).toList();
        } catch (RuntimeException e) {
            return List.of("(unknown: " + e.getMessage() + ")");
        }
    }

    /** Stops the reaper (the server is stopping). */
    @Override
    public void close() {
        thread.interrupt();
    }
}
