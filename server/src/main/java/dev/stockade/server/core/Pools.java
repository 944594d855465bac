package dev.stockade.server.core;

import dev.stockade.server.config.PoolConfig;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.logging.Logger;

/**
 * The warm pools, per runtime and per template (issue 16): the default runtime's, and the hardened
 * tier's when configured and offered; on each, a plain pool for {@code base} (and {@code python})
 * creates and, when a preload is configured, a pool of sandboxes whose interpreter has imported it
 * for {@code code-interpreter-v1} creates. Why two: a preloaded sandbox costs ≈ 0.8 s of CPU
 * (numpy, pandas, matplotlib), a plain one ≈ 0.08 s, and a {@code base} create (the {@code e2b}
 * SDK's default) never uses the interpreter; one preloaded pool for both made every plain create
 * wait on refills ten times dearer than it needed. Without a preload there is one pool a runtime,
 * serving both. Counts the creates in flight, which the refills give way to. Built once by
 * {@link SandboxManager}; used from request threads.
 */
final class Pools implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(Pools.class.getName());
    /** The plain pool's name: what {@code base} creates take (and every create without a preloaded pool). */
    static final String PLAIN = "base";
    /** The preloaded pool's name: what {@code code-interpreter-v1} creates take. */
    static final String INTERPRETER = "code-interpreter-v1";

    /** Runtime name → pool name → pool; the plain pool first. */
    private final Map<String, Map<String, SandboxPool>> pools;
    /** Creates in flight: a pool refills only while there are none, or below its floor once it is empty ({@code SandboxPool.mayRefill}). */
    private final AtomicInteger creating = new AtomicInteger();

    Pools(PoolConfig config, Runtimes runtimes, SandboxPool.Starter starter) {
        Map<String, Map<String, SandboxPool>> p = new LinkedHashMap<>();
        if (config.size() > 0) {
            p.put(runtimes.defaultName(), perTemplate(starter, runtimes.defaultTier(), config.size(), config));
        }
        if (config.hardened() > 0 && !runtimes.defaultName().equals(Runtimes.HARDENED)) {
            Runtimes.Tier hardened = runtimes.find(Runtimes.HARDENED);
            if (hardened == null) {
                LOG.warning("no hardened pool: runtime " + Runtimes.HARDENED + " is not available on this host ("
                        + runtimes.unavailable().getOrDefault(Runtimes.HARDENED, "not installed") + ")");
            } else {
                p.put(hardened.name(), perTemplate(starter, hardened, config.hardened(), config));
            }
        }
        this.pools = Collections.unmodifiableMap(p);
    }

    private Map<String, SandboxPool> perTemplate(SandboxPool.Starter starter, Runtimes.Tier tier, int ceiling, PoolConfig config) {
        Map<String, SandboxPool> m = new LinkedHashMap<>();
        m.put(PLAIN, pool(starter, tier, ceiling, config, List.of()));
        if (!config.preload().isEmpty()) m.put(INTERPRETER, pool(starter, tier, ceiling, config, config.preload()));
        return Collections.unmodifiableMap(m);
    }

    private SandboxPool pool(SandboxPool.Starter starter, Runtimes.Tier tier, int ceiling, PoolConfig config, List<String> preload) {
        return new SandboxPool(starter, tier, Math.min(config.min(), ceiling), ceiling, preload, config.demand(),
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

    /**
     * A ready sandbox of that runtime for a create of {@code template} (a default template's name,
     * without the tier's suffix), or null at once (no pool for it, or none ready).
     */
    SandboxAssembler.Prepared take(String runtime, String template) {
        SandboxPool pool = poolFor(runtime, template);
        return pool == null ? null : pool.take();
    }

    /** The pool a create of {@code template} on {@code runtime} takes from: the preloaded one for the code interpreter, if any. */
    private SandboxPool poolFor(String runtime, String template) {
        Map<String, SandboxPool> m = pools.get(runtime);
        if (m == null) return null;
        SandboxPool p = INTERPRETER.equals(template) ? m.get(INTERPRETER) : null;
        return p != null ? p : m.get(PLAIN);
    }

    /** A create starts: the refills hold back. */
    void createStarted() {
        creating.incrementAndGet();
    }

    /** A create is done: the refills may go on. */
    void createEnded() {
        creating.decrementAndGet();
        for (Map<String, SandboxPool> m : pools.values()) m.values().forEach(SandboxPool::wake);
    }

    /** Ready sandboxes of that runtime, all its pools together (0 without a pool). */
    int ready(String runtime) {
        Map<String, SandboxPool> m = pools.get(runtime);
        return m == null ? 0 : m.values().stream().mapToInt(SandboxPool::ready).sum();
    }

    /** What the pool a {@code base} create takes from is doing, or null without a pool. */
    PoolStatus status(String runtime) {
        SandboxPool p = poolFor(runtime, PLAIN);
        return p == null ? null : p.status();
    }

    /** What each of that runtime's pools is doing, by pool name (the plain one first); empty without a pool. */
    Map<String, PoolStatus> statuses(String runtime) {
        Map<String, SandboxPool> m = pools.get(runtime);
        if (m == null) return Map.of();
        Map<String, PoolStatus> out = new LinkedHashMap<>();
        m.forEach((name, pool) -> out.put(name, pool.status()));
        return Collections.unmodifiableMap(out);
    }

    int readyTotal() {
        return pools.keySet().stream().mapToInt(this::ready).sum();
    }

    @Override
    public void close() {
        pools.values().forEach(m -> m.values().forEach(SandboxPool::close));
    }
}
