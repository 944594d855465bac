package dev.stockade.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.stockade.server.StockadeServer;
import dev.stockade.server.config.ServerConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;

/**
 * A real Stockade server for one test class, on an ephemeral loopback port, with its own data
 * directory. {@link #close} stops it and asserts that nothing it created is left on the host:
 * containers (runc's and runsc's), mounts, cgroups, sandbox processes, state directories. The
 * conformance contracts start one through {@link RuntimeContract}; server-level tests construct it
 * directly.
 */
public final class TestServer implements AutoCloseable {
    /** The default tenant's admin key every test server is started with. */
    public static final String KEY = "e2b_" + "0123456789abcdef0123456789abcdef01234567";
    /** Host uids of sandboxes start at slot 32 of 65536-id ranges. */
    public static final long FIRST_SANDBOX_UID = 32L * 65536;

    public final Path dataDir;
    public final StockadeServer server;
    public final RawClient client;

    public TestServer() {
        this(c -> c);
    }

    public TestServer(UnaryOperator<ServerConfig> tweak) {
        try {
            Path base = Path.of("/tmp/stockade-it");
            Files.createDirectories(base);
            Files.setPosixFilePermissions(base, PosixFilePermissions.fromString("rwx--x--x"));
            dataDir = Files.createTempDirectory(base, "d");
            Files.setPosixFilePermissions(dataDir, PosixFilePermissions.fromString("rwx--x--x"));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        server = StockadeServer.start(tweak.apply(ServerConfig.defaults(dataDir).withApiKey(KEY)));
        client = new RawClient(server.url(), KEY);
    }

    public String url() {
        return server.url().toString();
    }

    @Override
    public void close() {
        boolean clean = false;
        try {
            server.close();
            assertNoLeaks(dataDir);
            deleteTree(dataDir);
            clean = true;
        } finally {
            // Checked after a leak check that failed too, but then without hiding its failure.
            if (clean) assertNoHostDetailsInErrors();
            else ErrorTexts.drain(server.url());
        }
    }

    /**
     * Every error body and Connect end-of-stream error this server's clients read names no host
     * detail (issue 15, item 4; {@link ErrorTexts}): asserted when the server closes, so every suite
     * run on a TestServer greps the errors it provoked. Public for tests that look midway.
     */
    public void assertNoHostDetailsInErrors() {
        assertEquals(List.of(), ErrorTexts.leaks(server.url(), dataDir),
                "error answers naming host details (paths, uids, runtime output, class names)");
    }

    /** Removes a data directory the test made (after {@link #assertNoLeaks}: nothing is mounted there). */
    /**
     * The host uid owning a file of a sandbox's writable layer, {@code relative} to its root, as the
     * OCI runtimes keep it (DATA/runtime/NAME/sandboxes/ID/disk/upper/...).
     */
    public static long hostOwnerOf(Path dataDir, String sandboxId, String relative) {
        try (Stream<Path> runtimes = Files.list(dataDir.resolve("runtime"))) {
            for (Path rt : runtimes.toList()) {
                Path f = rt.resolve("sandboxes").resolve(sandboxId).resolve("disk/upper").resolve(relative);
                if (Files.exists(f, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
                    return Integer.toUnsignedLong((Integer) Files.getAttribute(f, "unix:uid", java.nio.file.LinkOption.NOFOLLOW_LINKS));
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        throw new AssertionError("no file " + relative + " of sandbox " + sandboxId + " under " + dataDir.resolve("runtime"));
    }

    public static void deleteTree(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            List<Path> all = new ArrayList<>(s.sorted(java.util.Comparator.reverseOrder()).toList());
            for (Path p : all) Files.deleteIfExists(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Everything a server with {@code dataDir} might have left behind, asserted absent, whatever
     * runtime it ran: mounts under it, state directories of any runtime ({@code runtime/NAME/sandboxes}),
     * egress sockets, loop devices whose backing file (a sandbox's disk image) lies under it, runc
     * containers whose bundle lies under it, runsc containers in its runsc state root, {@code stockade-*} cgroups, host processes running as a sandbox uid, and host processes
     * whose command line names the data directory (runsc's sandbox and gofer processes run as uid
     * 65534 or the sandbox's root and are found this way).
     */
    public static void assertNoLeaks(Path dataDir) {
        try {
            String mounts = Files.readString(Path.of("/proc/self/mountinfo"));
            assertEquals(List.of(), mounts.lines().filter(l -> l.contains(dataDir.toString())).toList(), "mounts left behind");
            Path runtimes = dataDir.resolve("runtime");
            if (Files.isDirectory(runtimes)) {
                try (Stream<Path> rs = Files.list(runtimes)) {
                    for (Path rt : rs.toList()) {
                        Path sandboxes = rt.resolve("sandboxes");
                        if (!Files.isDirectory(sandboxes)) continue;
                        try (Stream<Path> s = Files.list(sandboxes)) {
                            assertEquals(List.of(), s.toList(), "sandbox state directories left behind in " + sandboxes);
                        }
                    }
                }
            }
            assertEquals(List.of(), loopDevices(dataDir), "loop devices (sandbox disk images) left behind");
            Path egress = dataDir.resolve("egress");
            if (Files.isDirectory(egress)) {
                try (Stream<Path> s = Files.list(egress)) {
                    assertEquals(List.of(), s.toList(), "egress sockets left behind");
                }
            }
            // runc containers whose bundle lies under this server's data directory (other servers may
            // run on a developer's machine at the same time; CI runs one).
            List<String> containers = new ArrayList<>();
            List<String> foreign = new ArrayList<>();
            String out = runQuietly("runc", "list", "--format", "json");
            if (out != null && out.strip().startsWith("[")) {
                for (var c : RawClient.JSON.readTree(out)) {
                    String id = c.path("id").asText();
                    if (c.path("bundle").asText("").startsWith(dataDir.toString())) containers.add(id);
                    else foreign.add(id);
                }
            }
            assertEquals(List.of(), containers, "runc containers left behind");
            // runsc keeps its containers' state under a root of this server's own, so every one listed
            // there is this server's.
            Path runscState = dataDir.resolve("runtime/runsc/state");
            if (Files.isDirectory(runscState)) {
                assertEquals(List.of(), runscContainers(runscState), "runsc containers left behind");
            }
            // Another server's sandbox may be starting or ending while we look: look again for 5 s.
            List<String> cgroups = leftoverCgroups(dataDir, foreign);
            for (int i = 0; i < 50 && !cgroups.isEmpty(); i++) {
                Thread.sleep(100);
                cgroups = leftoverCgroups(dataDir, foreignRuncContainers(dataDir));
            }
            assertEquals(List.of(), cgroups, "cgroups left behind");
            // Processes of a killed pid namespace (or a runsc sandbox) may take a moment to be reaped.
            List<String> procs = leftoverProcesses(dataDir, foreign);
            for (int i = 0; i < 50 && !procs.isEmpty(); i++) {
                Thread.sleep(100);
                procs = leftoverProcesses(dataDir, foreignRuncContainers(dataDir));
            }
            assertEquals(List.of(), procs, "sandbox processes left behind");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /**
     * Loop devices whose backing file lies under {@code dataDir} ("/dev/loopN FILE"), from sysfs. A
     * device is freed when its disk is unmounted (autoclear), which a lazy unmount may delay a moment.
     */
    public static List<String> loopDevices(Path dataDir) throws IOException, InterruptedException {
        List<String> found = List.of();
        for (int i = 0; i < 50; i++) {
            found = new ArrayList<>();
            try (Stream<Path> s = Files.list(Path.of("/sys/block"))) {
                for (Path dev : s.filter(d -> d.getFileName().toString().startsWith("loop")).toList()) {
                    Path backing = dev.resolve("loop/backing_file");
                    String file;
                    try {
                        file = Files.readString(backing).strip();
                    } catch (IOException detached) {
                        continue;
                    }
                    if (file.startsWith(dataDir.toString() + "/")) found.add("/dev/" + dev.getFileName() + " " + file);
                }
            }
            if (found.isEmpty()) return found;
            Thread.sleep(100);
        }
        return found;
    }

    /**
     * The containers of the known OCI runtimes that belong to the server of {@code dataDir}: runc
     * containers whose bundle lies under it and runsc containers in its runsc state root.
     */
    public static List<String> containers(Path dataDir) {
        try {
            List<String> found = new ArrayList<>();
            String out = runQuietly("runc", "list", "--format", "json");
            if (out != null && out.strip().startsWith("[")) {
                for (var c : RawClient.JSON.readTree(out)) {
                    if (c.path("bundle").asText("").startsWith(dataDir.toString())) found.add("runc " + c.path("id").asText());
                }
            }
            Path runscState = dataDir.resolve("runtime/runsc/state");
            if (Files.isDirectory(runscState)) runscContainers(runscState).forEach(id -> found.add("runsc " + id));
            return found;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /**
     * {@code stockade-*} cgroups (cgroup v1 pids hierarchy, or v2) whose processes include one that
     * names a runtime state root ({@code --root}) outside {@code dataDir}: another server's or another
     * tool's live sandbox (runsc's gofer and sandbox processes say their root on their command line).
     */
    static List<String> cgroupsOfOtherRuntimeRoots(Path dataDir) throws IOException {
        List<String> found = new ArrayList<>();
        for (Path root : List.of(Path.of("/sys/fs/cgroup/pids"), Path.of("/sys/fs/cgroup"))) {
            if (!Files.isDirectory(root)) continue;
            List<Path> groups;
            try (Stream<Path> s = Files.list(root)) {
                groups = s.filter(d -> d.getFileName().toString().startsWith("stockade-")).toList();
            }
            for (Path g : groups) {
                try {
                    for (String pid : Files.readAllLines(g.resolve("cgroup.procs"))) {
                        String cmd = new String(Files.readAllBytes(Path.of("/proc", pid.strip(), "cmdline")), StandardCharsets.UTF_8)
                                .replace('\0', ' ');
                        if (cmd.contains("--root") && !cmd.contains(dataDir.toString())) {
                            found.add(g.getFileName().toString());
                            break;
                        }
                    }
                } catch (IOException | RuntimeException gone) {
                    // the cgroup or the process went away while we looked
                }
            }
            if (!found.isEmpty() || root.endsWith("pids")) break;
        }
        return found;
    }

    /** runc containers whose bundle lies outside {@code dataDir}: other servers' (they come and go while we look). */
    static List<String> foreignRuncContainers(Path dataDir) throws IOException, InterruptedException {
        List<String> foreign = new ArrayList<>();
        String out = runQuietly("runc", "list", "--format", "json");
        if (out != null && out.strip().startsWith("[")) {
            for (var c : RawClient.JSON.readTree(out)) {
                if (!c.path("bundle").asText("").startsWith(dataDir.toString())) foreign.add(c.path("id").asText());
            }
        }
        return foreign;
    }

    /** The ids `runsc --root STATE list` reports; a missing runsc binary lists nothing. */
    static List<String> runscContainers(Path stateRoot) throws IOException, InterruptedException {
        String out = runQuietly("runsc", "--root", stateRoot.toString(), "list", "-quiet");
        if (out == null) return List.of();
        return out.lines().map(String::strip).filter(l -> !l.isEmpty()).toList();
    }

    /** A host command's combined output, or null when the binary is not installed; bounded to 30 s. */
    private static String runQuietly(String... argv) throws IOException, InterruptedException {
        Process p;
        try {
            p = new ProcessBuilder(argv).redirectErrorStream(true).start();
        } catch (IOException notInstalled) {
            return null;
        }
        byte[] out = p.getInputStream().readNBytes(1 << 20);
        if (!p.waitFor(30, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new IllegalStateException(String.join(" ", argv) + " did not finish within 30 s");
        }
        return new String(out, StandardCharsets.UTF_8);
    }

    /**
     * {@code stockade-*} cgroups of the memory, pids, cpu and freezer hierarchies, except those of
     * {@code foreign} runc containers and of other runtime roots' live sandboxes.
     */
    static List<String> leftoverCgroups(Path dataDir, List<String> foreign) throws IOException {
        List<String> others = new ArrayList<>(foreign);
        others.addAll(cgroupsOfOtherRuntimeRoots(dataDir));
        List<String> found = new ArrayList<>();
        for (String ctl : List.of("memory", "pids", "cpu", "freezer")) {
            Path root = Path.of("/sys/fs/cgroup", ctl);
            if (!Files.isDirectory(root)) continue;
            try (Stream<Path> s = Files.list(root)) {
                s.filter(d -> d.getFileName().toString().startsWith("stockade-"))
                        .filter(d -> !others.contains(d.getFileName().toString())).forEach(d -> found.add(d.toString()));
            }
        }
        return found;
    }

    /**
     * Sandbox-uid processes (outside {@code foreign} containers, and not naming another runtime
     * root: runsc's gofer runs as a sandbox uid outside its sandbox's cgroup) and processes naming
     * {@code dataDir}.
     */
    static List<String> leftoverProcesses(Path dataDir, List<String> foreign) throws IOException {
        List<String> found = new ArrayList<>();
        for (String p : sandboxProcesses(foreign)) {
            String pid = p.substring(0, p.indexOf(' '));
            try {
                String cmd = new String(Files.readAllBytes(Path.of("/proc", pid, "cmdline")), StandardCharsets.UTF_8);
                if (cmd.contains("--root") && !cmd.contains(dataDir.toString())) continue;
            } catch (IOException gone) {
                continue;
            }
            found.add(p);
        }
        found.addAll(processesNaming(dataDir.toString()));
        return found;
    }

    /**
     * Host processes running as a sandbox uid, except those in the cgroups of {@code foreign}
     * containers (other servers' live sandboxes, on a developer's machine).
     */
    public static List<String> sandboxProcesses(List<String> foreign) throws IOException {
        return processesWithUids(FIRST_SANDBOX_UID, 0xFFFF_FFFEL, foreign);
    }

    /** Host processes, other than this JVM, whose command line contains {@code needle}. */
    public static List<String> processesNaming(String needle) throws IOException {
        List<String> found = new ArrayList<>();
        long self = ProcessHandle.current().pid();
        try (Stream<Path> s = Files.list(Path.of("/proc"))) {
            for (Path p : s.filter(d -> d.getFileName().toString().matches("\\d+")).toList()) {
                try {
                    if (Long.parseLong(p.getFileName().toString()) == self) continue;
                    String cmd = new String(Files.readAllBytes(p.resolve("cmdline")), StandardCharsets.UTF_8).replace('\0', ' ');
                    if (cmd.contains(needle)) found.add(p.getFileName() + " " + cmd.strip());
                } catch (IOException | RuntimeException gone) {
                    // the process ended while we looked
                }
            }
        }
        return found;
    }

    /**
     * What of sandbox {@code id} (host uids from {@code base}) is still on the host, whatever the
     * runtime: a state directory of any runtime under {@code dataDir}, a mount, a container, a
     * cgroup, a process in its uid range or one whose command line names it. Empty once a killed
     * sandbox is gone (callers poll: a killed pid namespace's processes take a moment to go).
     */
    public static List<String> leftoversOf(Path dataDir, String id, long base) throws IOException {
        List<String> left = new ArrayList<>();
        Path runtimes = dataDir.resolve("runtime");
        if (Files.isDirectory(runtimes)) {
            try (Stream<Path> s = Files.list(runtimes)) {
                s.filter(rt -> Files.exists(rt.resolve("sandboxes").resolve(id))).forEach(rt -> left.add("state directory in " + rt));
            }
        }
        Files.readAllLines(Path.of("/proc/self/mountinfo")).stream().filter(l -> l.contains(id)).forEach(l -> left.add("mount " + l));
        containers(dataDir).stream().filter(cn -> cn.contains(id)).forEach(cn -> left.add("container " + cn));
        try (Stream<Path> s = Files.find(Path.of("/sys/fs/cgroup"), 3,
                (p, a) -> a.isDirectory() && p.getFileName().toString().contains(id))) {
            s.forEach(p -> left.add("cgroup " + p));
        } catch (IOException | UncheckedIOException raced) {
            left.add("cgroups changing while looked at: " + raced); // the caller looks again
        }
        // The uid_map a sandbox shows is a host uid range only when its processes are host processes
        // (under a kernel of the runtime's own it is the runtime's view, often 0 0 4294967295).
        if (base >= FIRST_SANDBOX_UID) {
            processesWithUids(base, base + 65536, List.of()).forEach(p -> left.add("process " + p));
        }
        processesNaming(id).forEach(p -> left.add("process " + p));
        return left;
    }

    /** Host processes whose real uid lies in [from, to), outside the cgroups of {@code foreign} containers. */
    public static List<String> processesWithUids(long from, long to, List<String> foreign) throws IOException {
        List<String> found = new ArrayList<>();
        try (Stream<Path> s = Files.list(Path.of("/proc"))) {
            for (Path p : s.filter(d -> d.getFileName().toString().matches("\\d+")).toList()) {
                try {
                    for (String line : Files.readAllLines(p.resolve("status"))) {
                        if (line.startsWith("Uid:")) {
                            long uid = Long.parseLong(line.split("\\s+")[1]);
                            if (uid >= from && uid < to) {
                                String cg = Files.readString(p.resolve("cgroup"));
                                if (foreign.stream().noneMatch(f -> cg.contains("/" + f + "\n"))) {
                                    found.add(p.getFileName() + " uid " + uid);
                                }
                            }
                        }
                    }
                } catch (IOException | RuntimeException gone) {
                    // the process ended while we looked
                }
            }
        }
        return found;
    }
}
