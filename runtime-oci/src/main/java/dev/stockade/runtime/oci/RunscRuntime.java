package dev.stockade.runtime.oci;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.runtime.Capabilities;
import dev.stockade.runtime.Limits;
import dev.stockade.runtime.RuntimeFailure;
import dev.stockade.runtime.Template;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;

/**
 * The hardened tier: the same bundle as {@link RuncRuntime} ({@link OciRuntime}), run by gVisor's
 * {@code runsc}, so user code's system calls are served by gVisor's user-space kernel (the sentry)
 * and never reach the host kernel. What differs, and why, is in docs/runtime-runsc.md and
 * policy/runsc.json; in short:
 * <ul>
 *   <li>the plan ({@link #PROFILE}): no seccomp section, no mqueue/cgroup mounts, no /proc masks,
 *       an explicit /tmp, and room in the host cgroup for the sentry, the gofer and ptrace stubs;
 *   <li>the default template gets a small compatibility library (policy/runsc.json "compat") that
 *       makes {@code ls -la} work on this gVisor, compiled on the host with {@code cc};
 *   <li>limits change by writing the cgroup files ({@code runsc update} does not exist), and a
 *       limit that is reached ends the whole sandbox, which {@link #endReason} explains.
 * </ul>
 *
 * <p>Thread-safety: calls for different ids run concurrently; calls for one id are serialised.
 */
public final class RunscRuntime extends OciRuntime {
    /**
     * Host memory the sandbox's cgroup gets on top of its memory limit: the sentry (Go heap and
     * page tables), the gofer and the ptrace stubs are charged there too. Measured idle: 30 MB;
     * after importing numpy, pandas and matplotlib: ~20 MB more than the imports' own memory
     * (docs/runtime-runsc.md).
     */
    static final int MEMORY_OVERHEAD_MB = 64;
    /**
     * Host tasks per sandbox process: on the ptrace platform every address space gets a stub
     * process with a thread for each sentry thread that ran it. Measured: 50 idle processes cost
     * 1 313 host tasks (26 each) on 2 cores; 50 threads of one process cost 9.
     */
    static final int PIDS_PER_PROCESS = 32;
    /** Host tasks of the sentry and gofer themselves: 46 measured idle, with the agent. */
    static final int PIDS_OVERHEAD = 128;

    static final OciConfigPlanner.Profile PROFILE =
            new OciConfigPlanner.Profile(null, false, false, true, MEMORY_OVERHEAD_MB, PIDS_PER_PROCESS, PIDS_OVERHEAD);

    static final String COMPAT_SOURCE = "/dev/stockade/runtime/oci/stockade_compat.c";
    static final String COMPAT_DIR_INSIDE = "/opt/stockade-compat";
    private static final Duration CC_TIMEOUT = Duration.ofSeconds(60);

    private final boolean swapAccounting;
    private final String version;

    RunscRuntime(String name, String binary, List<String> globalArgs, Path stateRoot, ObjectMapper json,
                 boolean swapAccounting, String version) {
        super(name, binary, globalArgs, stateRoot, json, new OciConfigPlanner(json, PROFILE, swapAccounting));
        this.swapAccounting = swapAccounting;
        this.version = version;
    }

    @Override
    public String isolation() {
        return "gVisor user-space kernel (runsc " + version + ", ptrace platform): user code's system calls are served"
                + " by gVisor's sentry, never the host kernel; the sentry and its file proxy run in Linux namespaces as"
                + " unprivileged host users under cgroup limits; loopback-only network; a memory or process limit that"
                + " is reached ends the whole sandbox";
    }

    /**
     * Each tested against the real runsc (RunscRuntimeTest, docs/runtime-runsc.md). Not declared:
     * seccomp (the sentry is the boundary, policy/runsc.json), per-process-limits (a limit ends the
     * sandbox), memory-snapshot (checkpoint fails while the agent's host socket is bound),
     * user-xattrs (the gofer-backed root answers EOPNOTSUPP to user.* attributes).
     */
    @Override
    public Set<String> capabilities() {
        return Set.of(Capabilities.PAUSE, Capabilities.SNAPSHOT, Capabilities.NETWORK_ALLOWLIST,
                Capabilities.USERSPACE_KERNEL);
    }

    /**
     * Empty: the host processes of a runsc sandbox's cgroup are the sentry, the gofer and ptrace
     * stubs, whose command lines say nothing about what the user runs inside (an idle policy must
     * ask the agent instead).
     */
    @Override
    public List<String> processCommands(String id) {
        return List.of();
    }

