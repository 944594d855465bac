package dev.stockade.server.tenancy;

import dev.stockade.runtime.Limits;
import dev.stockade.server.core.Admission;
import dev.stockade.server.error.StockadeError;
import java.util.ArrayDeque;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;
import java.util.function.LongSupplier;

/**
 * Tenants' quotas at create: per-sandbox maxima (400, never lowered), then what the tenant holds
 * (sandboxes, memory, CPUs) and its creates in the last minute (429 with a Retry-After). Counts are
 * kept here, under one lock per tenant, so a storm of concurrent creates cannot overshoot: each
 * admission reserves its share before the sandbox starts and gives it back when the sandbox ends
 * or its create fails. Creates that fail still count against the per-minute rate (they cost work).
 */
public final class QuotaGate implements Admission {
    private static final long MINUTE_MS = 60_000;

    private final Function<String, Quota> quotas;
    private final LongSupplier clock;
    private final Map<String, Usage> usage = new ConcurrentHashMap<>();

    /** @param quotas the current quota of a tenant (read at every create, so changes hold at once) */
    public QuotaGate(Function<String, Quota> quotas, LongSupplier clockMillis) {
        this.quotas = quotas;
        this.clock = clockMillis;
    }

    private static final class Usage {
        int sandboxes;
        long memoryMB;
        double cpus;
        final ArrayDeque<Long> creates = new ArrayDeque<>();
    }

    /** What a tenant holds now: sandboxes, memory MB, CPUs. */
    public record Held(int sandboxes, long memoryMB, double cpus, int createsLastMinute) {}

    public Held held(String tenant) {
        Usage u = usage.get(tenant);
        if (u == null) return new Held(0, 0, 0, 0);
        synchronized (u) {
            prune(u, clock.getAsLong());
            return new Held(u.sandboxes, u.memoryMB, u.cpus, u.creates.size());
        }
    }

    @Override
    public Lease admit(String tenant, Limits limits) {
        Quota q = quotas.apply(tenant);
        if (q.sandboxMemoryMB() != null && limits.memoryMB() > q.sandboxMemoryMB()) {
            throw StockadeError.invalid("limits.memoryMB " + limits.memoryMB() + " is above tenant " + tenant
                    + "'s maximum per sandbox (quota sandboxMemoryMB " + q.sandboxMemoryMB() + "): ask for less;"
                    + " limits are refused, never lowered");
        }
        if (q.sandboxCpus() != null && limits.cpus() > q.sandboxCpus()) {
            throw StockadeError.invalid("limits.cpus " + limits.cpus() + " is above tenant " + tenant
                    + "'s maximum per sandbox (quota sandboxCpus " + q.sandboxCpus() + "): ask for less;"
                    + " limits are refused, never lowered");
        }
        Usage u = usage.computeIfAbsent(tenant, t -> new Usage());
        synchronized (u) {
            long now = clock.getAsLong();
            prune(u, now);
            if (q.createsPerMinute() != null && u.creates.size() >= q.createsPerMinute()) {
                long retry = Math.max(1, (u.creates.peekFirst() + MINUTE_MS - now + 999) / 1000);
                throw exhausted("tenant " + tenant + " has made " + u.creates.size() + " creates in the last minute,"
                        + " its quota (createsPerMinute " + q.createsPerMinute() + ")", retry);
            }
            if (q.sandboxes() != null && u.sandboxes + 1 > q.sandboxes()) {
                throw exhausted("tenant " + tenant + " runs " + u.sandboxes + " sandboxes, its quota (sandboxes "
                        + q.sandboxes() + "): kill one first", 1);
            }
            if (q.memoryMB() != null && u.memoryMB + limits.memoryMB() > q.memoryMB()) {
                throw exhausted("tenant " + tenant + " holds " + u.memoryMB + " MB of sandbox memory; " + limits.memoryMB()
                        + " more would pass its quota (memoryMB " + q.memoryMB() + "): kill a sandbox or ask for less", 1);
            }
            if (q.cpus() != null && u.cpus + limits.cpus() > q.cpus() + 1e-9) {
                throw exhausted("tenant " + tenant + " holds " + fmt(u.cpus) + " CPUs; " + fmt(limits.cpus())
                        + " more would pass its quota (cpus " + fmt(q.cpus()) + "): kill a sandbox or ask for less", 1);
            }
            u.creates.addLast(now);
            // Counted under the same lock as the checks: a count taken after the lock was let go
            // let a concurrent create pass the same check (a storm overshot the quota by one).
            return hold(u, limits);
        }
    }

    /** A sandbox taken over after a restart: counted, never refused (it was admitted before). */
    @Override
    public Lease restore(String tenant, Limits limits) {
        return hold(usage.computeIfAbsent(tenant, t -> new Usage()), limits);
    }

    /** Counts the sandbox; reentrant under {@code admit}'s lock on {@code u}. */
    private static Lease hold(Usage u, Limits limits) {
        synchronized (u) {
            u.sandboxes++;
            u.memoryMB += limits.memoryMB();
            u.cpus += limits.cpus();
        }
        AtomicBoolean released = new AtomicBoolean();
        return () -> {
            if (!released.compareAndSet(false, true)) return;
            synchronized (u) {
                u.sandboxes--;
                u.memoryMB -= limits.memoryMB();
                u.cpus = u.sandboxes == 0 ? 0 : u.cpus - limits.cpus();
            }
        };
    }

    private static void prune(Usage u, long now) {
        while (!u.creates.isEmpty() && u.creates.peekFirst() <= now - MINUTE_MS) u.creates.pollFirst();
    }

    private static StockadeError exhausted(String message, long retryAfterSeconds) {
        return StockadeError.exhausted(message, retryAfterSeconds);
    }

    private static String fmt(double d) {
        return d == Math.rint(d) ? Long.toString((long) d) : Double.toString(Math.round(d * 1000) / 1000.0);
    }
}
