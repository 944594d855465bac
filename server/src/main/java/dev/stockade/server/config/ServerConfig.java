package dev.stockade.server.config;

import dev.stockade.runtime.Limits;
import dev.stockade.server.egress.EgressConfig;
import dev.stockade.server.packages.PackageConfig;
import java.nio.file.Path;
import java.util.Objects;

/**
 * The server's configuration: one record, defaults in {@link #defaults(Path)}. Precedence:
 * defaults → environment (STOCKADE_*) → command-line flags, applied by the CLI.
 *
 * <p>To add a setting: add the component here, give it a default in {@link #defaults}, validate it
 * in the compact constructor, document it in docs/configuration.md, and map its flag in the CLI.
 *
 * @param host address to listen on; loopback by default
 * @param port TCP port; 0 picks a free one
 * @param dataDir where the server keeps its state (runtime state, templates, the generated key)
 * @param apiKey the API key clients must send; null means "read or generate dataDir/api-key"
 * @param runtime the default runtime's name
 * @param defaultLimits limits of a sandbox that asks for none
 * @param maxLimits the most a sandbox may ask for; asking for more is refused, never lowered
 * @param defaultTimeoutSeconds sandbox lifetime when the client gives none (E2B: 300)
 * @param maxTimeoutSeconds the longest lifetime a client may set
 * @param maxSandboxes sandboxes alive at once on this server
 * @param egress the egress proxy's operator settings (open internet permitted?, private ranges
 *     sandboxes may reach, static host names, upstream trust); sandboxes choose their own policy
 *     within them
 * @param packages the package index sandboxes install from (wheelhouse, upstream, allow-list)
 * @param pool warm pools of ready sandboxes ({@link PoolConfig#off()} in {@link #defaults}: an
 *     embedded server for one run must not start sandboxes nobody asked for; `serve` turns them on)
 * @param outputBytesPerSecond the sustained rate at which the server relays one sandbox's command and
 *     cell output, all its streams together (0: unpaced); a burst of one output limit's worth goes at
 *     full speed (OutputPace, in the control plane)
 * @param concurrentStarts how many sandboxes of one runtime start at once; more creates wait their
 *     turn, first come first served (StartTurns, in the control plane; issue 16)
 */
