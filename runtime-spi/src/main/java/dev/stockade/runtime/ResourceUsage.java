package dev.stockade.runtime;

/**
 * What one sandbox uses right now, as its runtime reads it on the host: its cgroup's memory and
 * CPU counters, and its disk's bytes and inodes (a filesystem of its own, not memory). A
 * reading, not a rate: the server turns two CPU readings into a
 * percentage.
 *
 * @param memoryBytes memory the sandbox's cgroup is charged for now (page cache included)
 * @param memoryLimitBytes the cgroup's memory limit (for runsc, the sandbox's limit plus the
 *     runtime's own overhead that the cgroup also holds)
 * @param cacheBytes page cache within {@code memoryBytes}
 * @param cpuNanos CPU time the cgroup has used since the sandbox started, in nanoseconds
 * @param diskUsedBytes bytes used on the sandbox's writable disk (its quota's filesystem)
 * @param diskTotalBytes the size of that disk (the quota)
 * @param inodesUsed files, directories and links on that disk (its inodes in use)
 * @param inodesTotal the inodes it may hold (the file quota)
 */
public record ResourceUsage(long memoryBytes, long memoryLimitBytes, long cacheBytes, long cpuNanos,
                            long diskUsedBytes, long diskTotalBytes, long inodesUsed, long inodesTotal) {
    public ResourceUsage {
        if (memoryBytes < 0 || memoryLimitBytes < 0 || cacheBytes < 0 || cpuNanos < 0 || diskUsedBytes < 0 || diskTotalBytes < 0
                || inodesUsed < 0 || inodesTotal < 0) {
            throw new IllegalArgumentException("resource readings are never negative");
        }
    }
}
