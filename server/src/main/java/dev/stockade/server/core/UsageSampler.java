package dev.stockade.server.core;

import dev.stockade.runtime.ResourceUsage;
import dev.stockade.runtime.RuntimeFailure;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Keeps each live sandbox's recent resource usage for E2B's metrics, on its own virtual thread: a
 * sandbox's first reading (a second after it is first seen) is its baseline, the next one its
 * first sample, then one every {@link #EVERY}; the last {@link #KEPT} of history is kept, and a
 * sandbox's history goes when the sandbox does. The readings come from the runtime
 * ({@link dev.stockade.runtime.SandboxRuntime#stats}); a runtime that cannot read them leaves the
 * history empty. Request threads read histories through {@link #between}.
 */
final class UsageSampler implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(UsageSampler.class.getName());
    /** E2B collects in 5 s buckets: the same spacing. */
    static final Duration EVERY = Duration.ofSeconds(5);
    static final Duration KEPT = Duration.ofMinutes(15);

    private final SandboxTable table;
    private final Runtimes runtimes;
    private final ConcurrentHashMap<String, History> histories = new ConcurrentHashMap<>();
    private final Thread thread;

    /** One sandbox's samples (oldest first) and the reading the next CPU delta starts from. */
    private static final class History {
        final ArrayDeque<UsageSample> samples = new ArrayDeque<>();
        long cpuNanos = -1;
        long readAtNanos;
        boolean unsupported;
    }

    UsageSampler(SandboxTable table, Runtimes runtimes) {
        this.table = table;
        this.runtimes = runtimes;
        this.thread = Thread.ofVirtual().name("stockade-usage-sampler").start(this::loop);
    }

    private void loop() {
        while (!Thread.currentThread().isInterrupted()) {
            try {
                Thread.sleep(1000);
            } catch (InterruptedException e) {
                return;
            }
            histories.keySet().removeIf(id -> {
                Sandbox sb = table.find(id);
                return sb == null || !sb.isLive();
            });
            for (Sandbox sb : table.all()) {
                if (!sb.isLive()) continue;
                try {
                    sample(sb);
                } catch (RuntimeException e) {
                    LOG.log(Level.FINE, "reading the resource usage of sandbox " + sb.id() + " failed", e);
                }
            }
        }
    }

    private void sample(Sandbox sb) {
        History h = histories.computeIfAbsent(sb.id(), id -> new History());
        if (h.unsupported) return;
        long now = System.nanoTime();
        if (h.cpuNanos >= 0 && now - h.readAtNanos < EVERY.toNanos() && !h.samples.isEmpty()) return;
        ResourceUsage u;
        try {
            u = runtimes.of(sb).stats(sb.id());
        } catch (RuntimeFailure e) {
            if (e.code() == RuntimeFailure.Code.UNAVAILABLE) h.unsupported = true;
            return;
        }
        double cpus = sb.limits().cpus();
        if (h.cpuNanos >= 0) {
            double wall = now - h.readAtNanos;
            double pct = wall <= 0 ? 0 : 100.0 * Math.max(0, u.cpuNanos() - h.cpuNanos) / (wall * cpus);
            UsageSample s = new UsageSample(Instant.now(), (int) Math.ceil(cpus), Math.min(100.0, pct), u.memoryBytes(),
                    u.memoryLimitBytes(), u.cacheBytes(), u.diskUsedBytes(), u.diskTotalBytes(), u.inodesUsed(),
                    u.inodesTotal());
            synchronized (h) {
                h.samples.addLast(s);
                Instant oldest = s.at().minus(KEPT);
                while (h.samples.getFirst().at().isBefore(oldest)) h.samples.removeFirst();
            }
        }
        h.cpuNanos = u.cpuNanos();
        h.readAtNanos = now;
    }

    /** The samples of sandbox {@code id} taken from {@code from} to {@code to} (both inclusive), oldest first. */
    List<UsageSample> between(String id, Instant from, Instant to) {
        History h = histories.get(id);
        if (h == null) return List.of();
        List<UsageSample> out = new ArrayList<>();
        synchronized (h) {
            for (UsageSample s : h.samples) if (!s.at().isBefore(from) && !s.at().isAfter(to)) out.add(s);
        }
        return out;
    }

    @Override
    public void close() {
        thread.interrupt();
    }
}
