package dev.stockade.runtime.oci;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.stockade.runtime.ResourceUsage;
import dev.stockade.runtime.RuntimeFailure;
import dev.stockade.runtime.RuntimeSandbox;
import dev.stockade.runtime.SandboxRuntime;
import dev.stockade.runtime.SandboxSpec;
import dev.stockade.runtime.Template;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * What the OCI runtimes (runc, runsc) share: one long-lived container per sandbox, its root an
 * overlay of the template's read-only lower directory (below its layers, if any: {@link LayerMounts})
 * under a writable upper directory on the
 * sandbox's own disk ({@link LoopDisk}: a loop-mounted ext4 image; a size-limited tmpfs where loop
 * devices are unavailable), driven through the runtime binary's OCI command line (run, state, list,
 * pause, resume, delete). A subclass says what differs: its isolation, capabilities, how limits
 * change, and how its template is prepared; the bundle itself differs only as planned by the
 * {@link OciConfigPlanner.Profile} it passes in.
 *
 * <p>Acts on the host: mounts (through {@link Libc}), chowns, writes the bundle planned by
 * {@link OciConfigPlanner}, and runs the binary. Everything it creates lives under
 * {@code stateRoot/sandboxes/ID} and in containers named {@code stockade-ID} whose bundle is
 * there, so {@link #reapExcept} never touches anything it did not create.
 *
 * <p>Thread-safety: calls for different ids run concurrently; calls for one id are serialised.
 */
abstract class OciRuntime implements SandboxRuntime {
    static final Duration RUNC_TIMEOUT = Duration.ofSeconds(30);
    /** How long killed processes get to leave a sandbox's cgroups (on a loaded host they take a while). */
    private static final Duration CGROUP_REMOVAL = Duration.ofSeconds(10);
    /** cgroup v1 cpu.shares of a background sandbox (the kernel's minimum) and of a normal one. */
    static final int BACKGROUND_SHARES = 2;
    static final int NORMAL_SHARES = 1024;

    final String binary;
    final String name;
    private final List<String> globalArgs;
    final Path sandboxesRoot;
    final OciConfigPlanner planner;
    final ObjectMapper json;
    private final ConcurrentHashMap<String, Object> locks = new ConcurrentHashMap<>();
    final Path templatesRoot;
    private volatile Template template;
    /**
     * Null when sandboxes get loop-mounted disks; otherwise why not, and they get the tmpfs of
     * before (a full disk is then an out-of-memory kill: docs/THREAT-MODEL.md), said once in the log.
     */
    final String loopUnavailable;
    /** The blank disk of each size that sandboxes' disks are copied from, next to the templates. */
    private final BlankDisks blankDisks;
    /** The id maps of templates' layers, one user namespace per uid range; none until a template has layers. */
    private final IdmapUserns userns = new IdmapUserns();

    OciRuntime(String name, String binary, List<String> globalArgs, Path stateRoot, ObjectMapper json,
               OciConfigPlanner planner) {
        this.name = name;
        this.binary = binary;
        this.globalArgs = List.copyOf(globalArgs);
        this.sandboxesRoot = stateRoot.resolve("sandboxes");
        this.templatesRoot = stateRoot.resolve("templates");
        this.json = json;
        this.planner = planner;
        this.loopUnavailable = LoopDisk.unavailable();
        this.blankDisks = new BlankDisks(templatesRoot.resolve("disks"));
        if (loopUnavailable != null) {
            System.getLogger(OciRuntime.class.getName()).log(System.Logger.Level.WARNING, name + " sandboxes get a"
                    + " memory-backed disk (tmpfs): " + loopUnavailable + ". A sandbox that fills it is killed for lack of"
                    + " memory instead of getting ENOSPC.");
        }
        try {
            Files.createDirectories(sandboxesRoot);
            // Sandbox roots map onto unprivileged host uids, which must be able to traverse (not
            // list) the path down to their bundle.
            Files.setPosixFilePermissions(stateRoot, PosixFilePermissions.fromString("rwx--x--x"));
            Files.setPosixFilePermissions(sandboxesRoot, PosixFilePermissions.fromString("rwx--x--x"));
            // A unix socket path holds at most 107 bytes; every sandbox's agent socket lives at
            // sandboxes/ID/disk/run/agent.sock with ids of up to 20 characters.
            int socketPath = new BundleLayout(sandboxesRoot.toAbsolutePath().resolve("x".repeat(20))).agentSocket()
                    .toString().getBytes(java.nio.charset.StandardCharsets.UTF_8).length;
            if (socketPath > 107) {
                throw new RuntimeFailure(RuntimeFailure.Code.UNAVAILABLE, "the data directory " + stateRoot
                        + " is too deep: sandbox sockets under it would need " + socketPath + " bytes, and unix"
                        + " socket paths hold at most 107. Choose a data directory with a path "
                        + (socketPath - 107) + " characters shorter.");
            }
            for (Path p = stateRoot.toAbsolutePath().getParent(); p != null; p = p.getParent()) {
                int mode = (Integer) Files.getAttribute(p, "unix:mode");
                if ((mode & 01) == 0) {
                    throw new RuntimeFailure(RuntimeFailure.Code.UNAVAILABLE, "the data directory " + stateRoot
                            + " lies below " + p + ", which others cannot traverse (mode " + Integer.toOctalString(mode & 07777)
                            + "); sandboxes run as unprivileged host users and could not reach their root filesystem."
                            + " Choose a data directory elsewhere or run `chmod o+x " + p + "`.");
                }
            }
        } catch (IOException e) {
            throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "cannot prepare " + sandboxesRoot + ": " + e.getMessage());
        }
    }

    @Override
    public String name() {
        return name;
    }

    @Override
    public Template defaultTemplate() {
        Template t = template;
        if (t == null) {
            synchronized (this) {
                if (template == null) template = prepareTemplate(TemplateBuilder.ensure(templatesRoot, json));
                t = template;
            }
        }
        return t;
    }

    /** Adds what this runtime needs to the built default template; runc needs nothing. */
    Template prepareTemplate(Template built) {
        return built;
    }

    final Object lock(String id) {
        return locks.computeIfAbsent(id, k -> new Object());
    }

    @Override
    public RuntimeSandbox start(SandboxSpec spec) {
        if (!spec.stateDir().startsWith(sandboxesRoot)) {
            throw new IllegalArgumentException("state dir " + spec.stateDir() + " is not under " + sandboxesRoot);
        }
        synchronized (lock(spec.id())) {
            BundleLayout layout = new BundleLayout(spec.stateDir());
            String cid = OciConfigPlanner.containerId(spec.id());
            long root = spec.uidBase();
            long user = spec.uidBase() + 1000;
            try (Cleanup undo = new Cleanup()) {
                try {
                    Files.createDirectory(layout.state());
                    undo.add(() -> TemplateBuilder.deleteTree(layout.state()));
                    Files.setPosixFilePermissions(layout.state(), PosixFilePermissions.fromString("rwx--x--x"));
                    Files.createDirectory(layout.disk());
                    Files.createDirectories(layout.rootfs());

                    undo.add(() -> unmount(layout.disk()));
                    if (loopUnavailable == null) {
                        LoopDisk.create(layout, spec.limits().diskMB(), blankDisks);
                    } else {
                        Libc.mount("stockade-" + spec.id(), layout.disk().toString(), "tmpfs",
                                Libc.MS_NOSUID | Libc.MS_NODEV, tmpfsSize(spec.limits().diskMB()) + ",mode=0711");
                    }
                    Files.createDirectory(layout.upper());
                    Files.createDirectory(layout.work());
                    chown(layout.upper(), root, root);
                    chown(layout.work(), root, root);
                    // Directories whose owner differs from the (host-owned, hence 'nobody') template.
                    mkdirOwned(layout.upper().resolve("home"), root, "rwxr-xr-x");
                    mkdirOwned(layout.upper().resolve("home/user"), user, "rwxr-x---");
                    mkdirOwned(layout.upper().resolve("tmp"), root, "rwxrwxrwx");
                    setSticky(layout.upper().resolve("tmp"));
                    mkdirOwned(layout.upper().resolve("root"), root, "rwx------");
                    if (spec.seed() != null) seed(spec.seed(), layout.upper(), spec.uidBase());
                    Files.writeString(layout.agentLog(), "");
                    Files.createDirectory(layout.run());

                    Template template = spec.template();
                    String overlay = "lowerdir=" + LayerMounts.lowerdir(template, layout) + ",upperdir=" + layout.upper()
                            + ",workdir=" + layout.work();
                    if (!template.layers().isEmpty()) { // none: no user namespace, the mounts of before
                        LayerMounts.checkLength(overlay, template);
                        userns.use(spec.uidBase(), fd -> {
                            try {
                                LayerMounts.mount(template, layout, fd, undo);
                                return null;
                            } catch (IOException e) {
                                throw new java.io.UncheckedIOException(e);
                            }
                        });
                    }
                    Libc.mount("stockade-" + spec.id(), layout.rootfs().toString(), "overlay", 0, overlay);
                    undo.add(() -> unmount(layout.rootfs()));
                    chown(layout.run(), root, root);
                    Files.setPosixFilePermissions(layout.run(), PosixFilePermissions.fromString("rwx------"));

                    json.copy().enable(SerializationFeature.INDENT_OUTPUT)
                            .writeValue(layout.config().toFile(), planner.plan(spec));

                    undo.add(() -> deleteContainer(cid));
                    List<String> argv = command("run", "--detach", "--pid-file", layout.pidFile().toString(),
                            "--bundle", layout.state().toString(), cid);
                    HostCommand.Result r = HostCommand.run(argv, RUNC_TIMEOUT, layout.agentLog());
                    if (!r.ok()) {
                        throw new RuntimeFailure(RuntimeFailure.Code.START_FAILED, name + " could not start sandbox "
                                + spec.id() + " (exit " + r.exitCode() + "): " + tail(layout.agentLog())
                                + ". Check that " + binary + " works on this host (`" + binary + " --version`) and that"
                                + " user namespaces are enabled.");
                    }
                    long pid = initPid(layout, cid);
                    undo.release();
                    return new RuntimeSandbox(spec.id(), layout.agentSocket(), pid);
                } catch (RuntimeFailure e) {
                    undo.failedWith(e);
                    throw e;
                } catch (IOException | RuntimeException e) {
                    undo.failedWith(e);
                    throw new RuntimeFailure(RuntimeFailure.Code.START_FAILED,
                            "preparing sandbox " + spec.id() + " failed: " + e.getMessage(), e);
                }
            }
        }
    }

    /** How many user namespaces are cached for templates' layers (for tests). */
    final int cachedUserNamespaces() {
        return userns.cached();
    }

    /** Closes the user namespaces cached for templates' layers. */
    @Override
    public void close() {
        userns.close();
    }

    /** The tmpfs fallback's size and inode options: the loop disk's inode ratio ({@link LoopDisk#BYTES_PER_INODE}). */
    private static String tmpfsSize(int diskMB) {
        return "size=" + diskMB + "m,nr_inodes=" + (diskMB * 1024L * 1024L / LoopDisk.BYTES_PER_INODE);
    }

    /**
     * Changes the disk quota of a running sandbox ({@link LoopDisk#resize}; the tmpfs fallback is
     * remounted). Shrinking below what is used fails.
     */
    final void resizeDisk(String id, int diskMB) {
        BundleLayout layout = new BundleLayout(sandboxesRoot.resolve(id));
        if (Files.exists(layout.image())) {
            LoopDisk.resize(layout, id, diskMB);
            return;
        }
        try {
            Libc.mount("stockade-" + id, layout.disk().toString(), "tmpfs",
                    Libc.MS_REMOUNT | Libc.MS_NOSUID | Libc.MS_NODEV, tmpfsSize(diskMB));
        } catch (RuntimeException e) {
            throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "changing the disk quota of sandbox " + id
                    + " failed: " + e.getMessage());
        }
    }

    @Override
    public void setBackground(String id, boolean background) {
        // Written straight to the cgroup (runc update would cost a process start, ~6 ms, on every
        // hand-over). v1: cpu.shares under the cpu controller; v2: cpu.weight (1 .. 10000, 100 normal).
        String cg = "stockade-" + id;
        List<Path> v1 = List.of(Path.of("/sys/fs/cgroup/cpu", cg, "cpu.shares"),
                Path.of("/sys/fs/cgroup/cpu,cpuacct", cg, "cpu.shares"));
        try {
            for (Path p : v1) {
                if (Files.exists(p)) {
                    Files.writeString(p, Integer.toString(background ? BACKGROUND_SHARES : NORMAL_SHARES));
                    return;
                }
            }
            Path v2 = Path.of("/sys/fs/cgroup", cg, "cpu.weight");
            if (Files.exists(v2)) {
                Files.writeString(v2, background ? "1" : "100");
                return;
            }
            throw new RuntimeFailure(RuntimeFailure.Code.NOT_FOUND, "sandbox " + id + " has no CPU cgroup (is it running?)");
        } catch (IOException e) {
            throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "setting the CPU share of sandbox " + id + " failed: "
                    + e.getMessage());
        }
    }

    @Override
    public ResourceUsage stats(String id) {
        return CgroupUsage.read(id, new BundleLayout(sandboxesRoot.resolve(id)));
    }

    @Override
    public boolean isAlive(String id) {
        String status = status(id);
        return "running".equals(status) || "paused".equals(status);
    }

    @Override
    public RuntimeSandbox attach(String id) {
        String status = status(id);
        if (!"running".equals(status) && !"paused".equals(status)) return null;
        BundleLayout layout = new BundleLayout(sandboxesRoot.resolve(id));
        if (!Files.exists(layout.agentSocket(), java.nio.file.LinkOption.NOFOLLOW_LINKS)) return null;
        long pid;
        try {
            pid = initPid(layout, OciConfigPlanner.containerId(id));
        } catch (RuntimeFailure e) {
            return null;
        }
        return new RuntimeSandbox(id, layout.agentSocket(), pid);
    }

    @Override
    public boolean isPaused(String id) {
        return "paused".equals(status(id));
    }

    /** The binary's status of the sandbox's container (running, paused, stopped...), or "" when it has none. */
    final String status(String id) {
        HostCommand.Result r = HostCommand.run(command("state", OciConfigPlanner.containerId(id)), RUNC_TIMEOUT);
        if (!r.ok()) return "";
        try {
            return json.readTree(r.output()).path("status").asText("");
        } catch (IOException e) {
            return "";
        }
    }

    @Override
    public long snapshot(String id, Path target, long uidBase) {
        synchronized (lock(id)) {
            BundleLayout layout = new BundleLayout(sandboxesRoot.resolve(id));
            if (!Files.isDirectory(layout.upper())) {
                throw new RuntimeFailure(RuntimeFailure.Code.NOT_FOUND, "sandbox " + id + " has no files to snapshot");
            }
            try {
                Files.createDirectory(target);
                copyTree(layout.upper(), target);
                return shiftOwners(target, -uidBase);
            } catch (IOException | RuntimeFailure e) {
                try {
                    TemplateBuilder.deleteTree(target);
                } catch (IOException suppressed) {
                    e.addSuppressed(suppressed);
                }
                throw e instanceof RuntimeFailure rf ? rf : new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR,
                        "snapshotting sandbox " + id + " failed: " + e.getMessage(), e);
            }
        }
    }

    /** A snapshot's files into a new sandbox's upper directory, owned within its id range. */
    private static void seed(Path seed, Path upper, long uidBase) throws IOException {
        copyTree(seed, upper);
        shiftOwners(upper, uidBase);
    }

    /**
     * {@code cp -a}: contents, modes, times, ownership, xattrs (overlay's opaque-directory marks) and
     * device nodes (overlay's whiteouts, which record deletions), without following links.
     */
    private static void copyTree(Path from, Path to) throws IOException {
        HostCommand.Result r = HostCommand.run(List.of("cp", "-a", "--", from + "/.", to + "/"), Duration.ofMinutes(10));
        if (!r.ok()) {
            throw new IOException("copying " + from + " to " + to + " failed: " + r.output().strip()
                    + (r.output().contains("No space") ? " (the files do not fit the disk limit)" : ""));
        }
    }

    /**
     * Moves every entry's owner and group by {@code delta} ({@link #shifted}). Returns the bytes of
     * the regular files seen.
     */
    private static long shiftOwners(Path dir, long delta) throws IOException {
        long[] bytes = {0};
        try (var all = Files.walk(dir)) {
            for (Path p : (Iterable<Path>) all::iterator) {
                var attrs = Files.readAttributes(p, "unix:uid,gid,size,mode", LinkOption.NOFOLLOW_LINKS);
                long uid = Integer.toUnsignedLong((Integer) attrs.get("uid"));
                long gid = Integer.toUnsignedLong((Integer) attrs.get("gid"));
                if (((Integer) attrs.get("mode") & 0170000) == 0100000) bytes[0] += (Long) attrs.get("size");
                long nu = shifted(uid, delta);
                long ng = shifted(gid, delta);
                if (nu != uid) Files.setAttribute(p, "unix:uid", (int) nu, LinkOption.NOFOLLOW_LINKS);
                if (ng != gid) Files.setAttribute(p, "unix:gid", (int) ng, LinkOption.NOFOLLOW_LINKS);
            }
        }
        return bytes[0];
    }

    /**
     * An id moved by {@code delta}: into a snapshot ({@code delta < 0}) a sandbox's own ids become
     * 0..65535 and every other one (host root's, the template's files copied up by overlayfs)
     * becomes {@link #FOREIGN_ID}; into a new sandbox, 0..65535 move to its range and FOREIGN_ID
     * stays. Before issue 15 a foreign host id 0 came out of a snapshot as 0 and went into the fork
     * as its root's, so forks owned the template's copied-up /var and /var/tmp.
     */
    static long shifted(long id, long delta) {
        if (delta < 0) return id >= -delta && id < -delta + 65536 ? id + delta : FOREIGN_ID;
        return id < 65536 ? id + delta : id;
    }

    /**
     * The owner, in snapshots and forks, of files no sandbox id owned (as the template's, which the
     * host owns): an id no sandbox range maps, so that inside it shows as nobody and the sandbox's
     * root has no power over it, as over the template's own files ((uid_t) -2).
     */
    static final long FOREIGN_ID = 4294967294L;

    @Override
    public void pause(String id) {
        freezer(id, "pause");
    }

    @Override
    public void resume(String id) {
        freezer(id, "resume");
    }

    /**
     * {@code <binary> pause|resume}: what runsc needs (its sentry stops its own tasks). runc's tier
     * writes the cgroup freezer itself instead ({@link RuncRuntime#pause}, issue 16).
     */
    private void freezer(String id, String verb) {
        synchronized (lock(id)) {
            HostCommand.Result r = HostCommand.run(command(verb, OciConfigPlanner.containerId(id)), RUNC_TIMEOUT);
            if (!r.ok()) {
                throw new RuntimeFailure(r.output().contains("not exist") ? RuntimeFailure.Code.NOT_FOUND
                        : RuntimeFailure.Code.HOST_ERROR, binary + " " + verb + " of sandbox " + id + " failed (exit "
                        + r.exitCode() + "): " + r.output().strip());
            }
        }
    }

    @Override
    public void destroy(String id) {
        synchronized (lock(id)) {
            try {
                BundleLayout layout = new BundleLayout(sandboxesRoot.resolve(id));
                endInit(id, layout);
                deleteContainer(OciConfigPlanner.containerId(id));
                removeLeftovers(id);
                unmount(layout.rootfs());
                LayerMounts.unmountAll(layout);
                unmount(layout.disk());
                if (!isMounted(layout.rootfs()) && !isMounted(layout.disk()) && LayerMounts.mounted(layout).isEmpty()) {
                    TemplateBuilder.deleteTree(layout.state());
                } else {
                    throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "sandbox " + id
                            + " is still mounted after unmounting; its state directory was left in place: " + layout.state());
                }
            } catch (IOException e) {
                throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "removing sandbox " + id + " failed: " + e.getMessage(), e);
            } finally {
                locks.remove(id);
            }
        }
    }

    /**
     * Before the container is deleted: ends its init if this runtime can do that faster than
     * {@code <binary> delete --force} (runc's sleeps 100 ms before it looks whether the init died).
     * The default leaves it to the binary.
     */
    void endInit(String id, BundleLayout layout) {}

    /**
     * After the container is deleted: its cgroups, wherever they are left. runsc removes them when
     * it deletes a container that it stopped, but not those of a sandbox whose sentry died (a limit
     * was reached); runc's delete gives up on a cgroup whose killed processes are slow to go (seen
     * at load average 14) and on one of a create that failed half-way, and forgets the container
     * all the same. Left, the directories would leak and keep the dead sandbox's limits for the
     * next container of that name. Kills what is left in them (by pid, and only in this sandbox's
     * own cgroups) and removes them; the name is this sandbox's, so nothing of another server's
     * is touched.
     */
    void removeLeftovers(String id) {
        List<Path> dirs = new ArrayList<>();
        if (Files.exists(Path.of("/sys/fs/cgroup/cgroup.controllers"))) {
            dirs.add(Path.of("/sys/fs/cgroup", OciConfigPlanner.containerId(id)));
        } else {
            try (var controllers = Files.list(Path.of("/sys/fs/cgroup"))) {
                controllers.filter(c -> !Files.isSymbolicLink(c)).forEach(c -> dirs.add(c.resolve(OciConfigPlanner.containerId(id))));
            } catch (IOException e) {
                return;
            }
        }
        long deadline = System.nanoTime() + CGROUP_REMOVAL.toNanos();
        for (Path dir : dirs) {
            if (!Files.isDirectory(dir)) continue;
            while (System.nanoTime() < deadline) {
                try {
                    Files.delete(dir);
                    break;
                } catch (IOException busy) {
                    killAll(dir.resolve("cgroup.procs"));
                    try {
                        Thread.sleep(20);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        return;
                    }
                }
            }
            if (Files.isDirectory(dir)) {
                throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "the cgroup " + dir + " of sandbox " + id
                        + " could not be removed (processes left in it: " + dir.resolve("cgroup.procs") + ")");
            }
        }
    }

    private static void killAll(Path procs) {
        try {
            for (String line : Files.readAllLines(procs)) {
                if (line.strip().matches("\\d{1,10}")) {
                    ProcessHandle.of(Long.parseLong(line.strip())).ifPresent(ProcessHandle::destroyForcibly);
                }
            }
        } catch (IOException gone) {
            // the cgroup went away meanwhile
        }
    }


    @Override
    public Set<String> reapExcept(Set<String> keep) {
        Set<String> candidates = new HashSet<>();
        // Containers of ours: named stockade-ID with their bundle under our sandboxes root.
        HostCommand.Result list = HostCommand.run(command("list", "--format", "json"), RUNC_TIMEOUT);
        if (list.ok() && !list.output().isBlank()) {
            try {
                for (JsonNode c : json.readTree(list.output())) {
                    String cid = c.path("id").asText();
                    Path bundle = Path.of(c.path("bundle").asText("/nonexistent"));
                    if (cid.startsWith("stockade-") && bundle.startsWith(sandboxesRoot)) {
                        candidates.add(cid.substring("stockade-".length()));
                    }
                }
            } catch (IOException ignored) {
                // unreadable list: fall back to the state directories
            }
        }
        try (var dirs = Files.list(sandboxesRoot)) {
            dirs.forEach(d -> candidates.add(d.getFileName().toString()));
        } catch (IOException ignored) {
            // nothing to reap
        }
        candidates.removeAll(keep);
        Set<String> reaped = new HashSet<>();
        for (String id : candidates) {
            if (!id.matches("[a-z0-9]{1,40}")) continue;
            destroy(id);
            reaped.add(id);
        }
        return reaped;
    }

    final List<String> command(String... args) {
        List<String> argv = new ArrayList<>();
        argv.add(binary);
        argv.addAll(globalArgs);
        argv.addAll(List.of(args));
        return argv;
    }

    private void deleteContainer(String cid) {
        HostCommand.Result r = HostCommand.run(command("delete", "--force", cid), RUNC_TIMEOUT);
        if (!r.ok() && !r.output().contains("does not exist") && !r.output().contains("not exist")) {
            throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, binary + " delete " + cid + " failed: " + r.output());
        }
    }

    /** The init's host pid from runc's --pid-file (a second runc process costs ~6 ms). */
    private long initPid(BundleLayout layout, String cid) {
        try {
            String text = Files.readString(layout.pidFile()).strip();
            if (text.matches("\\d{1,10}")) return Long.parseLong(text);
        } catch (IOException fallThrough) {
            // ask runc below
        }
        HostCommand.Result r = HostCommand.run(command("state", cid), RUNC_TIMEOUT);
        if (!r.ok()) {
            throw new RuntimeFailure(RuntimeFailure.Code.START_FAILED, "container " + cid + " vanished right after start: " + r.output());
        }
        try {
            return json.readTree(r.output()).path("pid").asLong();
        } catch (IOException e) {
            throw new RuntimeFailure(RuntimeFailure.Code.START_FAILED, binary + " state printed no JSON: " + r.output());
        }
    }

    static void unmount(Path target) {
        while (isMounted(target)) {
            int errno = Libc.umount2(target.toString(), 0);
            if (errno == 16 /* EBUSY */) errno = Libc.umount2(target.toString(), Libc.MNT_DETACH);
            if (errno != 0) {
                throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR,
                        "unmounting " + target + " failed: " + Libc.strerror(errno));
            }
        }
    }

    /** Whether {@code p} is a mount point, from /proc/self/mountinfo (exact match, octal escapes decoded). */
    static boolean isMounted(Path p) {
        String want = p.toAbsolutePath().normalize().toString();
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
                String[] f = line.split(" ");
                if (f.length > 4 && unescape(f[4]).equals(want)) return true;
            }
        } catch (IOException e) {
            throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "cannot read /proc/self/mountinfo: " + e.getMessage());
        }
        return false;
    }

    static String unescape(String s) {
        if (s.indexOf('\\') < 0) return s;
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 3 < s.length()) {
                b.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
                i += 3;
            } else {
                b.append(c);
            }
        }
        return b.toString();
    }

    private static void chown(Path p, long uid, long gid) throws IOException {
        Files.setAttribute(p, "unix:uid", (int) uid, LinkOption.NOFOLLOW_LINKS);
        Files.setAttribute(p, "unix:gid", (int) gid, LinkOption.NOFOLLOW_LINKS);
    }

    private static void mkdirOwned(Path p, long uid, String perms) throws IOException {
        Files.createDirectory(p);
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString(perms));
        chown(p, uid, uid);
    }

    private static void setSticky(Path p) throws IOException {
        int mode = (Integer) Files.getAttribute(p, "unix:mode");
        Files.setAttribute(p, "unix:mode", mode | 01000);
    }

    static String tail(Path log) {
        try {
            byte[] all = Files.readAllBytes(log);
            int from = Math.max(0, all.length - 2000);
            return new String(all, from, all.length - from, java.nio.charset.StandardCharsets.UTF_8).strip();
        } catch (IOException e) {
            return "(no log)";
        }
    }
}