public record ServerConfig(
        String host,
        int port,
        Path dataDir,
        String apiKey,
        String runtime,
        Limits defaultLimits,
        Limits maxLimits,
        int defaultTimeoutSeconds,
        int maxTimeoutSeconds,
        int maxSandboxes,
        EgressConfig egress,
        PackageConfig packages,
        PoolConfig pool,
        long outputBytesPerSecond,
        int concurrentStarts) {

    /** The default relay rate of one sandbox's output: 4 MiB/s (docs/BENCHMARKS.md, "Ten sandboxes at their limits"). */
    public static final long DEFAULT_OUTPUT_BYTES_PER_SECOND = 4L * 1024 * 1024;

    /**
     * Sandboxes of one runtime started at once by default: the host's cores and one more (a start
     * is CPU-bound; the one more keeps the cores busy while a start waits on its disk or its agent).
     */
    public static final int DEFAULT_CONCURRENT_STARTS = Runtime.getRuntime().availableProcessors() + 1;
    /** The most {@code concurrentStarts} may be. */
    public static final int MAX_CONCURRENT_STARTS = 1024;

    public ServerConfig {
        Objects.requireNonNull(host, "host");
        Objects.requireNonNull(dataDir, "dataDir");
        Objects.requireNonNull(runtime, "runtime");
        if (port < 0 || port > 65535) throw new IllegalArgumentException("port must be 0..65535, got " + port);
        if (defaultTimeoutSeconds < 1 || defaultTimeoutSeconds > maxTimeoutSeconds) {
            throw new IllegalArgumentException("defaultTimeoutSeconds must be within 1.." + maxTimeoutSeconds);
        }
        if (maxSandboxes < 1) throw new IllegalArgumentException("maxSandboxes must be at least 1");
        Objects.requireNonNull(egress, "egress");
        Objects.requireNonNull(packages, "packages");
        Objects.requireNonNull(pool, "pool");
        if (outputBytesPerSecond < 0) throw new IllegalArgumentException("outputBytesPerSecond must not be negative");
        if (concurrentStarts < 1 || concurrentStarts > MAX_CONCURRENT_STARTS) {
            throw new IllegalArgumentException("concurrentStarts must be within 1.." + MAX_CONCURRENT_STARTS + ", got " + concurrentStarts);
        }
        dataDir = dataDir.toAbsolutePath().normalize();
    }

    public static ServerConfig defaults(Path dataDir) {
        return new ServerConfig("127.0.0.1", 0, dataDir, null, "runc",
                new Limits(512, 1.0, 256, 1024, 16, 300),
                new Limits(8192, 2.0, 4096, 16384, 1024, 86_400),
                300, 86_400, 200, EgressConfig.defaults(), PackageConfig.none(),
                PoolConfig.off(), DEFAULT_OUTPUT_BYTES_PER_SECOND, DEFAULT_CONCURRENT_STARTS);
    }

    public ServerConfig withPort(int p) {
        return new ServerConfig(host, p, dataDir, apiKey, runtime, defaultLimits, maxLimits, defaultTimeoutSeconds,
                maxTimeoutSeconds, maxSandboxes, egress, packages, pool, outputBytesPerSecond, concurrentStarts);
    }

    public ServerConfig withApiKey(String key) {
        return new ServerConfig(host, port, dataDir, key, runtime, defaultLimits, maxLimits, defaultTimeoutSeconds,
                maxTimeoutSeconds, maxSandboxes, egress, packages, pool, outputBytesPerSecond, concurrentStarts);
    }

    public ServerConfig withHost(String h) {
        return new ServerConfig(h, port, dataDir, apiKey, runtime, defaultLimits, maxLimits, defaultTimeoutSeconds,
                maxTimeoutSeconds, maxSandboxes, egress, packages, pool, outputBytesPerSecond, concurrentStarts);
    }

    public ServerConfig withEgress(EgressConfig e) {
        return new ServerConfig(host, port, dataDir, apiKey, runtime, defaultLimits, maxLimits, defaultTimeoutSeconds,
                maxTimeoutSeconds, maxSandboxes, e, packages, pool, outputBytesPerSecond, concurrentStarts);
    }

    public ServerConfig withPackages(PackageConfig p) {
        return new ServerConfig(host, port, dataDir, apiKey, runtime, defaultLimits, maxLimits, defaultTimeoutSeconds,
                maxTimeoutSeconds, maxSandboxes, egress, p, pool, outputBytesPerSecond, concurrentStarts);
    }

    public ServerConfig withPool(PoolConfig p) {
        return new ServerConfig(host, port, dataDir, apiKey, runtime, defaultLimits, maxLimits, defaultTimeoutSeconds,
                maxTimeoutSeconds, maxSandboxes, egress, packages, p, outputBytesPerSecond, concurrentStarts);
    }

    /** The same configuration with another default runtime (by name: "runc", "runsc"). */
    public ServerConfig withRuntime(String name) {
        return new ServerConfig(host, port, dataDir, apiKey, name, defaultLimits, maxLimits, defaultTimeoutSeconds,
                maxTimeoutSeconds, maxSandboxes, egress, packages, pool, outputBytesPerSecond, concurrentStarts);
    }

    public ServerConfig withMaxSandboxes(int n) {
        return new ServerConfig(host, port, dataDir, apiKey, runtime, defaultLimits, maxLimits, defaultTimeoutSeconds,
                maxTimeoutSeconds, n, egress, packages, pool, outputBytesPerSecond, concurrentStarts);
    }

    /** The same configuration with another number of sandboxes started at once per runtime. */
    public ServerConfig withConcurrentStarts(int n) {
        return new ServerConfig(host, port, dataDir, apiKey, runtime, defaultLimits, maxLimits, defaultTimeoutSeconds,
                maxTimeoutSeconds, maxSandboxes, egress, packages, pool, outputBytesPerSecond, n);
    }

    /** The same configuration with another output relay rate per sandbox (bytes a second; 0: unpaced). */
    public ServerConfig withOutputBytesPerSecond(long rate) {
        return new ServerConfig(host, port, dataDir, apiKey, runtime, defaultLimits, maxLimits, defaultTimeoutSeconds,
                maxTimeoutSeconds, maxSandboxes, egress, packages, pool, rate, concurrentStarts);
    }
}
