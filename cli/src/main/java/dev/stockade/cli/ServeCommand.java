package dev.stockade.cli;

import dev.stockade.server.StockadeServer;
import dev.stockade.server.config.PoolConfig;
import dev.stockade.server.config.ServerConfig;
import dev.stockade.server.egress.EgressConfig;
import dev.stockade.server.packages.PackageConfig;
import java.net.URI;
import java.io.IOException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** {@code stockade serve}: the server in the foreground until SIGINT/SIGTERM. */
final class ServeCommand implements Subcommand {
    static final int DEFAULT_PORT = 3000;

    @Override
    public String name() {
        return "serve";
    }

    @Override
    public String summary() {
        return "run the server in the foreground";
    }

    @Override
    public String usage() {
        return """
                Usage: stockade serve [--port N] [--data-dir DIR] [--host ADDR] [network and package options]

                Runs a Stockade server in the foreground until Ctrl-C or SIGTERM, which stop it cleanly
                (every sandbox it started ends with it).

                Options:
                  --port N          TCP port (default 3000; 0 picks a free one)
                  --data-dir DIR    state directory (default $STOCKADE_DATA_DIR, else ~/.local/share/stockade,
                                    else /var/lib/stockade when the home directory is closed to others)
                  --host ADDR       address to listen on (default 127.0.0.1)
                  --runtime NAME    the default isolation tier: runc (standard, default) or runsc
                                    (hardened: gVisor); a create chooses per sandbox with "runtime"
                                    or a template name ending in -hardened (docs/runtimes.md)
                  --end-sandboxes-on-stop
                                    end every sandbox when the server stops (default: on SIGTERM or
                                    Ctrl-C, running requests get 10 s to finish and the sandboxes keep
                                    running for the next `stockade serve` on DIR, which takes them over;
                                    so does a server that crashed)

                Network (sandboxes have none unless they ask for an allow-list; docs/network.md):
                  --allow-open-network       let sandboxes ask for open internet access (public
                                             addresses only, through the egress proxy)
                  --open-network-requests downgrade|refuse
                                             without --allow-open-network, a create that asks for
                                             open access only through E2B's allow_internet_access
                                             (sent by the E2B SDKs on every create) or a denyOut:
                                             downgrade (default) creates it with an allow-list of its
                                             allowOut, else no network, and says so in the answer;
                                             refuse answers 400. network.mode "open" is always refused
                  --egress-private CIDR      a private range or host address sandboxes may reach when
                                             their policy lists it (repeatable; e.g. an internal API);
                                             a sandbox's own allow entries never open these
                  --egress-host NAME=IP[,IP] resolve NAME to these addresses instead of DNS (repeatable)
                  --egress-trust FILE        extra CA certificates (PEM) trusted for upstream TLS
                Warm pools (ready sandboxes, so a create is a hand-over, not a container start):
                  --pool-size N              the ceiling: at most N ready or starting, under a stream of
                                             creates (default 8; 0 turns pools off)
                  --pool-min N               the floor: kept ready when idle, and refilled while
                                             creates run once it is empty (default 2; = --pool-size:
                                             a fixed pool)
                  --pool-max-starting N      sandboxes the pool starts at once (default: the host's cores)
                  --pool-idle SECONDS        no create for this long: the pool shrinks to its floor
                                             (default 30)
                  --pool-reserve-mb MIB      start nothing above the floor while the host has less
                                             memory available (default 1024)
                  --pool-preload MODULES     modules the code-interpreter-v1 pool's interpreter imports
                                             ahead (comma list; default numpy,pandas,matplotlib.pyplot);
                                             base creates take a plain pool of their own. none: one
                                             plain pool for every template
                  --pool-hardened N          ready sandboxes to keep on the hardened tier (runsc) as well
                                             (default 0)
                  --max-sandboxes N          sandboxes alive at once, not counting the pool (default 200)
                  --concurrent-starts N      sandboxes of one runtime started at once; more creates wait
                                             their turn, first come first served (default: the host's
                                             cores + 1)
                  --output-rate MIB          MiB a second the server relays of one sandbox's command and
                                             cell output, all its streams together, once a burst of one
                                             output limit's worth is spent (default 4; 0: unpaced). A
                                             faster writer waits on its pipe; nothing is dropped
                Packages (pip in sandboxes installs only from the server's index):
                  --wheelhouse DIR           approved wheels and sdists, all installable
                  --package-index URL        an upstream simple index (a mirror), filtered by:
                  --package-allowlist FILE   projects (name, name==version, --hash=sha256:...) allowed
                                             from the upstream
                  --package-cache DIR        keep verified upstream downloads here

                The API key is $STOCKADE_API_KEY when set, else the one in DIR/api-key (0600, generated
                on first start); it is never printed. The other commands find this server through
                DIR/serve.json.
                """;
    }

