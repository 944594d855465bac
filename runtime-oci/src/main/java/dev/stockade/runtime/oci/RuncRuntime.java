package dev.stockade.runtime.oci;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.runtime.Capabilities;
import dev.stockade.runtime.RuntimeFailure;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The standard tier: one long-lived runc container per sandbox (the bundle, mounts and lifecycle
 * are {@link OciRuntime}'s). What is runc's own: the seccomp allow-list and the host kernel, limits
 * changed with {@code runc update}, pause and resume written to its cgroup freezer, and the
 * sandbox's processes readable in its host cgroup.
 *
 * <p>Thread-safety: calls for different ids run concurrently; calls for one id are serialised.
 */
public final class RuncRuntime extends OciRuntime {
    private final boolean swapAccounting;

    RuncRuntime(String name, String binary, List<String> globalArgs, Path stateRoot, ObjectMapper json,
                boolean swapAccounting) {
        super(name, binary, globalArgs, stateRoot, json,
                new OciConfigPlanner(json, SeccompPolicy.loadPolicy(json), swapAccounting));
        this.swapAccounting = swapAccounting;
    }

    @Override
    public String isolation() {
        return "Linux namespaces (user, pid, mount, network, ipc, uts, cgroup), seccomp allow-list, no capabilities "
                + "for user code, cgroup limits; shares the host kernel";
    }

    @Override
    public Set<String> capabilities() {
        return Set.of(Capabilities.PAUSE, Capabilities.SNAPSHOT, Capabilities.NETWORK_ALLOWLIST, Capabilities.PER_PROCESS_LIMITS,
                Capabilities.SECCOMP, Capabilities.USER_XATTRS);
    }

    /** Written to the cgroup freezer directly ({@link CgroupFreezer}): no runc process per pause. */
    @Override
    public void pause(String id) {
        synchronized (lock(id)) {
            CgroupFreezer.of(id).freeze(CgroupFreezer.FREEZE_TIMEOUT);
        }
    }

    @Override
    public void resume(String id) {
        synchronized (lock(id)) {
            CgroupFreezer.of(id).thaw();
        }
    }

    /** How long a killed init may take to go before {@code runc delete --force} is left to finish the job. */
    private static final int INIT_EXIT_WAIT_MS = 2000;

    /**
     * SIGKILL to the container's init through a pidfd, then a wait for it to end; the kernel ends
     * every other process of its pid namespace with it, and {@code runc delete} then finds a
     * stopped container and removes it at once. {@code runc delete --force} of a running one
     * signals the init and sleeps 100 ms before it looks again (runc 1.1): that sleep was most of
     * a kill (110 ms of ~120, issue 16). The pid comes from runc's pid file, and the signal goes
     * only to a process found in this sandbox's own cgroup after the pidfd was opened (the pidfd
     * pins it, so a reused pid cannot be hit). A paused sandbox is left to runc (a frozen task
     * does not die until thawed under cgroup v1), as is anything unexpected.
     */
    @Override
    void endInit(String id, BundleLayout layout) {
        long pid;
        try {
            String text = Files.readString(layout.pidFile()).strip();
            if (!text.matches("\\d{1,10}")) return;
            pid = Long.parseLong(text);
            if (!CgroupFreezer.of(id).thawed()) return;
        } catch (IOException | RuntimeFailure e) {
            return;
        }
        int pidfd = Libc.pidfdOpen(pid);
        if (pidfd < 0) return; // ended already (ESRCH), or no pidfds on this kernel
        try {
            if (!inOwnCgroup(pid, id)) return;
            if (Libc.pidfdSendSignal(pidfd, Libc.SIGKILL) == 0) Libc.pollIn(pidfd, INIT_EXIT_WAIT_MS);
        } finally {
            Libc.close(pidfd);
        }
    }

    /** Whether process {@code pid} is in this sandbox's cgroup (/proc/PID/cgroup names {@code /stockade-ID}). */
    private static boolean inOwnCgroup(long pid, String id) {
        String own = "/" + OciConfigPlanner.containerId(id);
        try {
            for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "cgroup"))) {
                if (line.endsWith(":" + own)) return true;
            }
        } catch (IOException gone) {
            // ended meanwhile
        }
        return false;
    }

    @Override
    public void update(String id, dev.stockade.runtime.Limits limits) {
        synchronized (lock(id)) {
            long memory = (long) limits.memoryMB() * 1024 * 1024;
            List<String> args = new ArrayList<>(List.of("update", "--memory", Long.toString(memory)));
            if (swapAccounting) args.addAll(List.of("--memory-swap", Long.toString(memory)));
            args.addAll(List.of("--pids-limit", Long.toString(planner.profile().hostPids(limits.pids())),
                    "--cpu-period", "100000", "--cpu-quota", Long.toString(Math.max(1000, Math.round(limits.cpus() * 100_000))),
                    OciConfigPlanner.containerId(id)));
            HostCommand.Result r = HostCommand.run(command(args.toArray(String[]::new)), RUNC_TIMEOUT);
            if (!r.ok()) {
                throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "changing the limits of sandbox " + id
                        + " failed (exit " + r.exitCode() + "): " + r.output().strip());
            }
            setUserPids(id, limits.pids());
            resizeDisk(id, limits.diskMB());
        }
    }

    /**
     * Gives every process of the sandbox RLIMIT_NPROC {@code pids}, as the plan gave the agent at
     * start (OciConfigPlanner): the agent reads its own back at each spawn, so later processes, and
     * root's lower share, follow. Only the host (CAP_SYS_RESOURCE) can raise it.
     */
    private void setUserPids(String id, int pids) {
        Path procs = cgroupProcs(id);
        if (procs == null) throw new RuntimeFailure(RuntimeFailure.Code.NOT_FOUND, "sandbox " + id + " has no processes");
        List<String> pidLines;
        try {
            pidLines = Files.readAllLines(procs);
        } catch (IOException e) {
            throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "reading the processes of sandbox " + id + " failed: "
                    + e.getMessage());
        }
        for (String line : pidLines) {
            if (!line.strip().matches("\\d{1,10}")) continue;
            int errno = Libc.prlimit(Long.parseLong(line.strip()), Libc.RLIMIT_NPROC, pids);
            if (errno != 0 && errno != 3) { // ESRCH: it ended meanwhile
                throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "changing the process limit of sandbox " + id
                        + " failed: " + Libc.strerror(errno));
            }
        }
    }

    /** The sandbox's cgroup.procs (cgroup v1's pids hierarchy, or v2's), or null without one. */
    private static Path cgroupProcs(String id) {
        String cg = "stockade-" + id;
        for (Path p : List.of(Path.of("/sys/fs/cgroup/pids", cg, "cgroup.procs"), Path.of("/sys/fs/cgroup", cg, "cgroup.procs"))) {
            if (Files.isRegularFile(p)) return p;
        }
        return null;
    }

    @Override
    public List<String> processCommands(String id) {
        Path procs = cgroupProcs(id);
        if (procs == null) return List.of();
        long init = -1;
        try {
            String text = Files.readString(new BundleLayout(sandboxesRoot.resolve(id)).pidFile()).strip();
            if (text.matches("\\d{1,10}")) init = Long.parseLong(text);
        } catch (IOException unknown) {
            // every process is reported then
        }
        List<String> out = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(procs)) {
                if (line.isBlank() || Long.parseLong(line.strip()) == init) continue;
                try {
                    byte[] cmd = Files.readAllBytes(Path.of("/proc", line.strip(), "cmdline"));
                    out.add(new String(cmd, java.nio.charset.StandardCharsets.UTF_8).replace('\0', ' ').strip());
                } catch (IOException gone) {
                    // exited meanwhile
                }
            }
        } catch (IOException | NumberFormatException e) {
            return List.of();
        }
        return out;
    }
}
