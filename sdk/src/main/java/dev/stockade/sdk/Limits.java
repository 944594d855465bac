package dev.stockade.sdk;

/**
 * Resource limits a sandbox asks for (Stockade extension {@code limits} of the create body).
 * A null component leaves the server's default in place; asking for more than the server's
 * maximum is refused with {@link InvalidArgumentException}, never silently lowered.
 *
 * <pre>{@code
 * Limits limits = Limits.builder().memoryMB(1024).cpus(1.5).commandTimeoutSeconds(120).build();
 * }</pre>
 *
 * @param memoryMB memory in MiB, swap excluded
 * @param cpus CPU quota in cores
 * @param pids the most processes and threads alive at once
 * @param diskMB space on the sandbox's writable layer, in MiB
 * @param outputMB the most output one command may produce, in MiB
 * @param commandTimeoutSeconds the server's wall-clock limit per command
 */
public record Limits(
        Integer memoryMB, Double cpus, Integer pids, Integer diskMB, Integer outputMB, Integer commandTimeoutSeconds) {

    public Limits {
        positive("memoryMB", memoryMB);
        positive("pids", pids);
        positive("diskMB", diskMB);
        positive("outputMB", outputMB);
        positive("commandTimeoutSeconds", commandTimeoutSeconds);
        if (cpus != null && !(cpus > 0)) throw new IllegalArgumentException("cpus must be positive, got " + cpus);
    }

    public static Builder builder() {
        return new Builder();
    }

    private static void positive(String name, Integer value) {
        if (value != null && value <= 0) throw new IllegalArgumentException(name + " must be positive, got " + value);
    }

    /** Builds {@link Limits}; every setting is optional. Not thread-safe. */
    public static final class Builder {
        private Integer memoryMB;
        private Double cpus;
        private Integer pids;
        private Integer diskMB;
        private Integer outputMB;
        private Integer commandTimeoutSeconds;

        private Builder() {}

        public Builder memoryMB(int value) {
            memoryMB = value;
            return this;
        }

        public Builder cpus(double value) {
            cpus = value;
            return this;
        }

        public Builder pids(int value) {
            pids = value;
            return this;
        }

        public Builder diskMB(int value) {
            diskMB = value;
            return this;
        }

        public Builder outputMB(int value) {
            outputMB = value;
            return this;
        }

        public Builder commandTimeoutSeconds(int value) {
            commandTimeoutSeconds = value;
            return this;
        }

        public Limits build() {
            return new Limits(memoryMB, cpus, pids, diskMB, outputMB, commandTimeoutSeconds);
        }
    }
}
