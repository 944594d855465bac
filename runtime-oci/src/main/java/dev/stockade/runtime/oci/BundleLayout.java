package dev.stockade.runtime.oci;

import java.nio.file.Path;

/**
 * Where one sandbox's pieces live on the host, all under its state directory:
 * <pre>
 *   STATE/config.json     the OCI bundle's config (STATE is the bundle)
 *   STATE/disk.img        the sparse image of the sandbox's disk (ext4, {@link LoopDisk})
 *   STATE/disk/           that disk, loop-mounted: the sandbox's whole writable storage (a
 *                         size-limited tmpfs where loop devices are unavailable: OciRuntime)
 *   STATE/disk/quota-ballast  space taken from the disk when its quota shrank while it ran
 *   STATE/disk/upper      overlay upper directory (everything the sandbox writes)
 *   STATE/disk/work       overlay work directory
 *   STATE/disk/agent.log  the agent's stdout/stderr (on the disk, so a noisy agent fills only its own quota)
 *   STATE/disk/run/       bound at /run/stockade inside: the agent's socket (on the disk, so
 *                         what the sandbox's root writes there counts against its disk quota)
 *   STATE/rootfs/         the overlay mount: the sandbox's root
 *   STATE/l/N/            the template's layer N (0 = top), idmapped read-only ({@link LayerMounts})
 * </pre>
 */
record BundleLayout(Path state) {
    Path config() { return state.resolve("config.json"); }
    Path disk() { return state.resolve("disk"); }
    Path image() { return state.resolve("disk.img"); }
    Path ballast() { return disk().resolve("quota-ballast"); }
    Path upper() { return disk().resolve("upper"); }
    Path work() { return disk().resolve("work"); }
    Path agentLog() { return disk().resolve("agent.log"); }
    Path rootfs() { return state.resolve("rootfs"); }
    Path run() { return disk().resolve("run"); }
    Path agentSocket() { return run().resolve("agent.sock"); }
    Path pidFile() { return state.resolve("init.pid"); }

    /** The agent, as bytecode or source: python tells them apart by the magic number (no extension). */
    static final String AGENT_PATH_INSIDE = "/opt/stockade/agent";
    /** The agent's directory (agent, kernel), bound read-only from the server's data directory. */
    static final String AGENT_DIR_INSIDE = "/opt/stockade";
    static final String RUN_DIR_INSIDE = "/run/stockade";
    static final String SOCKET_INSIDE = RUN_DIR_INSIDE + "/agent.sock";
}
