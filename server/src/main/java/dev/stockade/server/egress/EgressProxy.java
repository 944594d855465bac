package dev.stockade.server.egress;

import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The host side of sandbox networking: every sandbox gets a unix socket ({@link #attach}) that its
 * in-sandbox relay connects to for each TCP connection made to the sandbox's HTTP(S) proxy address.
 * The proxy decides each request against the sandbox's {@link NetworkPolicy} and the private address
 * ranges, resolves names itself, pins the address, and forwards (plain HTTP), splices (CONNECT) or
 * intercepts TLS (hosts with secrets or header rules). Every attempt becomes a {@link Decision}.
 *
 * <p>Upstream failures: when the policy admitted a destination but connecting failed, the
 * decision has {@code allowed=true} and a reason starting with {@code upstream failed:}; the
 * sandbox gets 502.
 *
 * <p>Threads: virtual threads per sandbox (accept) and per connection; one platform timer thread
 * enforces the head timeout (30 s) and the idle timeout by closing connections.
 */
public final class EgressProxy implements AutoCloseable {
    static final Duration HEAD_TIMEOUT = Duration.ofSeconds(30);

    private final EgressConfig config;
    private final Map<String, InternalSite> sites;
    private final TlsInterception tls;
    private final EgressGate gate;
    private final Duration headTimeout;
    private final Map<String, SandboxEgress> sandboxes = new ConcurrentHashMap<>();
    private final AtomicLong allowedTotal = new AtomicLong();
    private final AtomicLong refusedTotal = new AtomicLong();
    private final ScheduledExecutorService timers;
    private volatile DecisionSink sink;
    private volatile boolean closed;

    /**
     * @param sites sites served by the proxy itself, by host (e.g. the package index)
     * @param tls TLS interception for hosts with secrets or header rules; null refuses such tunnels
     */
    public EgressProxy(EgressConfig config, List<InternalSite> sites, TlsInterception tls) {
        this(config, sites, tls, HEAD_TIMEOUT);
    }

    /** As above, with another head timeout (for tests). */
    EgressProxy(EgressConfig config, List<InternalSite> sites, TlsInterception tls, Duration headTimeout) {
        this.config = config;
        this.tls = tls;
        this.headTimeout = headTimeout;
        Map<String, InternalSite> byHost = new HashMap<>();
        for (InternalSite site : sites == null ? List.<InternalSite>of() : sites) {
            String host = site.host().toLowerCase(Locale.ROOT);
            if (byHost.put(host, site) != null) {
                throw new IllegalArgumentException("two internal sites answer for " + host);
            }
        }
        this.sites = Map.copyOf(byHost);
        this.gate = ServerFetchGate.gate(config);
        this.timers = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "egress-timers");
            t.setDaemon(true);
            return t;
        });
        long tick = Math.clamp(Math.min(config.idleTimeout().toMillis(), headTimeout.toMillis()) / 4, 20, 1000);
        timers.scheduleWithFixedDelay(this::sweep, tick, tick, TimeUnit.MILLISECONDS);
    }

    /**
     * Opens a sandbox's egress socket at {@code socketPath} (its directory must exist, the path must
     * not), owned by {@code ownerHostUid} (uid and gid) with mode 0600.
     *
     * @throws IllegalArgumentException for an open policy the operator does not allow, bad secrets,
     *     or a sandbox already attached
     * @throws IOException if the socket cannot be created
     */
    public SandboxEgress attach(String sandboxId, Path socketPath, long ownerHostUid, NetworkPolicy policy,
                                List<SecretBinding> secrets) throws IOException {
        if (closed) {
            throw new IllegalStateException("the egress proxy is closed");
        }
        check(policy);
        Secrets bound = new Secrets(secrets);
        if (sandboxes.containsKey(sandboxId)) {
            throw new IllegalArgumentException("sandbox " + sandboxId + " already has an egress socket");
        }
        SandboxEgress egress = new SandboxEgress(this, sandboxId, socketPath, ownerHostUid, policy, bound);
        if (sandboxes.putIfAbsent(sandboxId, egress) != null) {
            egress.close();
            throw new IllegalArgumentException("sandbox " + sandboxId + " already has an egress socket");
        }
        return egress;
    }

    /** Registers where every decision also goes (metrics, audit); replaces any earlier sink. Must not block. */
    public void onDecision(DecisionSink decisionSink) {
        this.sink = decisionSink;
    }

    public long allowedTotal() {
        return allowedTotal.get();
    }

    public long refusedTotal() {
        return refusedTotal.get();
    }

    /** Closes every sandbox's socket and connection. */
    @Override
    public void close() {
        closed = true;
        for (SandboxEgress s : List.copyOf(sandboxes.values())) {
            s.close();
        }
        timers.shutdownNow();
    }

    void check(NetworkPolicy policy) {
        if (policy == null) {
            throw new IllegalArgumentException("a sandbox needs a network policy (NetworkPolicy.none() for none)");
        }
        if (policy.mode() == NetworkPolicy.Mode.OPEN && !config.allowOpen()) {
            throw new IllegalArgumentException("this server does not allow open network access for sandboxes: "
                    + "use an allow list, or ask the operator to enable open mode");
        }
    }

    void record(Decision d) {
        (d.allowed() ? allowedTotal : refusedTotal).incrementAndGet();
        DecisionSink s = sink;
        if (s != null) {
            try {
                s.record(d);
            } catch (RuntimeException ignored) {
                // a failing sink must not break the sandbox's traffic
            }
        }
    }

    void detached(SandboxEgress s) {
        sandboxes.remove(s.sandboxId(), s);
    }

    private void sweep() {
        long now = System.nanoTime();
        long idle = config.idleTimeout().toNanos();
        for (SandboxEgress s : sandboxes.values()) {
            for (ProxyConnection c : s.connections()) {
                c.expire(now, idle);
            }
        }
    }

    EgressConfig config() {
        return config;
    }

    EgressGate gate() {
        return gate;
    }

    InternalSite site(String host) {
        return sites.get(host);
    }

    TlsInterception tls() {
        return tls;
    }

    Duration headTimeout() {
        return headTimeout;
    }

    ScheduledExecutorService timers() {
        return timers;
    }
}
