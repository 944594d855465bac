package dev.stockade.server.core;

import dev.stockade.server.config.PoolConfig;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Logger;

/**
 * The warm pools by runtime name: the default runtime's, and the hardened tier's when configured and
 * offered. Counts the creates in flight, which the pools' refills give way to. Built once by
 * {@link SandboxManager}; used from request threads.
 */
final class Pools implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Pools.class.getName());

    private final Map<String, SandboxPool> pools;
    /** Creates in flight: a pool refills only while there are none (or when it runs low). */
    private final AtomicInteger creating = new AtomicInteger();

    Pools(PoolConfig config, Runtimes runtimes, SandboxPool.Starter starter) {
        Map<String, SandboxPool> p = new LinkedHashMap<>();
        if (config.size() > 0) {
            p.put(runtimes.defaultName(), pool(starter, runtimes.defaultTier(), config.size(), config));
        }
        if (config.hardened() > 0 && !runtimes.defaultName().equals(Runtimes.HARDENED)) {
            Runtimes.Tier hardened = runtimes.find(Runtimes.HARDENED);
            if (hardened == null) {
                LOG.warning("no hardened pool: runtime " + Runtimes.HARDENED + " is not available on this host ("
                        + runtimes.unavailable().getOrDefault(Runtimes.HARDENED, "not installed") + ")");
            } else {
                p.put(hardened.name(), pool(starter, hardened, config.hardened(), config));
            }
        }
        this.pools = Collections.unmodifiableMap(p);
    }

    private SandboxPool pool(SandboxPool.Starter starter, Runtimes.Tier tier, int ceiling, PoolConfig config) {
        return new SandboxPool(starter, tier, Math.min(config.min(), ceiling), ceiling, config.preload(), config.demand(),
                creating::get, System::nanoTime, Pools::availableMb);
    }

    /** MemAvailable of /proc/meminfo in MiB; unknown (not Linux, unreadable): no limit. */
    static long availableMb() {
        try {
            for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemAvailable:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024;
            }
        } catch (java.io.IOException | RuntimeException e) {
            // fall through: no figure, no limit
        }
        return Long.MAX_VALUE;
    }

    /** A ready sandbox of that runtime, or null at once (no pool for it, or none ready). */
    SandboxAssembler.Prepared take(String runtime) {
        SandboxPool pool = pools.get(runtime);
        return pool == null ? null : pool.take();
    }

    /** A create starts: the refills hold back. */
    void createStarted() {
        creating.incrementAndGet();
    }

    /** A create is done: the refills may go on. */
    void createEnded() {
        creating.decrementAndGet();
        for (SandboxPool pool : pools.values()) pool.wake();
    }

    /** Ready sandboxes of that runtime (0 without a pool). */
    int ready(String runtime) {
        SandboxPool pool = pools.get(runtime);
        return pool == null ? 0 : pool.ready();
    }

    /** What the pool of that runtime is doing, or null without a pool. */
    PoolStatus status(String runtime) {
        SandboxPool pool = pools.get(runtime);
        return pool == null ? null : pool.status();
    }

    int readyTotal() {
        return pools.values().stream().mapToInt(SandboxPool::ready).sum();
    }

    @Override
    public void close() {
        pools.values().forEach(SandboxPool::close);
    }
}