    /** Seconds running requests get to finish when the server stops. */
    static final int STOP_GRACE_SECONDS = 10;

    @Override
    public Args.Spec spec() {
        return new Args.Spec(name(), Set.of("port", "data-dir", "host", "egress-private", "egress-host", "egress-trust",
                "wheelhouse", "package-index", "package-allowlist", "package-cache", "pool-size", "pool-min",
                "pool-max-starting", "pool-idle", "pool-reserve-mb", "pool-preload", "pool-hardened", "max-sandboxes", "concurrent-starts", "runtime",
                "open-network-requests", "output-rate"),
                Set.of("egress-private", "egress-host"), Set.of("allow-open-network", "end-sandboxes-on-stop"), Map.of(), -1);
    }

    @Override
    public int run(Args args, Io io) throws Exception {
        if (!args.positionals().isEmpty() || args.hasDashDash()) {
            throw new UsageException(name(), "unexpected argument '" + (args.positionals().isEmpty() ? "--" : args.positionals().getFirst()) + "'");
        }
        int port = args.intValue(name(), "port", DEFAULT_PORT, 0, 65535);
        String host = args.value("host") == null ? "127.0.0.1" : args.value("host");
        Path dir = args.value("data-dir") == null ? DataDir.defaultDir(io) : Path.of(args.value("data-dir")).toAbsolutePath().normalize();
        boolean loopback;
        try {
            loopback = InetAddress.getByName(host).isLoopbackAddress();
        } catch (UnknownHostException e) {
            throw new UsageException(name(), "--host: cannot resolve '" + host + "'");
        }
        EgressConfig egress = egress(args); // a usage error here must come before the data directory is claimed
        long outputRate = outputRate(args);
        int concurrentStarts = args.intValue(name(), "concurrent-starts", ServerConfig.DEFAULT_CONCURRENT_STARTS, 1,
                ServerConfig.MAX_CONCURRENT_STARTS);
        DataDir.Claim claim = DataDir.tryClaim(dir).orElse(null);
        if (claim == null) {
            String who = DataDir.runningServer(dir).map(a -> " (pid " + a.pid() + ", " + a.url() + ")").orElse("");
            throw new IOException("another Stockade server is using " + dir + who + ". Stop it, or pass another --data-dir.");
        }
        System.setProperty("java.util.logging.SimpleFormatter.format", "%1$tF %1$tT %4$s %3$s: %5$s%6$s%n");
        String envKey = io.env("STOCKADE_API_KEY");
        StockadeServer server;
        try {
            server = StockadeServer.start(ServerConfig.defaults(dir).withHost(host).withPort(port).withApiKey(envKey)
                    .withEgress(egress).withPackages(packages(args)).withPool(pool(args))
                    .withRuntime(runtime(args))
                    .withMaxSandboxes(args.intValue(name(), "max-sandboxes", 200, 1, 100_000))
                    .withConcurrentStarts(concurrentStarts)
                    .withOutputBytesPerSecond(outputRate));
        } catch (RuntimeException e) {
            claim.close();
            throw e;
        }
        boolean endOnStop = args.flag("end-sandboxes-on-stop");
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (endOnStop) {
                server.close();
            } else {
                int left = server.stopLeavingSandboxes(STOP_GRACE_SECONDS);
                if (left > 0) {
                    io.err().println("stockade serve: " + left + " sandbox(es) left running in " + dir + ": the next"
                            + " `stockade serve --data-dir " + dir + "` takes them over (--end-sandboxes-on-stop ends them)");
                    io.err().flush();
                }
            }
            claim.close();
        }, "stockade-serve-shutdown"));
        claim.advertise(server.url(), server.apiKey());
        String url = server.url().toString();
        // The key is never printed: this output goes to terminals' scrollback and service logs.
        // Where it came from is said instead, with a shell expression that reads it from there.
        Path keyFile = dir.resolve("api-key");
        String where = envKey != null ? "from $STOCKADE_API_KEY" : "in " + keyFile + " (mode 0600)";
        String key = envKey != null ? "\"$STOCKADE_API_KEY\"" : "\"$(cat '" + keyFile.toString().replace("'", "'\\''") + "')\"";
        io.out().printf("""
                Stockade is listening on %s (data: %s)
                API key: %s; not printed

                Point the E2B SDKs at it:
                  export E2B_API_URL=%s E2B_SANDBOX_URL=%s E2B_API_KEY=%s
                The Stockade CLI and Java SDK:
                  export STOCKADE_URL=%s STOCKADE_API_KEY=%s
                %s
                Press Ctrl-C to stop; %s
                """, url, dir, where,
                url, url, key, url, key,
                dir.equals(DataDir.defaultDir(io)) ? "  (the CLI on this machine finds it without them)\n" : "",
                endOnStop ? "every sandbox ends with the server." : "sandboxes keep running for the next start on this directory.");
        if (!loopback) {
            io.err().println("warning: listening on " + host + ", which is not a loopback address: the API key and all"
                    + " traffic travel in clear text over plain HTTP.");
        }
        io.out().flush();
        server.awaitClose();
        return 0;
    }

    private EgressConfig egress(Args args) throws UsageException {
        EgressConfig d = EgressConfig.defaults();
        Map<String, List<String>> hosts = new LinkedHashMap<>();
        for (String h : args.values("egress-host")) {
            int eq = h.indexOf('=');
            if (eq <= 0 || eq == h.length() - 1) {
                throw new UsageException(name(), "--egress-host wants NAME=IP[,IP...], got '" + h + "'");
            }
            hosts.put(h.substring(0, eq), List.of(h.substring(eq + 1).split(",")));
        }
        String trust = args.value("egress-trust");
        String openRequests = args.value("open-network-requests");
        EgressConfig.OpenRequests answer = switch (openRequests == null ? "downgrade" : openRequests) {
            case "downgrade" -> EgressConfig.OpenRequests.DOWNGRADE;
            case "refuse" -> EgressConfig.OpenRequests.REFUSE;
            default -> throw new UsageException(name(), "--open-network-requests wants downgrade or refuse, got '"
                    + openRequests + "'");
        };
        try {
            return new EgressConfig(args.flag("allow-open-network"), args.values("egress-private"), hosts,
                    d.connectTimeout(), d.idleTimeout(), d.maxConnectionsPerSandbox(), d.logCapacity(),
                    trust == null ? null : Path.of(trust).toAbsolutePath(), answer);
        } catch (IllegalArgumentException e) {
            throw new UsageException(name(), e.getMessage());
        }
    }

    /** The pools of `serve`: demand-following between --pool-min and --pool-size. */
    PoolConfig pool(Args args) throws UsageException {
        PoolConfig d = PoolConfig.defaults();
        int size = args.intValue(name(), "pool-size", d.size(), 0, 1000);
        int min = args.intValue(name(), "pool-min", Math.min(d.min(), size), 0, size);
        String preload = args.value("pool-preload");
        List<String> modules = preload == null ? d.preload()
                : preload.isBlank() || preload.equals("none") ? List.of() : List.of(preload.split(","));
        try {
            dev.stockade.runtime.SandboxSpec.Warmup check = new dev.stockade.runtime.SandboxSpec.Warmup(!modules.isEmpty(), modules);
            PoolConfig.Demand demand = new PoolConfig.Demand(true,
                    args.intValue(name(), "pool-max-starting", d.demand().maxStarting(), 1, 64), d.demand().window(),
                    java.time.Duration.ofSeconds(args.intValue(name(), "pool-idle",
                            (int) d.demand().idleAfter().toSeconds(), 1, 86_400)),
                    args.intValue(name(), "pool-reserve-mb", (int) d.demand().reserveMb(), 0, 1 << 30));
            return new PoolConfig(size, min, check.preload(), args.intValue(name(), "pool-hardened", 0, 0, 1000), demand);
        } catch (IllegalArgumentException e) {
            throw new UsageException(name(), "--pool-preload: " + e.getMessage());
        }
    }

    /** --output-rate in bytes a second: MiB, a fraction allowed (0.5), 0 for unpaced. */
    private long outputRate(Args args) throws UsageException {
        String v = args.value("output-rate");
        if (v == null) return ServerConfig.DEFAULT_OUTPUT_BYTES_PER_SECOND;
        double mib;
        try {
            mib = Double.parseDouble(v.strip());
        } catch (NumberFormatException e) {
            mib = Double.NaN;
        }
        if (!(mib >= 0 && mib <= 1_000_000) || !v.strip().matches("[0-9]+(\\.[0-9]+)?")) {
            throw new UsageException(name(), "--output-rate wants MiB a second, like 4 or 0.5 (0: unpaced), got "
                    + LocalStore.shown(v));
        }
        return Math.round(mib * 1024 * 1024);
    }

    private String runtime(Args args) throws UsageException {
        String r = args.value("runtime");
        if (r == null) return "runc";
        if (!r.matches("[a-z0-9-]{1,32}")) throw new UsageException(name(), "--runtime: '" + r + "' is not a runtime name (runc, runsc)");
        return r;
    }

    private PackageConfig packages(Args args) throws UsageException {
        try {
            String upstream = args.value("package-index");
            return new PackageConfig(path(args.value("wheelhouse")), upstream == null ? null : URI.create(upstream),
                    path(args.value("package-allowlist")), path(args.value("package-cache")));
        } catch (IllegalArgumentException e) {
            throw new UsageException(name(), e.getMessage());
        }
    }

    private static Path path(String p) {
        return p == null ? null : Path.of(p).toAbsolutePath().normalize();
    }
}
