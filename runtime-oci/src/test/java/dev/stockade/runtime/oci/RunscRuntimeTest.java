package dev.stockade.runtime.oci;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.runtime.Capabilities;
import dev.stockade.runtime.Limits;
import dev.stockade.runtime.RuntimeFailure;
import dev.stockade.runtime.RuntimeProvider;
import dev.stockade.runtime.RuntimeSandbox;
import dev.stockade.runtime.SandboxRuntime;
import dev.stockade.runtime.SandboxSpec;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The runsc runtime against the real host and the real agent (agent/src/main/python), talked to
 * over its host socket as docs/agent-protocol.md says: gVisor's kernel, working coreutils, /tmp on
 * the disk quota, loopback only, limits, pause, snapshot, and destroy leaving nothing behind.
 * Skipped, with the reason, where runsc cannot run.
 */
class RunscRuntimeTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final Path AGENT_SOURCES = Path.of("../agent/src/main/python");
    /** Host uid ranges far above the server's and other tests' (3 900 000 000+). */
    static final long UID_BASE = 3_900_065_536L;

    @TempDir
    Path tmp;

    SandboxRuntime runtime;
    Path stateRoot;
    Path agentDir;

    @BeforeEach
    void setUp() throws IOException {
        RuntimeProvider.Availability a = new RunscProvider().probe();
        if (!a.available()) System.out.println("RunscRuntimeTest skipped: " + a.reason());
        assumeTrue(a.available(), "runsc unavailable: " + a.reason());
        assumeTrue(Files.isRegularFile(AGENT_SOURCES.resolve("agent")), "the agent's sources are not at " + AGENT_SOURCES);
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwx--x--x"));
        stateRoot = tmp.resolve("state");
        runtime = new RunscProvider().create(stateRoot);
        agentDir = tmp.resolve("agentdir");
        Files.createDirectories(agentDir);
        Files.setPosixFilePermissions(agentDir, PosixFilePermissions.fromString("rwxr-xr-x"));
        // The source tree is laid out as the agent's directory is: the entry programs and their package.
        try (var paths = Files.walk(AGENT_SOURCES)) {
            for (Path source : paths.filter(p -> !p.toString().contains("__pycache__")).toList()) {
                Path target = agentDir.resolve(AGENT_SOURCES.relativize(source).toString());
                if (Files.isDirectory(source)) {
                    Files.createDirectories(target);
                    Files.setPosixFilePermissions(target, PosixFilePermissions.fromString("rwxr-xr-x"));
                } else {
                    Files.copy(source, target);
                }
            }
        }
    }

    @AfterEach
    void tearDown() {
        if (runtime != null) runtime.reapExcept(Set.of());
    }

    SandboxSpec spec(String id, int index, Limits limits) {
        return new SandboxSpec(id, UID_BASE + 65536L * index, stateRoot.resolve("sandboxes").resolve(id),
                runtime.defaultTemplate(), agentDir, limits);
    }

    static String newId() {
        return "rs" + Long.toHexString(System.nanoTime());
    }

    @Test
    void sandboxRunsOnGvisorWithWorkingCoreutilsAndDestroyLeavesNothing() throws Exception {
        String id = newId();
        SandboxSpec spec = spec(id, 0, new Limits(512, 1, 256, 16, 16, 60));
        RuntimeSandbox sb = runtime.start(spec);
        assertEquals("0.1.0", hello(sb.agentSocket()).path("version").asText(), "the agent answers on its host socket");
        assertTrue(runtime.isAlive(id));
        assertEquals(Set.of(Capabilities.PAUSE, Capabilities.SNAPSHOT, Capabilities.NETWORK_ALLOWLIST, Capabilities.USERSPACE_KERNEL),
                runtime.capabilities());

        Exec ls = exec(sb.agentSocket(), "id -u; ls -la / && stat -c %U /home/user && find /etc -maxdepth 1 -name passwd"
                + " && cp -a /etc/ssl /tmp/ssl && du -s /tmp/ssl >/dev/null && echo ok");
        assertEquals(0, ls.exitCode(), ls.toString());
        assertTrue(ls.stdout().startsWith("1000\n"), "user code runs as uid 1000: " + ls);
        assertTrue(ls.stdout().contains(" etc\n") && ls.stdout().contains("user\n/etc/passwd\nok\n"), ls.toString());

        Exec kernel = exec(sb.agentSocket(), "uname -r; dmesg | head -1; cat /proc/net/dev | tail -n +3 | cut -d: -f1");
        assertEquals(0, kernel.exitCode(), kernel.toString());
        List<String> lines = kernel.stdout().lines().map(String::strip).toList();
        assertEquals("4.4.0", lines.get(0), "gVisor's kernel, not the host's");
        assertTrue(lines.get(1).contains("gVisor"), "gVisor's boot messages: " + lines);
        assertEquals(List.of("lo"), lines.subList(2, lines.size()), "loopback only");

        Exec py = exec(sb.agentSocket(), "/usr/bin/python3 -c 'import os, pathlib, threading; t = threading.Thread(target=print);"
                + " t.start(); t.join(); print(os.stat(\"/\").st_mode, sorted(p.name for p in pathlib.Path(\"/etc\").glob(\"pass*\")))'");
        assertEquals(0, py.exitCode(), py.toString());
        assertTrue(py.stdout().contains("['passwd']"), py.toString());

        // /tmp is the overlay's own (the disk quota, 16 MiB here), not a memory tmpfs of runsc's.
        Exec fill = exec(sb.agentSocket(), "df -m /tmp | tail -1; dd if=/dev/zero of=/tmp/fill bs=1M count=32 2>&1");
        assertTrue(fill.stdout().contains("No space left on device"), "a write beyond the disk limit fails: " + fill);
        assertTrue(Files.size(spec.stateDir().resolve("disk/upper/tmp/fill")) > 8 << 20, "what /tmp holds is in the disk's upper dir");

        runtime.destroy(id);
        assertFalse(runtime.isAlive(id));
        assertNull(runtime.attach(id));
        assertFalse(Files.exists(spec.stateDir()), "state directory removed");
        assertFalse(Files.exists(stateRoot.resolve("state").resolve("stockade-" + id + ".state")), "runsc's own state removed");
        try (var left = Files.list(stateRoot.resolve("state"))) {
            assertEquals(List.of(), left.filter(p -> p.getFileName().toString().contains(id)).toList(), "runsc's own state removed");
        }
        assertFalse(Files.readString(Path.of("/proc/self/mountinfo")).contains(id), "no mount left");
        for (String c : List.of("memory", "pids", "cpu", "freezer")) {
            assertFalse(Files.exists(Path.of("/sys/fs/cgroup", c, "stockade-" + id)), "no " + c + " cgroup left");
        }
        assertEquals(List.of(), processesMentioning(id), "no runsc-sandbox or gofer process left");
    }

    @Test
    void updateWritesTheCgroupLimitsAndTheDisk() throws Exception {
        String id = newId();
        SandboxSpec spec = spec(id, 1, new Limits(512, 1, 256, 64, 16, 60));
        RuntimeSandbox sb = runtime.start(spec);
        hello(sb.agentSocket());
        RuntimeFailure fixed = assertThrows(RuntimeFailure.class, () -> runtime.update(id, new Limits(300, 0.5, 100, 32, 16, 60)));
        assertTrue(fixed.getMessage().contains("process limit") && fixed.getMessage().contains("fixed"), fixed.getMessage());
        // A smaller disk (a ballast within the loop disk's image: growing past the image needs
        // resize2fs and CAP_SYS_RESOURCE, which this host may lack).
        runtime.update(id, new Limits(300, 0.5, 256, 32, 16, 60));
        Path mem = Path.of("/sys/fs/cgroup/memory", "stockade-" + id);
        assumeTrue(Files.isDirectory(mem), "cgroup v1 layout expected (this test reads v1 files)");
        long bytes = (300L + RunscRuntime.MEMORY_OVERHEAD_MB) << 20;
        assertEquals(bytes, Long.parseLong(Files.readString(mem.resolve("memory.limit_in_bytes")).strip()));
        if (Files.exists(mem.resolve("memory.memsw.limit_in_bytes"))) {
            assertEquals(bytes, Long.parseLong(Files.readString(mem.resolve("memory.memsw.limit_in_bytes")).strip()));
        }
        assertEquals((OciConfigPlanner.API_USERS * 256L + OciConfigPlanner.AGENT_PIDS_RESERVE) * RunscRuntime.PIDS_PER_PROCESS + RunscRuntime.PIDS_OVERHEAD,
                Long.parseLong(Files.readString(Path.of("/sys/fs/cgroup/pids", "stockade-" + id, "pids.max")).strip()));
        assertEquals("50000", Files.readString(Path.of("/sys/fs/cgroup/cpu", "stockade-" + id, "cpu.cfs_quota_us")).strip());
        Exec df = exec(sb.agentSocket(), "df -m --output=avail / | tail -1");
        long avail = Long.parseLong(df.stdout().strip());
        assertTrue(avail <= 32 && avail > 24, "32 MiB may be written: " + df);
        runtime.setBackground(id, true);
        assertEquals("2", Files.readString(Path.of("/sys/fs/cgroup/cpu", "stockade-" + id, "cpu.shares")).strip());
        runtime.update(id, new Limits(800, 2, 256, 64, 16, 60));
        assertEquals((800L + RunscRuntime.MEMORY_OVERHEAD_MB) << 20,
                Long.parseLong(Files.readString(mem.resolve("memory.limit_in_bytes")).strip()), "raising works too");
        assertEquals(0, exec(sb.agentSocket(), "true").exitCode(), "the sandbox lives on");
    }

    @Test
    void pauseKeepsProcessesAndSnapshotSeesFilesJustWritten() throws Exception {
        String id = newId();
        SandboxSpec spec = spec(id, 2, new Limits(512, 1, 256, 64, 16, 60));
        RuntimeSandbox sb = runtime.start(spec);
        hello(sb.agentSocket());
        Exec loop = exec(sb.agentSocket(), "setsid sh -c 'i=0; while :; do i=$((i+1)); echo $i > /tmp/counter.new; mv /tmp/counter.new /tmp/counter; sleep 0.05; done'"
                + " >/dev/null 2>&1 < /dev/null & /usr/bin/python3 -c 'open(\"/home/user/note\", \"w\").write(\"written inside\")'");
        assertEquals(0, loop.exitCode(), loop.toString());
        // Renamed into place, never truncated in place: a pause (or a read) between a truncate and
        // its write would see an empty counter (seen once in CI under load).
        Path counter = spec.stateDir().resolve("disk/upper/tmp/counter");
        Thread.sleep(400);

        runtime.pause(id);
        assertTrue(runtime.isPaused(id));
        assertTrue(runtime.isAlive(id), "a paused sandbox is alive");
        String frozen = Files.readString(counter).strip();
        Thread.sleep(500);
        assertEquals(frozen, Files.readString(counter).strip(), "no process runs while paused");
        Path snap = tmp.resolve("snap");
        long bytes = runtime.snapshot(id, snap, spec.uidBase());
        assertTrue(bytes > 0);
        assertEquals("written inside", Files.readString(snap.resolve("home/user/note")),
                "a file written by python inside is on the host upper dir, whole, as soon as the write returned");
        assertEquals(1000, (Integer) Files.getAttribute(snap.resolve("home/user/note"), "unix:uid"), "canonical owner");

        runtime.resume(id);
        assertFalse(runtime.isPaused(id));
        Thread.sleep(400);
        assertTrue(Long.parseLong(Files.readString(counter).strip()) > Long.parseLong(frozen), "the loop goes on after resume");
        assertEquals("0.1.0", hello(sb.agentSocket()).path("version").asText(), "the agent's socket survived");

        // A new sandbox seeded with the snapshot sees the file.
        String id2 = newId();
        SandboxSpec seeded = new SandboxSpec(id2, UID_BASE + 65536L * 3, stateRoot.resolve("sandboxes").resolve(id2),
                runtime.defaultTemplate(), agentDir, spec.limits(), null, SandboxSpec.Warmup.NONE, snap);
        RuntimeSandbox sb2 = runtime.start(seeded);
        hello(sb2.agentSocket());
        assertEquals("written inside", exec(sb2.agentSocket(), "cat /home/user/note").stdout());
    }

    @Test
    void reapExceptRemovesOnlyTheOthers() throws Exception {
        String keep = newId();
        String drop = newId();
        RuntimeSandbox a = runtime.start(spec(keep, 4, new Limits(256, 1, 64, 16, 16, 60)));
        RuntimeSandbox b = runtime.start(spec(drop, 5, new Limits(256, 1, 64, 16, 16, 60)));
        hello(a.agentSocket());
        hello(b.agentSocket());
        assertEquals(Set.of(drop), runtime.reapExcept(Set.of(keep)));
        assertFalse(runtime.isAlive(drop));
        assertTrue(runtime.isAlive(keep));
        assertEquals(a.agentSocket(), runtime.attach(keep).agentSocket(), "attach finds the kept one again");
        assertEquals(List.of(), processesMentioning(drop));
    }

    /**
     * The process limit is RLIMIT_NPROC inside the sentry (issue 15), reached long before the host's
     * pids limit: a storm's forks fail with EAGAIN and the sandbox lives on. (Before, the host limit
     * came first and the sentry panicked: the whole sandbox ended.)
     */
    @Test
    void aProcessLimitRefusesForksInsideAndTheSandboxLivesOn() throws Exception {
        String id = newId();
        RuntimeSandbox sb = runtime.start(spec(id, 6, new Limits(512, 1, 8, 16, 16, 60)));
        hello(sb.agentSocket());
        try {
            Exec storm = exec(sb.agentSocket(), "exec python3 -c '" + String.join("\n",
                    "import os, time",
                    "n = 0",
                    "try:",
                    "    while n < 40:",
                    "        if os.fork() == 0:",
                    "            time.sleep(600)",
                    "            os._exit(0)",
                    "        n += 1",
                    "except OSError as e:",
                    "    print(n, e.errno)") + "'");
            assertTrue(storm.stdout().strip().endsWith(" 11"), "forks refused with EAGAIN: " + storm);
            assertTrue(Integer.parseInt(storm.stdout().strip().split(" ")[0]) <= 8, storm.toString());
            assertTrue(runtime.isAlive(id), "the sandbox lives on");
            assertEquals(1, hello(sb.agentSocket()).path("pid").asInt(), "its agent answers");
            assertTrue(runtime.endReason(id).isEmpty(), "no host limit was reached");
        } finally {
            runtime.destroy(id);
        }
        assertEquals(List.of(), processesMentioning(id));
    }

    @Test
    void aMemoryLimitEndsTheSandboxAndEndReasonSaysSo() throws Exception {
        String id = newId();
        RuntimeSandbox sb = runtime.start(spec(id, 7, new Limits(128, 1, 64, 16, 16, 60)));
        hello(sb.agentSocket());
        try {
            exec(sb.agentSocket(), "/usr/bin/python3 -c 'b = bytearray(400 << 20); b[::4096] = b\"x\" * len(b[::4096])'");
        } catch (IOException expected) {
            // the agent went down with the sandbox
        }
        long deadline = System.currentTimeMillis() + 15_000;
        while (runtime.isAlive(id) && System.currentTimeMillis() < deadline) Thread.sleep(100);
        assertFalse(runtime.isAlive(id), "this gVisor ends the whole sandbox at the memory limit");
        String why = runtime.endReason(id).orElseThrow();
        assertTrue(why.contains("memory limit of 128 MiB"), why);
        runtime.destroy(id);
        assertEquals(List.of(), processesMentioning(id));
    }

    /** Host processes whose command line names the sandbox (runsc-sandbox, gofer, runsc itself). */
    /**
     * Flags that loosen or switch off gVisor's own host seccomp filters or other host isolation
     * (runsc flags; --profile "loosens the seccomp protection", --TESTONLY-unsafe-nonroot "skips many
     * security measures"). None may reach the sentry or the gofer.
     */
    static final List<String> WEAKENING_FLAGS = List.of("-TESTONLY", "-profile", "-network=host", "-rootless",
            "-ignore-cgroups", "-fsgofer-host-uds", "-host-fifo", "-net-raw");

    @Test
    void theSentryAndTheGoferRunUnderGvisorsOwnSeccompFilters() throws Exception {
        String id = newId();
        RuntimeSandbox sb = runtime.start(spec(id, 8, new Limits(256, 1, 64, 16, 16, 60)));
        hello(sb.agentSocket());
        List<Long> pids = pidsMentioning(id);
        int sentries = 0;
        int gofers = 0;
        for (long pid : pids) {
            String cmdline;
            String status;
            try {
                cmdline = new String(Files.readAllBytes(Path.of("/proc", Long.toString(pid), "cmdline")), StandardCharsets.UTF_8);
                status = Files.readString(Path.of("/proc", Long.toString(pid), "status"));
            } catch (IOException gone) {
                continue;
            }
            List<String> argv = List.of(cmdline.split("\0"));
            String role = argv.getFirst();
            if (!role.equals("runsc-sandbox") && !role.equals("runsc-gofer")) continue;
            if (role.equals("runsc-sandbox")) sentries++; else gofers++;
            assertTrue(status.contains("\nSeccomp:\t2\n"), role + " (pid " + pid + ") runs under a seccomp filter: "
                    + status.lines().filter(l -> l.startsWith("Seccomp")).toList());
            for (String arg : argv) {
                for (String weak : WEAKENING_FLAGS) {
                    assertFalse(arg.replaceFirst("^--", "-").startsWith(weak), role + " was started with " + arg + ": " + argv);
                }
            }
            // The one documented widening (docs/runtimes.md): the agent's socket and the egress relay's are host
            // unix sockets, so the sentry may open and bind those; nothing else of the host network.
            assertTrue(argv.contains("--host-uds=all"), argv.toString());
        }
        assertEquals(1, sentries, "one sentry among " + pids);
        assertTrue(gofers >= 1, "a gofer among " + pids);
        runtime.destroy(id);
    }

    static List<Long> pidsMentioning(String id) throws IOException {
        try (var procs = Files.list(Path.of("/proc"))) {
            return procs.filter(p -> p.getFileName().toString().matches("\\d+")).filter(p -> {
                try {
                    return new String(Files.readAllBytes(p.resolve("cmdline")), StandardCharsets.UTF_8).contains(id);
                } catch (IOException gone) {
                    return false;
                }
            }).map(p -> Long.parseLong(p.getFileName().toString())).toList();
        }
    }

    static List<String> processesMentioning(String id) throws IOException {
        return pidsMentioning(id).stream().map(pid -> {
            try {
                return new String(Files.readAllBytes(Path.of("/proc", Long.toString(pid), "cmdline")), StandardCharsets.UTF_8).replace('\0', ' ');
            } catch (IOException gone) {
                return "";
            }
        }).filter(cmd -> cmd.contains(id)).toList();
    }

    // --- a minimal client of docs/agent-protocol.md: one request per connection, framed ---

    record Exec(int exitCode, String stdout, String stderr) {}

    static JsonNode hello(Path socket) throws Exception {
        long deadline = System.currentTimeMillis() + 10_000;
        while (true) {
            try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
                send(ch, JSON.createObjectNode().put("op", "hello"));
                return JSON.readTree(readFrame(ch).payload());
            } catch (IOException notYet) {
                if (System.currentTimeMillis() > deadline) throw notYet;
                Thread.sleep(10);
            }
        }
    }

    static Exec exec(Path socket, String script) throws IOException {
        try (SocketChannel ch = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
            ObjectNode req = JSON.createObjectNode().put("op", "exec").put("user", "user").put("timeoutMillis", 60_000);
            req.putArray("argv").add("/bin/bash").add("-c").add(script);
            send(ch, req);
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            while (true) {
                Frame f = readFrame(ch);
                if (f.type() == '1') out.writeBytes(f.payload());
                else if (f.type() == '2') err.writeBytes(f.payload());
                else if (f.type() == 'J') {
                    JsonNode j = JSON.readTree(f.payload());
                    if (j.has("error")) throw new IOException("agent error: " + j);
                    if ("end".equals(j.path("ev").asText())) {
                        return new Exec(j.path("exitCode").asInt(-1), out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
                    }
                }
            }
        }
    }

    record Frame(char type, byte[] payload) {}

    static void send(SocketChannel ch, JsonNode request) throws IOException {
        byte[] body = JSON.writeValueAsBytes(request);
        ByteBuffer b = ByteBuffer.allocate(5 + body.length).putInt(body.length + 1).put((byte) 'J').put(body).flip();
        while (b.hasRemaining()) ch.write(b);
    }

    static Frame readFrame(SocketChannel ch) throws IOException {
        ByteBuffer head = readFully(ch, 4);
        int n = head.getInt();
        if (n < 1 || n > (1 << 20) + 1) throw new IOException("bad frame length " + n);
        ByteBuffer body = readFully(ch, n);
        byte[] payload = new byte[n - 1];
        char type = (char) body.get();
        body.get(payload);
        return new Frame(type, payload);
    }

    static ByteBuffer readFully(SocketChannel ch, int n) throws IOException {
        ByteBuffer b = ByteBuffer.allocate(n);
        while (b.hasRemaining()) {
            if (ch.read(b) < 0) throw new IOException("the agent closed the connection");
        }
        return b.flip();
    }
}
