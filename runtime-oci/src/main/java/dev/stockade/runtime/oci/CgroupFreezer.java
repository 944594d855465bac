package dev.stockade.runtime.oci;

import dev.stockade.runtime.RuntimeFailure;
import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.locks.LockSupport;

/**
 * The cgroup freezer of one runc container, written directly: pausing or resuming a sandbox is a
 * write to a cgroup file and a read back (microseconds) instead of a {@code runc pause|resume}
 * process (~6 ms to start on a 2-core host, the bound of pause/resume before issue 16).
 *
 * <p>runc keeps no pause state of its own: {@code runc state} derives "paused" from this same
 * file (v1: freezer.state FROZEN with freezer.self_freezing 1; v2: cgroup.freeze 1), {@code runc
 * kill} and {@code delete --force} of a paused container thaw it after the SIGKILL, so runc, and a
 * server that restarts and takes the sandbox over (Recovery asks {@code runc state}), see the
 * truth. Refusals follow runc's: pausing a paused or stopped container and resuming one that is not
 * paused fail (HOST_ERROR), a container without a cgroup is NOT_FOUND; messages name no host path.
 *
 * <p>The cgroup is where {@link OciConfigPlanner} puts it (cgroupsPath {@code /stockade-ID}):
 * under the v1 freezer hierarchy, or in the unified directory when /sys/fs/cgroup itself is cgroup
 * v2, which is how runc chooses too (a hybrid host's extra v2 mount is not used for freezing).
 *
 * <p>Called by {@link RuncRuntime} under the sandbox's lock, on the caller's thread; keeps nothing.
 * The runsc tier does not come here: gVisor's sentry must stop its own tasks (runsc pause).
 */
sealed interface CgroupFreezer {
    /**
     * How long a freeze may take before it is given up and thawed back: far more than a loaded
     * host needs (tens of milliseconds at worst, seen at load 6); what never freezes is a cgroup
     * whose processes keep forking (v1) or a task stuck in the kernel, and that sandbox runs on.
     */
    Duration FREEZE_TIMEOUT = Duration.ofSeconds(2);
    Path ROOT = Path.of("/sys/fs/cgroup");
    /**
     * How often a freeze under way is looked at. Each task stops once the scheduler runs it again:
     * well within a millisecond on a quiet host, several on a loaded one, and the tasks need the
     * CPU meanwhile: looking again without a pause (tried) took a core of two from them and made
     * the freeze slower (3.4 ms median against 2.4 at load 6, bench/pause.sh's sandboxes).
     */
    Duration POLL = Duration.ofNanos(50_000);
    /** How often FROZEN is written again while a v1 freeze is under way (as runc does, for old kernels' misses). */
    Duration REWRITE_EVERY = Duration.ofMillis(1);
    /** How long a v1 freeze may stay FREEZING before it is thawed and started over ({@link V1#freeze}). */
    Duration RESTART_EVERY = Duration.ofMillis(200);

    /** Freezes every process of the container and returns once all are frozen; thaws back on failure. */
    void freeze(Duration timeout);

    /** Thaws the container's processes. */
    void thaw();

    /** Whether nothing is frozen or asked to freeze (a frozen task does not die of SIGKILL under v1 until thawed). */
    boolean thawed();

    /** The container's freezer, or NOT_FOUND when it has no cgroup (the container is gone). */
    static CgroupFreezer of(String sandboxId) {
        String cg = OciConfigPlanner.containerId(sandboxId);
        CgroupFreezer f = Files.exists(ROOT.resolve("cgroup.controllers"))
                ? new V2(sandboxId, ROOT.resolve(cg))
                : new V1(sandboxId, ROOT.resolve("freezer").resolve(cg));
        Path dir = switch (f) {
            case V1 v1 -> v1.dir();
            case V2 v2 -> v2.dir();
        };
        if (!Files.isDirectory(dir)) throw gone(sandboxId);
        return f;
    }

    /** cgroup v1: freezer.state is THAWED, FREEZING (under way, or stuck) or FROZEN. */
    record V1(String id, Path dir) implements CgroupFreezer {
        @Override
        public void freeze(Duration timeout) {
            Path state = dir.resolve("freezer.state");
            if (read(id, dir.resolve("cgroup.procs")).isEmpty()) throw notRunning(id);
            if (read(id, state).equals("FROZEN")) throw already(id);
            long start = System.nanoTime();
            long restartAt = start + RESTART_EVERY.toNanos();
            long rewriteAt = start;
            try {
                while (true) {
                    long at = System.nanoTime();
                    if (at - rewriteAt >= 0) {
                        // Writing FROZEN again makes the kernel signal the tasks not frozen yet again.
                        write(id, state, "FROZEN");
                        rewriteAt = at + REWRITE_EVERY.toNanos();
                    }
                    String now = read(id, state); // the read is what finds out that all have frozen
                    if (now.equals("FROZEN")) return;
                    if (!now.equals("FREEZING")) {
                        throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "pausing sandbox " + id
                                + " failed: its freezer reads " + now + " while freezing");
                    }
                    at = System.nanoTime();
                    if (at - start > timeout.toNanos() || Thread.currentThread().isInterrupted()) throw timedOut(id, timeout);
                    if (at - restartAt > 0) {
                        // A v1 freezer can stay FREEZING while new processes keep appearing (fork,
                        // exec): letting them run a moment and starting over is what gets it through.
                        write(id, state, "THAWED");
                        LockSupport.parkNanos(Duration.ofMillis(10).toNanos());
                        restartAt = System.nanoTime() + RESTART_EVERY.toNanos();
                        rewriteAt = System.nanoTime();
                    } else {
                        LockSupport.parkNanos(POLL.toNanos());
                    }
                }
            } catch (RuntimeFailure e) {
                thawBack(e, () -> write(id, state, "THAWED"));
                throw e;
            }
        }

