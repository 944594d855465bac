package dev.stockade.runtime.oci;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.runtime.Limits;
import dev.stockade.runtime.SandboxSpec;
import java.nio.file.Path;
import java.util.List;

/**
 * Plans a sandbox's OCI config.json from its spec: pure data in, data out, no host access, so it is
 * tested without root against a golden file. {@link RuncRuntime} only acts on the plan.
 *
 * <p>What the plan promises (SPECIFICATION.md S-ISO-*): all namespaces including user and network
 * (loopback only); the user namespace maps the sandbox onto its own unprivileged host range; the
 * agent keeps only the capabilities it needs to switch to the user and manage files, which user code
 * loses on exec as uid 1000; no_new_privs; the seccomp allow-list; masked /proc paths; read-only
 * /proc/sys, /sys and /usr; a minimal /dev; memory without swap, pids and CPU quotas.
 *
 * <p>Processes have two limits so that user code at its limit never costs the owner the sandbox
 * (SPECIFICATION.md S2.13h): RLIMIT_NPROC = {@code pids}, set on the agent and inherited by every
 * process, counts the tasks of each sandbox user (uids are the sandbox's own host range, so the
 * count is this sandbox's alone; the sandbox's root has no CAP_SYS_RESOURCE in the host namespace,
 * so nobody inside can raise it); the cgroup allows that for each of the API's two users
 * ({@link #API_USERS}: both may storm at once) plus {@link #AGENT_PIDS_RESERVE}, the agent's headroom
 * for its threads and for the commands, file operations and kills its owner asks for.
 */
final class OciConfigPlanner {
    static final List<String> AGENT_CAPABILITIES = List.of(
            "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETUID", "CAP_SETGID", "CAP_KILL");
    static final int ID_RANGE = 65536;
    /**
     * Tasks the sandbox's cgroup allows beyond {@code pids}: the agent's own (a thread per request
     * and per running process, the relay) while user code holds all of its {@code pids}.
     */
    static final int AGENT_PIDS_RESERVE = 64;
    /**
     * The users the API runs processes as — "user" (uid 1000) and "root" — each counted by
     * RLIMIT_NPROC on its own: the cgroup has room for all of them at their limit at once, so that
     * two users storming together cannot take the agent's reserve (issue 15, item 1).
     */
    static final int API_USERS = 2;
    static final String HOSTNAME = "sandbox";

    private final ObjectMapper json;
    private final Profile profile;
    private final boolean swapAccounting;

    /**
     * What one OCI runtime needs planned differently, as data. runc's profile is the plan described
     * above; runsc's (docs/runtime-runsc.md) drops what gVisor ignores or lacks and adds room for
     * its own processes in the host cgroup.
     *
     * @param seccomp the OCI {@code linux.seccomp} section, or null for none
     * @param kernelMounts mount /dev/mqueue and the cgroup filesystem (gVisor ignores both)
     * @param procMasks mask the /proc paths of {@link #MASKED_PROC} (absent from gVisor's procfs)
     * @param tmpBind bind the root filesystem's own /tmp at /tmp: without a /tmp mount in the spec,
     *     runsc mounts a memory tmpfs of unlimited size there, outside the disk quota
     * @param memoryOverheadMB added to the sandbox's memory limit in the host cgroup, for the
     *     runtime's own processes that the cgroup also holds
     * @param pidsPerProcess host tasks one sandbox process may cost (1 when the sandbox's processes
     *     are host processes)
     * @param pidsOverhead host tasks of the runtime's own processes in the cgroup
     */
    record Profile(JsonNode seccomp, boolean kernelMounts, boolean procMasks, boolean tmpBind,
                   int memoryOverheadMB, int pidsPerProcess, int pidsOverhead) {
        Profile {
            if (memoryOverheadMB < 0 || pidsPerProcess < 1 || pidsOverhead < 0) {
                throw new IllegalArgumentException("invalid overheads: " + memoryOverheadMB + " MiB, " + pidsPerProcess
                        + " tasks per process, " + pidsOverhead + " tasks");
            }
        }

        /** runc: the host kernel runs the sandbox's processes themselves, under the seccomp allow-list. */
        static Profile runc(ObjectMapper json, JsonNode seccompPolicy) {
            return new Profile(SeccompPolicy.toOci(json, seccompPolicy), true, true, false, 0, 1, 0);
        }

        /** The host cgroup's memory limit for a sandbox of {@code memoryMB}. */
        long hostMemoryBytes(int memoryMB) {
            return ((long) memoryMB + memoryOverheadMB) * 1024 * 1024;
        }

        /**
         * The host cgroup's pids limit for a sandbox whose users may have {@code pids} processes and
         * threads each (their RLIMIT_NPROC): that for each of the API's users plus the agent's
         * reserve, in host tasks.
         */
        long hostPids(int pids) {
            return ((long) API_USERS * pids + AGENT_PIDS_RESERVE) * pidsPerProcess + pidsOverhead;
        }

        /** The users' process limit a host cgroup limit of {@code hostPids} was made for ({@link #hostPids}'s inverse). */
        long userPids(long hostPids) {
            return Math.max(0, ((hostPids - pidsOverhead) / pidsPerProcess - AGENT_PIDS_RESERVE) / API_USERS);
        }
    }

