package dev.stockade.runtime;

/**
 * Resource limits of one sandbox. Every field is required here; defaults and server maxima are
 * applied by the server's policy before a spec reaches a runtime.
 *
 * @param memoryMB memory of the whole sandbox, no swap
 * @param cpus CPU time as a number of cores (0.5 = half a core)
 * @param pids processes and threads in the sandbox
 * @param diskMB writable layer (everything the sandbox writes to its filesystem)
 * @param outputMB stdout+stderr of one command before it is stopped
 * @param commandTimeoutSeconds wall clock of one command before it is killed
 */
public record Limits(int memoryMB, double cpus, int pids, int diskMB, int outputMB, int commandTimeoutSeconds) {
    public Limits {
        if (memoryMB < 16) throw new IllegalArgumentException("memoryMB must be at least 16, got " + memoryMB);
        if (!(cpus > 0 && cpus <= 1024)) throw new IllegalArgumentException("cpus must be in (0, 1024], got " + cpus);
        if (pids < 8) throw new IllegalArgumentException("pids must be at least 8, got " + pids);
        if (diskMB < 1) throw new IllegalArgumentException("diskMB must be at least 1, got " + diskMB);
        if (outputMB < 1) throw new IllegalArgumentException("outputMB must be at least 1, got " + outputMB);
        if (commandTimeoutSeconds < 1) throw new IllegalArgumentException("commandTimeoutSeconds must be at least 1, got " + commandTimeoutSeconds);
    }
}