        @Override
        public boolean thawed() {
            return read(id, dir.resolve("freezer.state")).equals("THAWED");
        }

        @Override
        public void thaw() {
            Path state = dir.resolve("freezer.state");
            if (read(id, state).equals("THAWED")) throw notPaused(id);
            write(id, state, "THAWED");
            String now = read(id, state);
            if (!now.equals("THAWED")) {
                throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "resuming sandbox " + id
                        + " failed: its freezer still reads " + now + " (is a parent cgroup frozen?)");
            }
        }
    }

    /** cgroup v2: cgroup.freeze is what was asked, cgroup.events' "frozen" what the kernel has done. */
    record V2(String id, Path dir) implements CgroupFreezer {
        @Override
        public void freeze(Duration timeout) {
            Path freeze = dir.resolve("cgroup.freeze");
            if (!event(id, dir, "populated")) throw notRunning(id);
            if (read(id, freeze).equals("1")) throw already(id);
            long start = System.nanoTime();
            try {
                write(id, freeze, "1");
                // v2 freezes asynchronously (each task stops on its way out of the kernel); it
                // reports the end in cgroup.events, and never stays half-way as v1 can.
                while (!event(id, dir, "frozen")) {
                    if (System.nanoTime() - start > timeout.toNanos() || Thread.currentThread().isInterrupted()) throw timedOut(id, timeout);
                    LockSupport.parkNanos(POLL.toNanos());
                }
            } catch (RuntimeFailure e) {
                thawBack(e, () -> write(id, freeze, "0"));
                throw e;
            }
        }

        @Override
        public boolean thawed() {
            return read(id, dir.resolve("cgroup.freeze")).equals("0") && !event(id, dir, "frozen");
        }

        @Override
        public void thaw() {
            Path freeze = dir.resolve("cgroup.freeze");
            if (read(id, freeze).equals("0")) throw notPaused(id);
            write(id, freeze, "0");
            if (event(id, dir, "frozen")) {
                throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "resuming sandbox " + id
                        + " failed: it is still frozen (is a parent cgroup frozen?)");
            }
        }

        /** Whether cgroup.events says {@code key 1}. */
        private static boolean event(String id, Path dir, String key) {
            for (String line : read(id, dir.resolve("cgroup.events")).split("\n")) {
                if (line.startsWith(key + " ")) return line.endsWith(" 1");
            }
            return false;
        }
    }

    /** Thaws after a failed freeze: a sandbox must never stay half-frozen behind an error. */
    private static void thawBack(RuntimeFailure failure, Runnable thaw) {
        try {
            thaw.run();
        } catch (RuntimeFailure e) {
            failure.addSuppressed(e);
        }
    }

    private static String read(String id, Path file) {
        try {
            return Files.readString(file).strip();
        } catch (IOException e) {
            throw failure(id, e);
        }
    }

    private static void write(String id, Path file, String value) {
        try {
            Files.writeString(file, value);
        } catch (IOException e) {
            throw failure(id, e);
        }
    }

    /** A vanished cgroup is a vanished container; otherwise the kernel's reason, without the file's path. */
    private static RuntimeFailure failure(String id, IOException e) {
        if (e instanceof NoSuchFileException) return gone(id);
        String why = e instanceof FileSystemException f && f.getReason() != null ? f.getReason() : e.getClass().getSimpleName();
        return new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "using the cgroup freezer of sandbox " + id + " failed: " + why);
    }

    private static RuntimeFailure gone(String id) {
        return new RuntimeFailure(RuntimeFailure.Code.NOT_FOUND, "sandbox " + id + " has no freezer cgroup: its container is gone");
    }

    private static RuntimeFailure notRunning(String id) {
        return new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "pausing sandbox " + id + " failed: it is not running"
                + " (its processes have ended)");
    }

    private static RuntimeFailure already(String id) {
        return new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "pausing sandbox " + id + " failed: it is paused already");
    }

    private static RuntimeFailure notPaused(String id) {
        return new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "resuming sandbox " + id + " failed: it is not paused");
    }

    private static RuntimeFailure timedOut(String id, Duration timeout) {
        return new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "pausing sandbox " + id + " failed: its processes did"
                + " not all freeze within " + timeout.toMillis() + " ms (they keep starting new ones, or one is stuck in"
                + " the kernel); it was thawed back and runs on. Try again, or kill it.");
    }
}
