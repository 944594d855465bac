package dev.stockade.server.config;

import java.util.List;

/**
 * Warm pools: ready sandboxes of the default template, started before anyone asks, so a create
 * costs a hand-over instead of a container start. A create takes one when it can (the default
 * template on the default runtime) and gets exactly what a fresh sandbox would have: its own
 * limits, environment, network policy, secrets, timeout, metadata and access token. Each pooled
 * sandbox serves one create, never two.
 *
 * @param size ready sandboxes to keep; 0 turns pools off
 * @param min below this many ready, refills go ahead even while creates are in flight; at or above
 *     it, refills wait for creates to finish (so the pool never slows live traffic down)
 * @param preload modules the pooled sandbox's default code context imports before it is taken
 *     (empty: no interpreter is started in advance)
 * @param hardened ready sandboxes to keep on the hardened tier (runsc) as well, with the same
 *     {@code min} and preload; 0: none (creates asking for it start one). Ignored when the hardened
 *     tier is the default runtime (then {@code size} is its pool) or not available on the host.
 */
public record PoolConfig(int size, int min, List<String> preload, int hardened) {
    public static final List<String> DEFAULT_PRELOAD = List.of("numpy", "pandas", "matplotlib.pyplot");

    public PoolConfig {
        preload = List.copyOf(preload);
        if (size < 0 || size > 1000) throw new IllegalArgumentException("pool size must be 0..1000, got " + size);
        if (min < 0 || min > size) throw new IllegalArgumentException("pool min must be 0.." + size + ", got " + min);
        if (hardened < 0 || hardened > 1000) throw new IllegalArgumentException("hardened pool size must be 0..1000, got " + hardened);
    }

    /** A pool of the default runtime only. */
    public PoolConfig(int size, int min, List<String> preload) {
        this(size, min, preload, 0);
    }

    /** The same pool with {@code n} ready sandboxes on the hardened tier as well. */
    public PoolConfig withHardened(int n) {
        return new PoolConfig(size, min, preload, n);
    }

    public static PoolConfig off() {
        return new PoolConfig(0, 0, List.of());
    }

    /** What `serve` runs with: two ready sandboxes, interpreters with numpy, pandas and pyplot loaded. */
    public static PoolConfig defaults() {
        return new PoolConfig(2, 1, DEFAULT_PRELOAD);
    }
}
