package dev.stockade.runtime.oci;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.runtime.Limits;
import dev.stockade.runtime.RuntimeFailure;
import dev.stockade.runtime.RuntimeProvider;
import dev.stockade.runtime.RuntimeSandbox;
import dev.stockade.runtime.SandboxRuntime;
import dev.stockade.runtime.SandboxSpec;
import dev.stockade.runtime.Template;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The runc runtime against the real host: a container whose init is a probe script reports what it
 * sees (namespaces, capabilities, seccomp, filesystem), and destroy leaves nothing behind.
 */
class RuncRuntimeTest {
    @TempDir
    Path tmp;

    SandboxRuntime runtime;
    Path stateRoot;

    @BeforeEach
    void setUp() {
        RuntimeProvider.Availability a = new RuncProvider().probe();
        assumeTrue(a.available(), "runc unavailable: " + a.reason());
        stateRoot = tmp.resolve("state");
        try {
            Files.setPosixFilePermissions(tmp, java.nio.file.attribute.PosixFilePermissions.fromString("rwx--x--x"));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        runtime = new RuncProvider().create(stateRoot);
    }

    @AfterEach
    void tearDown() {
        if (runtime != null) runtime.reapExcept(Set.of());
    }

    /** Starts a container whose init is the probe script (standing in for the agent) with {@code limits}. */
    private Probe startProbe(Limits limits) throws Exception {
        Path probe = tmp.resolve("agentdir");
        if (!Files.exists(probe)) {
            Files.createDirectories(probe);
            Files.setPosixFilePermissions(probe, java.nio.file.attribute.PosixFilePermissions.fromString("rwxr-xr-x"));
            try (InputStream in = getClass().getResourceAsStream("/probe_init.py")) {
                Files.copy(in, probe.resolve("agent"));
            }
        }
        Template template = runtime.defaultTemplate();
        String id = "t" + Long.toHexString(System.nanoTime());
        SandboxSpec spec = new SandboxSpec(id, 3_000_000_000L, stateRoot.resolve("sandboxes").resolve(id), template, probe, limits);
        return new Probe(spec, runtime.start(spec));
    }

    private record Probe(SandboxSpec spec, RuntimeSandbox sandbox) {}

    @Test
    void containerIsIsolatedAndDestroyLeavesNothing() throws Exception {
        Probe p = startProbe(new Limits(256, 1, 64, 32, 16, 60));
        SandboxSpec spec = p.spec();
        String id = spec.id();
        RuntimeSandbox sb = p.sandbox();
        assertTrue(sb.initPid() > 0);
        Path report = spec.stateDir().resolve("disk/run/probe.json");
        long deadline = System.currentTimeMillis() + 10_000;
        while (!Files.exists(report) && System.currentTimeMillis() < deadline) Thread.sleep(20);
        JsonNode r = new ObjectMapper().readTree(report.toFile());
        assertEquals(0, r.get("uid").asInt(), "init is root inside its user namespace");
        assertEquals("3000000000", r.get("uid_map").get(1).asText(), "...which is an unprivileged host uid");
        assertEquals("1", r.get("no_new_privs").asText());
        assertEquals("2", r.get("seccomp").asText(), "seccomp filter mode");
        assertEquals("sandbox", r.get("hostname").asText());
        assertEquals("[\"lo\"]", r.get("interfaces").toString(), "only loopback");
        assertEquals(1000, r.get("home_owner").asInt());
        assertEquals(1, r.get("unshare").asInt(), "unshare is denied with EPERM");
        assertEquals(3, r.get("etc_passwd").asText().strip().split("\n").length, "the template's own passwd: root, user, nobody");
        assertTrue(runtime.isAlive(id));

        runtime.destroy(id);
        assertFalse(runtime.isAlive(id));
        assertFalse(Files.exists(spec.stateDir()), "state directory removed");
        assertFalse(Files.readString(Path.of("/proc/self/mountinfo")).contains(id), "no mount left");
        assertFalse(Files.exists(Path.of("/sys/fs/cgroup/memory/stockade-" + id)), "no cgroup left");
    }

    /**
     * The disk is a loop-mounted ext4 image of its own, not memory: its bytes and inodes are
     * reported apart; its quota shrinks with a ballast (refused below what is used) and grows back;
     * destroy unmounts it, frees the loop device and deletes the image.
     */
    @Test
    void theDiskIsALoopMountedImageWhoseQuotaChangesLive() throws Exception {
        assumeTrue(LoopDisk.unavailable() == null, "no loop devices here: " + LoopDisk.unavailable());
        SandboxSpec spec = startProbe(new Limits(256, 1, 64, 64, 16, 60)).spec();
        String id = spec.id();
        BundleLayout layout = new BundleLayout(spec.stateDir());
        String device = LoopDisk.mountSource(layout.disk());
        assertTrue(device != null && device.startsWith("/dev/loop"), "mounted from " + device);
        assertTrue(Files.isRegularFile(stateRoot.resolve("templates/disks").resolve(BlankDisks.fileName(64))),
                "the disk was copied from a blank of its size (S3.15d)");
        var before = runtime.stats(id);
        assertTrue(before.diskTotalBytes() > 60L << 20 && before.diskTotalBytes() <= 64L << 20, before.toString());
        assertEquals(4096, before.inodesTotal(), "one inode per 16 KiB: " + before);

        // 40 MiB of files: a quota of 32 MiB is refused, one of 48 MiB is taken by a ballast.
        Files.write(layout.upper().resolve("data"), new byte[40 << 20]);
        Limits small = new Limits(256, 1, 64, 32, 16, 60);
        var refused = org.junit.jupiter.api.Assertions.assertThrows(dev.stockade.runtime.RuntimeFailure.class,
                () -> runtime.update(id, small));
        assertTrue(refused.getMessage().contains("cannot shrink to 32 MiB"), refused.getMessage());
        runtime.update(id, new Limits(256, 1, 64, 48, 16, 60));
        var shrunk = runtime.stats(id);
        assertTrue(shrunk.diskTotalBytes() > 44L << 20 && shrunk.diskTotalBytes() <= 48L << 20, shrunk.toString());
        assertTrue(shrunk.diskUsedBytes() >= 40L << 20 && shrunk.diskUsedBytes() < 44L << 20, shrunk.toString());
        runtime.update(id, new Limits(256, 1, 64, 64, 16, 60));
        assertEquals(before.diskTotalBytes(), runtime.stats(id).diskTotalBytes(), "the ballast is gone");
        assertFalse(Files.exists(layout.ballast()));

        runtime.destroy(id);
        assertFalse(Files.exists(spec.stateDir()), "state directory (and image) removed");
        String backing = Path.of("/sys/block", device.substring("/dev/".length()), "loop/backing_file").toString();
        assertFalse(Files.exists(Path.of(backing)) && Files.readString(Path.of(backing)).contains(id), "loop device freed");
    }

    /**
     * runc forgets a container whose cgroups it could not remove (killed processes slow to leave at
     * load average 14, or a create that failed half-way): destroy removes what is left under the
     * sandbox's own cgroup name, in every hierarchy, and only that.
     */
    @Test
    void destroyRemovesTheCgroupsRuncLeftBehind() throws Exception {
        String id = "t" + Long.toHexString(System.nanoTime());
        String other = "t" + Long.toHexString(System.nanoTime() + 1);
        java.util.List<Path> left = new java.util.ArrayList<>();
        java.util.List<Path> notOurs = new java.util.ArrayList<>();
        try (var hierarchies = Files.list(Path.of("/sys/fs/cgroup"))) {
            for (Path h : hierarchies.filter(h -> !Files.isSymbolicLink(h) && Files.isDirectory(h)).toList()) {
                if (!Files.isRegularFile(h.resolve("cgroup.procs"))) continue; // not a hierarchy's root
                left.add(Files.createDirectory(h.resolve("stockade-" + id)));
                notOurs.add(Files.createDirectory(h.resolve("stockade-" + other)));
            }
        }
        assumeTrue(!left.isEmpty(), "no writable cgroup hierarchy here");
        try {
            runtime.destroy(id); // no such container: runc has already forgotten it
            for (Path p : left) assertFalse(Files.exists(p), p + " is left");
            for (Path p : notOurs) assertTrue(Files.isDirectory(p), p + " is another sandbox's: it must stay");
        } finally {
            for (Path p : notOurs) Files.deleteIfExists(p);
            for (Path p : left) Files.deleteIfExists(p);
        }
    }

    /**
     * Pause and resume write the container's cgroup freezer themselves (issue 16): no runc process
     * is started for them (the runtime's binary is a wrapper that logs every call before running
     * runc), and runc, asked afterwards, reports what the freezer says. runc's refusals are kept
     * (pausing twice, resuming what is not paused), a paused container is deleted whole, and a
     * container that is gone is NOT_FOUND, with no host path in the message.
     */
    @Test
    void pauseAndResumeWriteTheFreezerThatRuncReads() throws Exception {
        Path calls = tmp.resolve("runc-calls");
        Path wrapper = tmp.resolve("runc-wrapper");
        Files.writeString(wrapper, "#!/bin/sh\necho \"$*\" >> '" + calls + "'\nexec '" + RuncProvider.binary() + "' \"$@\"\n");
        Files.setPosixFilePermissions(wrapper, java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"));
        runtime = new RuncRuntime("runc", wrapper.toString(), java.util.List.of(), stateRoot, new ObjectMapper(),
                RuncProvider.swapAccounting());
        String id = startProbe(new Limits(256, 1, 64, 32, 16, 60)).spec().id();
        assertTrue(Files.readString(calls).contains("run --detach"), "the wrapper runs runc: " + Files.readString(calls));

        Files.writeString(calls, "");
        runtime.pause(id);
        assertEquals("", Files.readString(calls), "no runc process for a pause");
        assertEquals("FROZEN", freezerState(id));
        assertTrue(runtime.isPaused(id), "runc state reports the freezer's truth");
        var twice = assertThrows(RuntimeFailure.class, () -> runtime.pause(id));
        assertEquals(RuntimeFailure.Code.HOST_ERROR, twice.code(), twice.getMessage());

        Files.writeString(calls, "");
        runtime.resume(id);
        assertEquals("", Files.readString(calls), "no runc process for a resume");
        assertEquals("THAWED", freezerState(id));
        assertFalse(runtime.isPaused(id));
        assertTrue(runtime.isAlive(id), "running again");
        var notPaused = assertThrows(RuntimeFailure.class, () -> runtime.resume(id));
        assertEquals(RuntimeFailure.Code.HOST_ERROR, notPaused.code(), notPaused.getMessage());

        runtime.pause(id);
        runtime.destroy(id); // runc delete --force of a paused container
        assertFalse(runtime.isAlive(id));
        assertFalse(Files.exists(Path.of("/sys/fs/cgroup/freezer/stockade-" + id)), "no freezer cgroup left");
        for (Runnable call : java.util.List.<Runnable>of(() -> runtime.pause(id), () -> runtime.resume(id))) {
            var gone = assertThrows(RuntimeFailure.class, call::run);
            assertEquals(RuntimeFailure.Code.NOT_FOUND, gone.code(), gone.getMessage());
            assertFalse(gone.getMessage().contains("/sys") || gone.getMessage().contains(tmp.toString()), gone.getMessage());
        }
    }

    /**
     * A kill ends the container's init itself (a pidfd's SIGKILL) before {@code runc delete}, so
     * runc finds it stopped and removes it without the 100 ms sleep of its forced delete (issue 16);
     * a paused one is left to runc's forced delete. The wrapper logs what runc reports just before
     * each delete. Either way nothing is left: no process, no cgroup, no state directory.
     */
    @Test
    void destroyEndsTheInitSoRuncDeletesAStoppedContainer() throws Exception {
        Path calls = tmp.resolve("runc-calls");
        Path wrapper = tmp.resolve("runc-wrapper");
        String runc = RuncProvider.binary();
        Files.writeString(wrapper, """
                #!/bin/sh
                for a; do last=$a; done
                case " $* " in *" delete "*)
                  echo "delete found $('%1$s' state "$last" | tr -d ' \\n' | sed 's/.*"status":"\\([a-z]*\\)".*/\\1/')" >> '%2$s' ;;
                esac
                exec '%1$s' "$@"
                """.formatted(runc, calls));
        Files.setPosixFilePermissions(wrapper, java.nio.file.attribute.PosixFilePermissions.fromString("rwx------"));
        runtime = new RuncRuntime("runc", wrapper.toString(), java.util.List.of(), stateRoot, new ObjectMapper(),
                RuncProvider.swapAccounting());

        Probe running = startProbe(new Limits(256, 1, 64, 32, 16, 60));
        String id = running.spec().id();
        long init = running.sandbox().initPid();
        runtime.destroy(id);
        assertEquals("delete found stopped\n", Files.readString(calls), "the init had ended before runc was asked");
        assertTrue(ended(init), "the init has ended");
        assertFalse(runtime.isAlive(id));
        assertFalse(Files.exists(running.spec().stateDir()), "no state directory left");
        try (var hierarchies = Files.list(Path.of("/sys/fs/cgroup"))) {
            for (Path h : hierarchies.toList()) assertFalse(Files.exists(h.resolve("stockade-" + id)), h + " keeps the sandbox's cgroup");
        }

        Files.writeString(calls, "");
        String paused = startProbe(new Limits(256, 1, 64, 32, 16, 60)).spec().id();
        runtime.pause(paused);
        runtime.destroy(paused);
        assertEquals("delete found paused\n", Files.readString(calls), "a frozen init is left to runc's forced delete");
        assertFalse(runtime.isAlive(paused));
    }

    /** Gone, or a zombie its reaper (the host's init, not this process) has not collected yet. */
    private static boolean ended(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            return stat.substring(stat.lastIndexOf(')') + 2).startsWith("Z");
        } catch (java.io.IOException gone) {
            return true;
        }
    }

    /** The freezer as the kernel reports it: v1's freezer.state, or v2's cgroup.events as THAWED/FROZEN. */
    private static String freezerState(String id) throws java.io.IOException {
        Path v1 = Path.of("/sys/fs/cgroup/freezer/stockade-" + id, "freezer.state");
        if (!Files.exists(Path.of("/sys/fs/cgroup/cgroup.controllers"))) return Files.readString(v1).strip();
        return Files.readString(Path.of("/sys/fs/cgroup/stockade-" + id, "cgroup.events")).contains("frozen 1") ? "FROZEN" : "THAWED";
    }
}
