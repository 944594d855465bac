package dev.stockade.runtime;

/**
 * The names of the optional features a runtime may declare in {@link SandboxRuntime#capabilities()}.
 * The server refuses a request that needs a feature the sandbox's runtime lacks with a 400 naming it;
 * the conformance kit skips a test only when the runtime under test lacks the feature it needs,
 * and prints why.
 */
public final class Capabilities {
    /** Freeze a sandbox in place and thaw it (processes, memory, files kept; in host memory). */
    public static final String PAUSE = "pause";
    /** Copy a sandbox's files into a snapshot that new sandboxes start from (filesystem only). */
    public static final String SNAPSHOT = "snapshot";
    /** Save a sandbox's memory and processes to disk and restore them (checkpoint/restore). */
    public static final String MEMORY_SNAPSHOT = "memory-snapshot";
    /** Outbound HTTP(S) through the host's egress proxy (allow-lists, packages, secrets). */
    public static final String NETWORK_ALLOWLIST = "network-allowlist";
    /**
     * A process that reaches the memory or process limit is the one that fails (killed by the OOM
     * killer, or its fork refused) while the sandbox and its other processes go on. Without it, the
     * runtime ends the whole sandbox when a limit is reached, and says why.
     */
    public static final String PER_PROCESS_LIMITS = "per-process-limits";
    /** The OCI seccomp allow-list (policy/seccomp.json) filters user code's system calls on the host kernel. */
    public static final String SECCOMP = "seccomp";
    /** User code's system calls are served by a kernel of the runtime's own, never the host's. */
    public static final String USERSPACE_KERNEL = "userspace-kernel";
    /**
     * The sandbox's files take {@code user.*} extended attributes, where file metadata (E2B's
     * {@code X-Metadata-*} uploads) is kept; without it, a write with metadata is refused (400).
     */
    public static final String USER_XATTRS = "user-xattrs";

    private Capabilities() {
    }
}
