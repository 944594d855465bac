package dev.stockade.server.api;

import dev.stockade.server.core.PoolStatus;
import dev.stockade.server.core.SandboxManager;
import java.util.List;
import java.util.Locale;

/**
 * The warm pools' part of {@code GET /metrics} (Prometheus text format), one series per pool
 * (labels: the runtime and the pool's template, e.g. {@code runtime="runc",pool="base"}): how full
 * it is, what it aims for, how creates fared (hits, and misses: the cold fallbacks) and how long
 * refills take. Called by {@link EgressApi}'s metrics handler.
 */
final class PoolMetrics {
    private PoolMetrics() {}

    /** One pool's series: its labels and what it is doing. */
    private record Pool(String labels, PoolStatus s) {}

    /** Each runtime's starts ({@code StartTurns}): running and waiting now, the limit, and how many have waited. */
    static String starts(List<SandboxManager.RuntimeInfo> runtimes) {
        List<SandboxManager.RuntimeInfo> with = runtimes.stream().filter(r -> r.starts() != null).toList();
        if (with.isEmpty()) return "";
        StringBuilder b = new StringBuilder();
        head(b, "stockade_sandbox_starts", "Sandbox starts running, or waiting for their turn, now.", "gauge");
        for (var r : with) {
            b.append("stockade_sandbox_starts{runtime=\"").append(r.name()).append("\",state=\"running\"} ").append(r.starts().running()).append('\n');
            b.append("stockade_sandbox_starts{runtime=\"").append(r.name()).append("\",state=\"waiting\"} ").append(r.starts().waiting()).append('\n');
        }
        head(b, "stockade_sandbox_starts_concurrent", "Sandbox starts a runtime runs at once (--concurrent-starts).", "gauge");
        for (var r : with) b.append("stockade_sandbox_starts_concurrent{runtime=\"").append(r.name()).append("\"} ").append(r.starts().limit()).append('\n');
        head(b, "stockade_sandbox_start_waits_total", "Sandbox starts that waited for their turn.", "counter");
        for (var r : with) b.append("stockade_sandbox_start_waits_total{runtime=\"").append(r.name()).append("\"} ").append(r.starts().waited()).append('\n');
        return b.toString();
    }

    static String text(List<SandboxManager.RuntimeInfo> runtimes) {
        List<Pool> pooled = new java.util.ArrayList<>();
        for (var r : runtimes) {
            // Runtime and pool names are the server's own (runc, runsc; base, code-interpreter-v1): nothing to escape.
            r.pools().forEach((name, s) -> pooled.add(new Pool("runtime=\"" + r.name() + "\",pool=\"" + name + "\"", s)));
        }
        if (pooled.isEmpty()) return "";
        StringBuilder b = new StringBuilder();
        gauge(b, pooled, "stockade_pool_ready_sandboxes", "Ready sandboxes in the pool, by runtime and template.", PoolStatus::ready);
        gauge(b, pooled, "stockade_pool_starting", "Sandboxes being started for the pool.", PoolStatus::starting);
        gauge(b, pooled, "stockade_pool_starting_peak", "The most sandboxes the pool has started at once.", PoolStatus::startingPeak);
        gauge(b, pooled, "stockade_pool_target", "What the pool aims to hold (ready or starting), set by demand.", PoolStatus::target);
        gauge(b, pooled, "stockade_pool_floor", "The pool's floor (kept when idle).", PoolStatus::floor);
        gauge(b, pooled, "stockade_pool_ceiling", "The pool's ceiling.", PoolStatus::ceiling);
        head(b, "stockade_pool_arrival_rate", "Creates a second asking the pool (moving average).", "gauge");
        for (Pool p : pooled) b.append(series("stockade_pool_arrival_rate", p, "")).append(num(p.s().arrivalRate())).append('\n');
        head(b, "stockade_pool_creates_total", "Creates that asked the pool: hit (a ready sandbox) or miss (started cold at once).", "counter");
        for (Pool p : pooled) {
            b.append(series("stockade_pool_creates_total", p, ",result=\"hit\"")).append(p.s().hits()).append('\n');
            b.append(series("stockade_pool_creates_total", p, ",result=\"miss\"")).append(p.s().misses()).append('\n');
        }
        head(b, "stockade_pool_shrunk_total", "Ready sandboxes removed because the pool was idle above its target.", "counter");
        for (Pool p : pooled) b.append(series("stockade_pool_shrunk_total", p, "")).append(p.s().shrunk()).append('\n');
        head(b, "stockade_pool_refill_seconds", "Time to start one pooled sandbox until it is ready (preload included).", "histogram");
        for (Pool p : pooled) {
            PoolStatus s = p.s();
            long[] buckets = s.refillBuckets();
            long cumulative = 0;
            for (int i = 0; i < PoolStatus.REFILL_BUCKETS.size(); i++) {
                cumulative += buckets[i];
                b.append(series("stockade_pool_refill_seconds_bucket", p, ",le=\"" + num(PoolStatus.REFILL_BUCKETS.get(i)) + "\""))
                        .append(cumulative).append('\n');
            }
            b.append(series("stockade_pool_refill_seconds_bucket", p, ",le=\"+Inf\"")).append(s.refills()).append('\n');
            b.append(series("stockade_pool_refill_seconds_sum", p, "")).append(num(s.refillSecondsSum())).append('\n');
            b.append(series("stockade_pool_refill_seconds_count", p, "")).append(s.refills()).append('\n');
        }
        return b.toString();
    }

    private static void gauge(StringBuilder b, List<Pool> pooled, String name, String help,
                              java.util.function.ToIntFunction<PoolStatus> value) {
        head(b, name, help, "gauge");
        for (Pool p : pooled) b.append(series(name, p, "")).append(value.applyAsInt(p.s())).append('\n');
    }

    private static void head(StringBuilder b, String name, String help, String type) {
        b.append("# HELP ").append(name).append(' ').append(help).append('\n');
        b.append("# TYPE ").append(name).append(' ').append(type).append('\n');
    }

    private static String series(String name, Pool p, String moreLabels) {
        return name + "{" + p.labels() + moreLabels + "} ";
    }

    private static String num(double v) {
        return String.format(Locale.ROOT, "%.6g", v).replaceFirst("\\.?0+(e|$)", "$1");
    }
}