    /** /proc paths hidden from the sandbox where the kernel has them (the host's; gVisor has none of them). */
    static final List<String> MASKED_PROC = List.of("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
            "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
            "/proc/sysrq-trigger");

    /**
     * @param swapAccounting whether the host's memory cgroup can limit swap (v1 memsw files, or
     *     v2); when it cannot, the memory limit alone applies and swap is whatever the host allows
     */
    OciConfigPlanner(ObjectMapper json, JsonNode seccompPolicy, boolean swapAccounting) {
        this(json, Profile.runc(json, seccompPolicy), swapAccounting);
    }

    OciConfigPlanner(ObjectMapper json, Profile profile, boolean swapAccounting) {
        this.json = json;
        this.profile = profile;
        this.swapAccounting = swapAccounting;
    }

    Profile profile() {
        return profile;
    }

    static String containerId(String sandboxId) {
        return "stockade-" + sandboxId;
    }

    ObjectNode plan(SandboxSpec spec) {
        Limits limits = spec.limits();
        ObjectNode c = json.createObjectNode();
        c.put("ociVersion", "1.0.2");

        ObjectNode process = c.putObject("process");
        process.put("terminal", false);
        ObjectNode user = process.putObject("user");
        user.put("uid", 0);
        user.put("gid", 0);
        ArrayNode args = process.putArray("args");
        for (String a : List.of("/usr/bin/python3", "-I", "-S", BundleLayout.AGENT_PATH_INSIDE,
                "--socket", BundleLayout.SOCKET_INSIDE)) {
            args.add(a);
        }
        if (spec.egressSocket() != null) args.add("--egress").add(SandboxSpec.EGRESS_SOCKET_INSIDE);
        if (spec.warmup().defaultContext()) args.add("--warm-default");
        if (!spec.warmup().preload().isEmpty()) args.add("--preload").add(String.join(",", spec.warmup().preload()));
        // The agent's own environment; user processes get one built from scratch by the agent.
        process.putArray("env").add("PATH=/usr/sbin:/usr/bin:/sbin:/bin").add("LANG=C.UTF-8");
        process.put("cwd", "/");
        ObjectNode caps = process.putObject("capabilities");
        for (String set : List.of("bounding", "effective", "permitted")) {
            ArrayNode a = caps.putArray(set);
            AGENT_CAPABILITIES.forEach(a::add);
        }
        caps.putArray("inheritable");
        caps.putArray("ambient");
        ArrayNode rlimits = process.putArray("rlimits");
        rlimit(rlimits, "RLIMIT_NOFILE", 4096);
        rlimit(rlimits, "RLIMIT_CORE", 0);
        // Inherited by every process the agent starts, as each user (the agent reads it back as the
        // users' process limit and gives root's processes less: docs/runtime-runc.md "Headroom").
        rlimit(rlimits, "RLIMIT_NPROC", limits.pids());
        process.put("noNewPrivileges", true);

        ObjectNode root = c.putObject("root");
        root.put("path", "rootfs");
        root.put("readonly", false);
        c.put("hostname", HOSTNAME);

        ArrayNode mounts = c.putArray("mounts");
        mount(mounts, "/proc", "proc", "proc", "nosuid", "noexec", "nodev");
        mount(mounts, "/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k");
        mount(mounts, "/dev/pts", "devpts", "devpts", "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620");
        mount(mounts, "/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k");
        if (profile.kernelMounts()) mount(mounts, "/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev");
        // A sysfs of the sandbox's own network namespace, not a bind of the host's /sys: the host's
        // showed the host's interfaces (/sys/class/net: eth0...) to the sandbox.
        mount(mounts, "/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro");
        if (profile.kernelMounts()) {
            mount(mounts, "/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec", "nodev", "relatime", "ro");
        }
        if (profile.tmpBind()) {
            // The overlay's own /tmp (sticky, in the upper directory on the disk tmpfs), bound over
            // itself: it counts against diskMB and is in snapshots, as under runc.
            mount(mounts, "/tmp", "bind", new BundleLayout(spec.stateDir()).rootfs().resolve("tmp").toString(),
                    "rbind", "nosuid", "nodev");
        }
        for (Path bind : spec.template().readOnlyBinds()) {
            mount(mounts, bind.toString(), "none", bind.toString(), "rbind", "ro", "nosuid", "nodev");
        }
        mount(mounts, BundleLayout.AGENT_DIR_INSIDE, "none", spec.agentDir().toString(),
                "bind", "ro", "nosuid", "nodev");
        mount(mounts, BundleLayout.RUN_DIR_INSIDE, "none", new BundleLayout(spec.stateDir()).run().toString(),
                "bind", "nosuid", "nodev", "noexec");
        if (spec.egressSocket() != null) {
            // The one way out of the sandbox's loopback-only network: the server's egress proxy,
            // reached by the agent's relay (the socket is the sandbox root's, mode 0600).
            mount(mounts, SandboxSpec.EGRESS_DIR_INSIDE, "none", spec.egressSocket().getParent().toString(),
                    "bind", "ro", "nosuid", "nodev", "noexec");
        }

        ObjectNode linux = c.putObject("linux");
        idMap(linux.putArray("uidMappings"), spec.uidBase());
        idMap(linux.putArray("gidMappings"), spec.uidBase());
        ArrayNode ns = linux.putArray("namespaces");
        for (String t : List.of("pid", "network", "ipc", "uts", "mount", "user", "cgroup")) {
            ns.addObject().put("type", t);
        }
        linux.put("cgroupsPath", "/" + containerId(spec.id()));
        ObjectNode resources = linux.putObject("resources");
        long memory = profile.hostMemoryBytes(limits.memoryMB());
        ObjectNode mem = resources.putObject("memory");
        mem.put("limit", memory);
        if (swapAccounting) mem.put("swap", memory); // memory+swap == memory: no swap
        resources.putObject("pids").put("limit", profile.hostPids(limits.pids()));
        ObjectNode cpu = resources.putObject("cpu");
        long period = 100_000;
        cpu.put("quota", Math.max(1000, Math.round(limits.cpus() * period)));
        cpu.put("period", period);
        // A pooled sandbox warms up in the background: its imports get the CPU only when no other
        // sandbox wants it. The hand-over raises it to the normal share (OciRuntime.setBackground).
        if (spec.warmup().defaultContext()) cpu.put("shares", OciRuntime.BACKGROUND_SHARES);
        ArrayNode devices = resources.putArray("devices");
        devices.addObject().put("allow", false).put("access", "rwm");
        ArrayNode masked = linux.putArray("maskedPaths");
        if (profile.procMasks()) MASKED_PROC.forEach(masked::add);
        for (String p : List.of("/sys/firmware", "/sys/kernel", "/sys/devices/virtual/powercap")) {
            masked.add(p);
        }
        ArrayNode ro = linux.putArray("readonlyPaths");
        for (String p : List.of("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys")) {
            ro.add(p);
        }
        if (profile.seccomp() != null) linux.set("seccomp", profile.seccomp().deepCopy());
        return c;
    }

    private static void rlimit(ArrayNode rlimits, String type, long value) {
        rlimits.addObject().put("type", type).put("hard", value).put("soft", value);
    }

    private static void mount(ArrayNode mounts, String dest, String type, String source, String... options) {
        ObjectNode m = mounts.addObject();
        m.put("destination", dest);
        m.put("type", type);
        m.put("source", source);
        ArrayNode o = m.putArray("options");
        for (String opt : options) o.add(opt);
    }

    private static void idMap(ArrayNode maps, long hostBase) {
        maps.addObject().put("containerID", 0).put("hostID", hostBase).put("size", ID_RANGE);
    }
}
