package dev.stockade.server.config;

import java.time.Duration;
import java.util.List;

/**
 * Warm pools: ready sandboxes of the default template, started before anyone asks, so a create
 * costs a hand-over instead of a container start. A create takes one when it can (the default
 * template on the default runtime) and gets exactly what a fresh sandbox would have: its own
 * limits, environment, network policy, secrets, timeout, metadata and access token. Each pooled
 * sandbox serves one create, never two. A create that finds none ready starts a fresh one at once:
 * it never waits for one still starting.
 *
 * @param size the ceiling: at most this many ready (and starting) sandboxes per pool, which bounds
 *     the memory the pool holds; 0 turns pools off
 * @param min the floor: below this many ready or starting, refills go ahead while creates are in
 *     flight once the pool is empty (while ready ones remain, those creates are hand-overs and a start
 *     would take their cores; at or above the floor refills wait for creates to finish, so the pool
 *     never slows live traffic down); a pool that follows demand shrinks back to it when idle
 * @param preload modules the default code context of the {@code code-interpreter-v1} pool's sandboxes
 *     imports before one is taken; {@code base} creates take a plain pool of their own (issue 16).
 *     Empty: one plain pool serves every template, no interpreter is started in advance
 * @param hardened the ceiling of the hardened tier's (runsc) pool, with the same floor (capped at it),
 *     preload and demand rules; 0: none (creates asking for it start one). Ignored when the hardened
 *     tier is the default runtime (then {@code size} is its pool) or not available on the host.
 * @param demand how the pool sizes itself between floor and ceiling and how many it starts at once
 */
public record PoolConfig(int size, int min, List<String> preload, int hardened, Demand demand) {
    public static final List<String> DEFAULT_PRELOAD = List.of("numpy", "pandas", "matplotlib.pyplot");

    /**
     * How a pool follows demand.
     *
     * @param follow true: the target lies between the floor and the ceiling, set by the creates' arrival
     *     rate, and the pool shrinks to the floor after {@code idleAfter} without a create; false: the
     *     target is always the ceiling (a fixed pool, what embedded servers and older configs get)
     * @param maxStarting sandboxes the pool starts at once (each is a container start and, with a
     *     preload, an interpreter importing it: CPU the live sandboxes share)
     * @param window the time constant of the arrival rate's moving average
     * @param idleAfter no create for this long: the pool is idle and gives back its surplus
     * @param reserveMb the pool starts nothing above its floor while the host has less memory than
     *     this available (MemAvailable): ready sandboxes hold memory live ones may need
     */
    public record Demand(boolean follow, int maxStarting, Duration window, Duration idleAfter, long reserveMb) {
        /** One start per core: each start is mostly CPU (runc, the agent, the preload's imports). */
        public static final int DEFAULT_MAX_STARTING = Math.max(1, Runtime.getRuntime().availableProcessors());
        public static final Duration DEFAULT_WINDOW = Duration.ofSeconds(10);
        public static final Duration DEFAULT_IDLE_AFTER = Duration.ofSeconds(30);
        public static final long DEFAULT_RESERVE_MB = 1024;

        public Demand {
            if (maxStarting < 1 || maxStarting > 64) throw new IllegalArgumentException("pool max starting must be 1..64, got " + maxStarting);
            if (window.isNegative() || window.isZero()) throw new IllegalArgumentException("pool window must be positive, got " + window);
            if (idleAfter.isNegative() || idleAfter.isZero()) throw new IllegalArgumentException("pool idle time must be positive, got " + idleAfter);
            if (reserveMb < 0) throw new IllegalArgumentException("pool memory reserve must be >= 0, got " + reserveMb);
        }

        /** With the default memory reserve. */
        public Demand(boolean follow, int maxStarting, Duration window, Duration idleAfter) {
            this(follow, maxStarting, window, idleAfter, DEFAULT_RESERVE_MB);
        }

        /** Follows the arrival rate, with {@code maxStarting} starts at once and the default window and idle time. */
        public static Demand following(int maxStarting) {
            return new Demand(true, maxStarting, DEFAULT_WINDOW, DEFAULT_IDLE_AFTER);
        }

        /** Always keeps the ceiling ready. */
        public static Demand fixed() {
            return new Demand(false, DEFAULT_MAX_STARTING, DEFAULT_WINDOW, DEFAULT_IDLE_AFTER);
        }
    }

    public PoolConfig {
        preload = List.copyOf(preload);
        if (size < 0 || size > 1000) throw new IllegalArgumentException("pool size must be 0..1000, got " + size);
        if (min < 0 || min > size) throw new IllegalArgumentException("pool min must be 0.." + size + ", got " + min);
        if (hardened < 0 || hardened > 1000) throw new IllegalArgumentException("hardened pool size must be 0..1000, got " + hardened);
        java.util.Objects.requireNonNull(demand, "demand");
    }

    /** A fixed pool of the default runtime only (always {@code size} ready). */
    public PoolConfig(int size, int min, List<String> preload) {
        this(size, min, preload, 0, Demand.fixed());
    }

    /** A fixed pool of the default runtime, and {@code hardened} ready on the hardened tier. */
    public PoolConfig(int size, int min, List<String> preload, int hardened) {
        this(size, min, preload, hardened, Demand.fixed());
    }

    /** The same pool with {@code n} ready sandboxes on the hardened tier as well. */
    public PoolConfig withHardened(int n) {
        return new PoolConfig(size, min, preload, n, demand);
    }

    /** The same pool, sized by {@code d}. */
    public PoolConfig withDemand(Demand d) {
        return new PoolConfig(size, min, preload, hardened, d);
    }

    public static PoolConfig off() {
        return new PoolConfig(0, 0, List.of());
    }

    /**
     * What `serve` runs with: two ready when idle, up to eight under a stream of creates,
     * interpreters with numpy, pandas and pyplot loaded.
     */
    public static PoolConfig defaults() {
        return new PoolConfig(8, 2, DEFAULT_PRELOAD, 0, Demand.following(Demand.DEFAULT_MAX_STARTING));
    }
}