    /**
     * Writes the cgroup files directly ({@code runsc update} does not exist in this version), with
     * the same overheads as the plan, then resizes the disk. The sentry's MemTotal stays what it was
     * at start.
     */
    @Override
    public void update(String id, Limits limits) {
        synchronized (lock(id)) {
            long memory = PROFILE.hostMemoryBytes(limits.memoryMB());
            long pids = PROFILE.hostPids(limits.pids());
            long quota = Math.max(1000, Math.round(limits.cpus() * 100_000));
            try {
                boolean v2 = Files.exists(Path.of("/sys/fs/cgroup/cgroup.controllers"));
                Path pidsMax = (v2 ? Path.of("/sys/fs/cgroup", cgroupName(id)) : v1(id, "pids")).resolve("pids.max");
                if (Files.isRegularFile(pidsMax) && Long.parseLong(Files.readString(pidsMax).strip()) != pids) {
                    // The users' process limit is the RLIMIT_NPROC the agent started with, inside the
                    // sentry, where the host cannot change it (prlimit reaches host processes only).
                    throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "the process limit of hardened sandbox " + id
                            + " is fixed when it starts; start a new sandbox for another pids limit");
                }
                if (v2) {
                    Path cg = Path.of("/sys/fs/cgroup", cgroupName(id));
                    if (!Files.isDirectory(cg)) throw notRunning(id);
                    // v2 takes a limit below the current use and then OOM-kills (which ends a runsc
                    // sandbox): refuse it instead, as v1's kernel does.
                    refuseBelowUse(id, "memory", memory, cg.resolve("memory.current"));
                    refuseBelowUse(id, "process", pids, cg.resolve("pids.current"));
                    Files.writeString(cg.resolve("memory.max"), Long.toString(memory));
                    if (swapAccounting && Files.exists(cg.resolve("memory.swap.max"))) {
                        Files.writeString(cg.resolve("memory.swap.max"), "0");
                    }
                    Files.writeString(cg.resolve("pids.max"), Long.toString(pids));
                    Files.writeString(cg.resolve("cpu.max"), quota + " 100000");
                } else {
                    Path mem = v1(id, "memory");
                    refuseBelowUse(id, "memory", memory, mem.resolve("memory.usage_in_bytes"));
                    refuseBelowUse(id, "process", pids, v1(id, "pids").resolve("pids.current"));
                    Path memsw = mem.resolve("memory.memsw.limit_in_bytes");
                    Path limit = mem.resolve("memory.limit_in_bytes");
                    // memory+swap may never be below memory: raise it first, lower it last.
                    boolean raising = Files.exists(memsw) && memory > Long.parseLong(Files.readString(memsw).strip());
                    if (raising) Files.writeString(memsw, Long.toString(memory));
                    Files.writeString(limit, Long.toString(memory));
                    if (!raising && Files.exists(memsw)) Files.writeString(memsw, Long.toString(memory));
                    Files.writeString(v1(id, "pids").resolve("pids.max"), Long.toString(pids));
                    Path cpu = v1(id, "cpu");
                    Files.writeString(cpu.resolve("cpu.cfs_period_us"), "100000");
                    Files.writeString(cpu.resolve("cpu.cfs_quota_us"), Long.toString(quota));
                }
            } catch (IOException | NumberFormatException e) {
                throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "changing the limits of sandbox " + id
                        + " failed: " + e.getMessage() + ". A memory limit below what the sandbox already uses is"
                        + " refused by the kernel.");
            }
            resizeDisk(id, limits.diskMB());
        }
    }

    /**
     * Refuses a new {@code what} limit below what the sandbox uses now: lowering a runsc sandbox's
     * limit under its use would end the whole sandbox (the kernel OOM-kills, or the next fork of the
     * sentry fails) instead of failing the change.
     */
    private static void refuseBelowUse(String id, String what, long limit, Path current) throws IOException {
        if (!Files.isRegularFile(current)) return;
        long used = Long.parseLong(Files.readString(current).strip());
        if (limit < used) {
            throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "the new " + what + " limit of sandbox " + id
                    + " (" + limit + " on the host) is below what it uses now (" + used + "); the hardened runtime would end"
                    + " the whole sandbox, so the limits were left as they were");
        }
    }

    /**
     * Why the container stopped, from its host cgroup's counters (asked before destroy removes
     * them): the memory cgroup's OOM kills, or forks the pids controller refused. Either ends the
     * whole sandbox under this gVisor (a ptrace stub killed, or the sentry unable to create one).
     */
    @Override
    public Optional<String> endReason(String id) {
        try {
            boolean v2 = Files.exists(Path.of("/sys/fs/cgroup/cgroup.controllers"));
            Path mem = v2 ? Path.of("/sys/fs/cgroup", cgroupName(id)) : Path.of("/sys/fs/cgroup/memory", cgroupName(id));
            Path pids = v2 ? mem : Path.of("/sys/fs/cgroup/pids", cgroupName(id));
            long oomKills = v2 ? counter(mem.resolve("memory.events"), "oom_kill")
                    : counter(mem.resolve("memory.oom_control"), "oom_kill");
            if (oomKills > 0) {
                long limit = Long.parseLong(Files.readString(mem.resolve(v2 ? "memory.max" : "memory.limit_in_bytes")).strip());
                long memoryMB = limit / (1024 * 1024) - MEMORY_OVERHEAD_MB;
                return Optional.of("the sandbox reached its memory limit of " + memoryMB + " MiB; the hardened runtime"
                        + " (runsc) ends the whole sandbox when that happens");
            }
            if (counter(pids.resolve("pids.events"), "max") > 0) {
                long max = Long.parseLong(Files.readString(pids.resolve("pids.max")).strip());
                long userPids = PROFILE.userPids(max);
                return Optional.of("the sandbox reached its process limit of " + userPids + " processes; the hardened"
                        + " runtime (runsc) ends the whole sandbox when that happens");
            }
        } catch (IOException | NumberFormatException unknown) {
            // no cgroup left (or an unreadable one): the runtime cannot tell
        }
        return Optional.empty();
    }

    /** A "name value" line's value from a cgroup file such as memory.oom_control or pids.events; 0 without it. */
    static long counter(Path file, String name) throws IOException {
        if (!Files.isRegularFile(file)) return 0;
        for (String line : Files.readAllLines(file)) {
            String[] f = line.strip().split("\\s+");
            if (f.length == 2 && f[0].equals(name) && f[1].matches("\\d{1,19}")) return Long.parseLong(f[1]);
        }
        return 0;
    }

    private static String cgroupName(String id) {
        return OciConfigPlanner.containerId(id);
    }

    /** The sandbox's cgroup v1 directory of {@code controller} (cpu may be mounted as cpu,cpuacct). */
    private static Path v1(String id, String controller) {
        for (String dir : controller.equals("cpu") ? List.of("cpu", "cpu,cpuacct") : List.of(controller)) {
            Path p = Path.of("/sys/fs/cgroup", dir, cgroupName(id));
            if (Files.isDirectory(p)) return p;
        }
        throw notRunning(id);
    }

    private static RuntimeFailure notRunning(String id) {
        return new RuntimeFailure(RuntimeFailure.Code.NOT_FOUND, "sandbox " + id + " has no cgroup (is it running?)");
    }

    /**
     * The default template plus the compatibility library: compiled from {@link #COMPAT_SOURCE} into
     * the template's {@value #COMPAT_DIR_INSIDE} under a name holding the source's hash, and named
     * in the template's /etc/ld.so.preload. The template lies under this runtime's own state root,
     * so runc's sandboxes never see either file. Done once per source version.
     */
    @Override
    Template prepareTemplate(Template built) {
        try {
            byte[] source;
            try (InputStream in = RunscRuntime.class.getResourceAsStream(COMPAT_SOURCE)) {
                if (in == null) throw new IllegalStateException("missing from the classpath: " + COMPAT_SOURCE);
                source = in.readAllBytes();
            }
            String hash = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(source)).substring(0, 16);
            String libName = "libstockade-compat-" + hash + ".so";
            Path dir = built.lowerDir().resolve(COMPAT_DIR_INSIDE.substring(1));
            Path lib = dir.resolve(libName);
            Path preload = built.lowerDir().resolve("etc/ld.so.preload");
            String line = COMPAT_DIR_INSIDE + "/" + libName + "\n";
            if (Files.isRegularFile(lib) && Files.isRegularFile(preload) && Files.readString(preload).equals(line)) {
                return built;
            }
            Files.createDirectories(dir);
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
            String tmp = ".tmp-" + UUID.randomUUID();
            Path src = dir.resolve(tmp + ".c");
            Path out = dir.resolve(tmp + ".so");
            try {
                Files.write(src, source);
                HostCommand.Result r = HostCommand.run(List.of("cc", "-shared", "-fPIC", "-O2", "-Wall", "-Werror",
                        "-Wl,-z,now", "-o", out.toString(), src.toString(), "-ldl"), CC_TIMEOUT);
                if (!r.ok()) {
                    throw new RuntimeFailure(RuntimeFailure.Code.UNAVAILABLE, "compiling runsc's compatibility library"
                            + " failed (exit " + r.exitCode() + "): " + r.output() + ". Install a C compiler and glibc's"
                            + " headers (`apt-get install gcc libc6-dev`).");
                }
                Files.setPosixFilePermissions(out, PosixFilePermissions.fromString("rwxr-xr-x"));
                Files.move(out, lib, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                Path preloadTmp = preload.resolveSibling("ld.so.preload" + tmp);
                Files.writeString(preloadTmp, line, StandardCharsets.US_ASCII);
                Files.setPosixFilePermissions(preloadTmp, PosixFilePermissions.fromString("rw-r--r--"));
                Files.move(preloadTmp, preload, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } finally {
                Files.deleteIfExists(src);
                Files.deleteIfExists(out);
            }
            return built;
        } catch (IOException | NoSuchAlgorithmException e) {
            throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "preparing runsc's template under "
                    + built.lowerDir() + " failed: " + e.getMessage() + ". Check that the data directory is writable.");
        }
    }
}
