package dev.stockade.server.core;

import java.time.Instant;

/**
 * One reading of a sandbox's resource usage, taken by {@link UsageSampler} from its cgroup and disk
 * quota on the host: what E2B's {@code GET /sandboxes/{id}/metrics} returns, one entry per reading.
 *
 * @param at when it was read
 * @param cpuCount the cores the sandbox may use (its CPU limit, rounded up)
 * @param cpuUsedPct CPU used since the previous reading, in percent of {@code cpuCount}'s worth
 *     of time (the cgroup's CPU time delta over the wall-clock delta)
 * @param memUsed bytes its cgroup is charged for
 * @param memTotal its cgroup's memory limit in bytes
 * @param memCache page cache within {@code memUsed}
 * @param diskUsed bytes used on its writable disk
 * @param diskTotal its disk quota in bytes
 * @param inodesUsed inodes (files, directories, links) in use on its disk
 * @param inodesTotal the inodes its disk may hold (the file quota)
 */
public record UsageSample(Instant at, int cpuCount, double cpuUsedPct, long memUsed, long memTotal, long memCache,
                          long diskUsed, long diskTotal, long inodesUsed, long inodesTotal) {}
