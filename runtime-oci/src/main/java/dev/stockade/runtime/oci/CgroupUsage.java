package dev.stockade.runtime.oci;

import dev.stockade.runtime.ResourceUsage;
import dev.stockade.runtime.RuntimeFailure;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Reads a sandbox's resource usage on the host for {@link OciRuntime#stats}: memory and CPU from
 * its cgroup (v1: the memory and cpuacct controllers; v2: the unified directory), the disk's bytes
 * and inodes from its own filesystem ({@link LoopDisk#usage}), apart from memory. runc and runsc both keep the container's cgroup on the host under the same
 * name, so one reader serves both. Called from the server's metrics sampler thread; only reads files.
 */
final class CgroupUsage {
    private static final Path ROOT = Path.of("/sys/fs/cgroup");

    private CgroupUsage() {}

    static ResourceUsage read(String id, BundleLayout layout) {
        Path disk = layout.disk();
        String cg = OciConfigPlanner.containerId(id);
        try {
            boolean v2 = Files.exists(ROOT.resolve("cgroup.controllers"));
            long memory;
            long limit;
            long cache;
            long cpuNanos;
            if (v2) {
                Path dir = existing(id, ROOT.resolve(cg));
                memory = number(dir.resolve("memory.current"));
                String max = Files.readString(dir.resolve("memory.max")).strip();
                limit = max.equals("max") ? hostMemory() : Long.parseLong(max);
                cache = RunscRuntime.counter(dir.resolve("memory.stat"), "file");
                cpuNanos = RunscRuntime.counter(dir.resolve("cpu.stat"), "usage_usec") * 1000;
            } else {
                Path mem = existing(id, ROOT.resolve("memory").resolve(cg));
                memory = number(mem.resolve("memory.usage_in_bytes"));
                limit = Math.min(number(mem.resolve("memory.limit_in_bytes")), hostMemory());
                cache = RunscRuntime.counter(mem.resolve("memory.stat"), "total_cache");
                Path cpu = null;
                for (String controller : List.of("cpuacct", "cpu,cpuacct")) {
                    Path p = ROOT.resolve(controller).resolve(cg);
                    if (Files.isDirectory(p)) cpu = p;
                }
                cpuNanos = number(existing(id, cpu).resolve("cpuacct.usage"));
            }
            LoopDisk.Usage d = LoopDisk.usage(layout);
            return new ResourceUsage(memory, limit, Math.min(cache, memory), cpuNanos, d.usedBytes(), d.totalBytes(),
                    d.usedInodes(), d.totalInodes());
        } catch (IOException | NumberFormatException | Libc.LibcException e) {
            if (!Files.isDirectory(disk)) throw notRunning(id);
            throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "reading the resource usage of sandbox " + id
                    + " failed: " + e.getMessage());
        }
    }

    private static Path existing(String id, Path dir) {
        if (dir == null || !Files.isDirectory(dir)) throw notRunning(id);
        return dir;
    }

    private static long number(Path file) throws IOException {
        return Long.parseLong(Files.readString(file).strip());
    }

    /** The host's memory: what "no limit" means (v1 writes a huge number, v2 "max"). */
    private static long hostMemory() throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
            if (line.startsWith("MemTotal:")) return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
        }
        return Long.MAX_VALUE;
    }

    private static RuntimeFailure notRunning(String id) {
        return new RuntimeFailure(RuntimeFailure.Code.NOT_FOUND, "sandbox " + id + " has no cgroup (is it running?)");
    }
}
