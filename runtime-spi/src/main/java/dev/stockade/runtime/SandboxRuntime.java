package dev.stockade.runtime;

import java.nio.file.Path;
import java.util.Set;

/**
 * The runtime contract: turn a {@link SandboxSpec} into an isolated, running environment whose
 * agent listens on a host unix socket, and tear it down again. A runtime decides how; the server
 * decides where and whether. Implementations are found through {@link RuntimeProvider} and
 * {@link java.util.ServiceLoader}; the server never names one.
 *
 * <p>Thread-safety: every method may be called concurrently for different sandbox ids.
 */
public interface SandboxRuntime {

    /** The name clients select it by ("runc", "runsc"). */
    String name();

    /** What isolation it gives, in one sentence for operators and the API. */
    String isolation();

    /** Optional features it supports, e.g. "pause", "memory-snapshot". */
    Set<String> capabilities();

    /**
     * The runtime's default template (for the OCI runtimes, the host's Python under Stockade's own
     * /etc), prepared under the runtime's state root on first use.
     */
    Template defaultTemplate();

    /** Starts the sandbox; on failure nothing of it is left behind. Blocks until the agent socket path is known. */
    RuntimeSandbox start(SandboxSpec spec);

    /**
     * Changes a running sandbox's resource limits (a pooled sandbox taken by a create that asked
     * for other limits than the pool's). Memory, pids and CPU take effect at once; a smaller disk
     * than what the sandbox already uses fails, and so may a runtime that cannot change the
     * users' process limit (RLIMIT_NPROC) of processes it does not own (runsc's sentry). On
     * failure the caller destroys the sandbox.
     */
    void update(String id, Limits limits);

    /**
     * Moves a sandbox between background (CPU only when nobody else wants it: a pooled sandbox
     * doing its warm-up) and foreground (a normal share). Sandboxes started with a
     * {@link SandboxSpec.Warmup} start in the background. Cheap: no process is started.
     */
    void setBackground(String id, boolean background);

    /** True while the sandbox's container is running (or paused). */
    boolean isAlive(String id);

    /**
     * Freezes every process of the sandbox where it is (the cgroup freezer): no CPU from then on,
     * memory, files and open descriptors kept. Only for runtimes with the "pause" capability.
     */
    default void pause(String id) {
        throw new RuntimeFailure(RuntimeFailure.Code.UNAVAILABLE, "runtime " + name() + " cannot pause sandboxes");
    }

    /**
     * Finds a sandbox this runtime started earlier (before the server restarted) and is still
     * running or paused; null when its container is gone. Changes nothing.
     */
    default RuntimeSandbox attach(String id) {
        return null;
    }

    /**
     * Why a sandbox's container stopped on its own, when the runtime can tell (e.g. "the sandbox
     * reached its memory limit of 512 MiB, and this runtime ends the whole sandbox when that
     * happens"); empty when it cannot. Asked after the container stopped and before
     * {@link #destroy}, which removes the evidence.
     */
    default java.util.Optional<String> endReason(String id) {
        return java.util.Optional.empty();
    }

    /** Whether the sandbox is paused (frozen) right now, as the runtime sees it. */
    default boolean isPaused(String id) {
        return false;
    }

    /**
     * Copies the sandbox's own files (what it changed on top of its template, deletions included)
     * into {@code target}, a new directory, with ownership mapped to canonical ids (0..65535), so that
     * {@link SandboxSpec#seed} can start other sandboxes with them. The caller pauses the sandbox
     * around it for a consistent copy. {@code uidBase} is the sandbox's range as the server assigned
     * it (never read from the sandbox's files, which its root may re-own). Returns the bytes copied.
     * Only with the "snapshot" capability.
     */
    default long snapshot(String id, Path target, long uidBase) {
        throw new RuntimeFailure(RuntimeFailure.Code.UNAVAILABLE, "runtime " + name() + " cannot snapshot sandboxes");
    }

    /**
     * The command lines of the sandbox's processes other than its init, read on the host (an idle
     * policy asks whether anything of the user's still runs). Empty when unknown.
     */
    default java.util.List<String> processCommands(String id) {
        return java.util.List.of();
    }

    /**
     * The sandbox's resource usage now, read on the host (its cgroup and its disk quota): the
     * server samples it every few seconds for E2B's metrics. Cheap: files are read, no process
     * is started. NOT_FOUND when the sandbox has no cgroup (it ended).
     */
    default ResourceUsage stats(String id) {
        throw new RuntimeFailure(RuntimeFailure.Code.UNAVAILABLE, "runtime " + name() + " cannot report resource usage");
    }

    /** Thaws a paused sandbox: its processes go on where they were. */
    default void resume(String id) {
        throw new RuntimeFailure(RuntimeFailure.Code.UNAVAILABLE, "runtime " + name() + " cannot pause sandboxes");
    }

    /**
     * Ends every process of the sandbox and removes its container, mounts, cgroups and state.
     * Idempotent: destroying a sandbox that is already gone succeeds.
     */
    void destroy(String id);

    /**
     * Removes every sandbox this runtime left under its state root that is not in {@code keep}
     * (after a crash of the server). Returns the ids it removed.
     */
    Set<String> reapExcept(Set<String> keep);

    /**
     * Releases what the runtime holds for all its sandboxes (the OCI runtimes: user namespaces kept
     * for templates' layers); running sandboxes are left as they are. Called once, at shutdown.
     */
    default void close() {}
}
