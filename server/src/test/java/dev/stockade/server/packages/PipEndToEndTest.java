package dev.stockade.server.packages;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.stockade.server.egress.Decision;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The index as the real pip (Debian's 23.0.1 at /usr/bin/python3) sees it, through {@link IndexAdapter}
 * standing in for the egress proxy. pip installs with --target into a temp directory, never into the host's
 * Python, and runs with no pip configuration (the host's pip.conf and PIP_* variables are removed).
 */
class PipEndToEndTest {
    private static final Path PYTHON = Path.of("/usr/bin/python3");
    private static final long PROCESS_SECONDS = 180;

    @TempDir
    Path dir;
    private FakeUpstream upstream;
    private PackageIndex index;
    private IndexAdapter adapter;
    private final List<Decision> decisions = new CopyOnWriteArrayList<>();

    record Result(int exit, String output) {}

    @BeforeAll
    static void pipIsThere() throws Exception {
        assumeTrue(Files.isExecutable(PYTHON), "needs " + PYTHON);
        Path out = Files.createTempFile("pip-version", ".txt");
        try {
            Result r = run(List.of(PYTHON.toString(), "-m", "pip", "--version"), null, out);
            assumeTrue(r.exit() == 0, "needs pip for " + PYTHON + ": " + r.output());
        } finally {
            Files.deleteIfExists(out);
        }
    }

    @BeforeEach
    void setUp() throws Exception {
        Path wheelhouse = Files.createDirectory(dir.resolve("wheelhouse"));
        TestWheels.write(wheelhouse, "whpkg", "1.0", ">=3.7");
        upstream = new FakeUpstream();
        upstream.add("uppkg", TestWheels.filename("uppkg", "1.0"), TestWheels.bytes("uppkg", "1.0", null));
        upstream.add("uppkg", TestWheels.filename("uppkg", "2.0"), TestWheels.bytes("uppkg", "2.0", null));
        byte[] real = TestWheels.bytes("tampered", "1.0", null);
        byte[] served = real.clone();
        served[served.length / 2] ^= 1;
        upstream.add(new FakeUpstream.Served(TestWheels.filename("tampered", "1.0"), served, TestWheels.sha256(real), null, false),
                "tampered");
        Path allow = dir.resolve("allow.txt");
        Files.writeString(allow, "# test allow-list\nuppkg==1.0\ntampered\n");
        index = new PackageIndex(new PackageConfig(wheelhouse, upstream.simpleUrl(), allow, null), PackageIndexTest.FAST, PackageIndexTest.GATE);
        adapter = new IndexAdapter(index, decisions::add, true);
    }

    @AfterEach
    void tearDown() throws IOException {
        adapter.close();
        index.close();
        upstream.close();
    }

    @Test
    void installsAWheelhousePackage() throws Exception {
        Path target = dir.resolve("site");
        Result r = pipInstall(adapter, target, "whpkg");
        assertEquals(0, r.exit(), r.output());
        assertEquals("1.0", importVersion(target, "whpkg"));
    }

    @Test
    void installsOnlyThePinnedVersionOfAnAllowListedUpstreamPackage() throws Exception {
        Path target = dir.resolve("site");
        Result r = pipInstall(adapter, target, "uppkg");
        assertEquals(0, r.exit(), r.output());
        assertEquals("1.0", importVersion(target, "uppkg"));
        Result pinned = pipInstall(adapter, dir.resolve("site2"), "uppkg==2.0");
        assertNotEquals(0, pinned.exit(), pinned.output());
        assertTrue(pinned.output().contains("(from versions: 1.0)"), pinned.output());
        assertFalse(upstream.requests.contains("GET /packages/uppkg-2.0-py3-none-any.whl"));
    }

    @Test
    void aRefusedPackageFailsWithAMessageNamingThePolicy() throws Exception {
        Result r = pipInstall(adapter, dir.resolve("site"), "evil");
        System.out.println("--- pip install evil (proxy writes the policy as reason phrase)\n" + r.output());
        assertNotEquals(0, r.exit(), r.output());
        assertTrue(r.output().contains("403 Client Error: package 'evil' is not allowed by this server's package policy:"
                + " it is neither in the wheelhouse nor on the allow-list"), r.output());

        Result pinned = pipInstall(adapter, dir.resolve("site2"), "evil==1.0");
        System.out.println("--- pip install evil==1.0\n" + pinned.output());
        assertNotEquals(0, pinned.exit(), pinned.output());
        assertTrue(pinned.output().contains("evil==1.0") && pinned.output().contains("policy"), pinned.output());

        try (IndexAdapter plain = new IndexAdapter(index, decisions::add, false)) {
            Result standard = pipInstall(plain, dir.resolve("site3"), "evil");
            System.out.println("--- pip install evil (proxy writes the standard reason phrase)\n" + standard.output());
            assertNotEquals(0, standard.exit(), standard.output());
            assertTrue(standard.output().contains("evil") && standard.output().contains("policy"), standard.output());
        }
        assertTrue(decisions.stream().anyMatch(d -> d.host().equals("evil") && !d.allowed() && d.rule().equals("not-allowed")
                && d.kind().equals("package")));
    }

    @Test
    void aHashMismatchFromTheUpstreamFails() throws Exception {
        Path target = dir.resolve("site");
        Result r = pipInstall(adapter, target, "tampered");
        System.out.println("--- pip install tampered\n" + r.output());
        assertNotEquals(0, r.exit(), r.output());
        assertFalse(Files.exists(target.resolve("tampered")), "nothing may be installed");
        assertTrue(decisions.stream().anyMatch(d -> d.host().equals("tampered") && d.rule().equals("hash-mismatch")));
    }

    private Result pipInstall(IndexAdapter via, Path target, String requirement) throws Exception {
        List<String> cmd = List.of(PYTHON.toString(), "-m", "pip", "install", "--no-cache-dir", "--disable-pip-version-check",
                "--target", target.toString(), "--index-url", "http://127.0.0.1:" + via.port() + "/simple/", requirement);
        return run(cmd, null, dir.resolve("pip-" + System.nanoTime() + ".log"));
    }

    private String importVersion(Path target, String module) throws Exception {
        Result r = run(List.of(PYTHON.toString(), "-s", "-c", "import " + module + "; print(" + module + ".VERSION)"), target,
                dir.resolve("import-" + System.nanoTime() + ".log"));
        assertEquals(0, r.exit(), r.output());
        return r.output().strip();
    }

    /** Runs a process with no pip configuration, its output in {@code log}; kills it (by pid) on timeout. */
    private static Result run(List<String> cmd, Path pythonPath, Path log) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(new ArrayList<>(cmd)).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().keySet().removeIf(k -> k.startsWith("PIP_") || k.startsWith("PYTHON"));
        pb.environment().put("PIP_CONFIG_FILE", "/dev/null");
        pb.environment().put("PYTHONDONTWRITEBYTECODE", "1");
        if (pythonPath != null) pb.environment().put("PYTHONPATH", pythonPath.toString());
        Process p = pb.start();
        try {
            if (!p.waitFor(PROCESS_SECONDS, TimeUnit.SECONDS)) {
                fail(cmd + " did not finish within " + PROCESS_SECONDS + " s: " + Files.readString(log));
            }
            return new Result(p.exitValue(), Files.readString(log));
        } finally {
            if (p.isAlive()) {
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
                p.waitFor(10, TimeUnit.SECONDS);
            }
        }
    }
}
