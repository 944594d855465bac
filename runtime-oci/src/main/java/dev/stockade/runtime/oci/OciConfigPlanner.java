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
 * loses on exec as uid 1000; no_new_privs; the seccomp deny-list; masked /proc paths; read-only
 * /proc/sys, /sys and /usr; a minimal /dev; memory without swap, pids and CPU quotas.
 */
final class OciConfigPlanner {
    static final List<String> AGENT_CAPABILITIES = List.of(
            "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_SETUID", "CAP_SETGID", "CAP_KILL");
    static final int ID_RANGE = 65536;
    static final String HOSTNAME = "sandbox";

    private final ObjectMapper json;
    private final JsonNode seccomp;
    private final boolean swapAccounting;

    /**
     * @param swapAccounting whether the host's memory cgroup can limit swap (v1 memsw files, or
     *     v2); when it cannot, the memory limit alone applies and swap is whatever the host allows
     */
    OciConfigPlanner(ObjectMapper json, JsonNode seccompPolicy, boolean swapAccounting) {
        this.json = json;
        this.seccomp = SeccompPolicy.toOci(json, seccompPolicy);
        this.swapAccounting = swapAccounting;
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
        mount(mounts, "/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev");
        // A sysfs of the sandbox's own network namespace, not a bind of the host's /sys: the host's
        // showed the host's interfaces (/sys/class/net: eth0...) to the sandbox.
        mount(mounts, "/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro");
        mount(mounts, "/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec", "nodev", "relatime", "ro");
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
        long memory = (long) limits.memoryMB() * 1024 * 1024;
        ObjectNode mem = resources.putObject("memory");
        mem.put("limit", memory);
        if (swapAccounting) mem.put("swap", memory); // memory+swap == memory: no swap
        resources.putObject("pids").put("limit", limits.pids());
        ObjectNode cpu = resources.putObject("cpu");
        long period = 100_000;
        cpu.put("quota", Math.max(1000, Math.round(limits.cpus() * period)));
        cpu.put("period", period);
        // A pooled sandbox warms up in the background: its imports get the CPU only when no other
        // sandbox wants it. The hand-over raises it to the normal share (RuncRuntime.setBackground).
        if (spec.warmup().defaultContext()) cpu.put("shares", RuncRuntime.BACKGROUND_SHARES);
        ArrayNode devices = resources.putArray("devices");
        devices.addObject().put("allow", false).put("access", "rwm");
        ArrayNode masked = linux.putArray("maskedPaths");
        for (String p : List.of("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/proc/sysrq-trigger",
                "/sys/firmware", "/sys/kernel", "/sys/devices/virtual/powercap")) {
            masked.add(p);
        }
        ArrayNode ro = linux.putArray("readonlyPaths");
        for (String p : List.of("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys")) {
            ro.add(p);
        }
        linux.set("seccomp", seccomp.deepCopy());
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
