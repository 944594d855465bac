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
import dev.stockade.runtime.SandboxRuntime;
import dev.stockade.runtime.SandboxSpec;
import dev.stockade.runtime.Template;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A custom template's read-only layers under runc sandboxes (issue 17): two layers built in the
 * test's temp dir with canonical owners, mounted idmapped under two sandboxes at once whose init is
 * a probe (probe_layers.py) reporting what it sees and what it may change.
 */
class RuncLayersTest {
    private static final Limits LIMITS = new Limits(256, 1, 64, 32, 16, 60);
    /** Host uid ranges of their own (other tests use 3 000 000 000 and 3 900 065 536+). */
    private static final long UID_BASE = 3_800_065_536L;

    @TempDir
    Path tmp;

    SandboxRuntime runtime;
    Path stateRoot;
    Path agentDir;
    Path top;
    Path bottom;

    @BeforeEach
    void setUp() throws IOException {
        RuntimeProvider.Availability a = new RuncProvider().probe();
        assumeTrue(a.available(), "runc unavailable: " + a.reason());
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwx--x--x"));
        stateRoot = tmp.resolve("state");
        runtime = new RuncProvider().create(stateRoot);
        agentDir = tmp.resolve("agentdir");
        Files.createDirectories(agentDir);
        Files.setPosixFilePermissions(agentDir, PosixFilePermissions.fromString("rwxr-xr-x"));
        try (InputStream in = getClass().getResourceAsStream("/probe_layers.py")) {
            Files.copy(in, agentDir.resolve("agent"));
        }
        // The bottom layer: a root file, a setuid-root file, the user's directory, a file that
        // shadows the default template's /etc/hostname, files the top layer shadows and deletes.
        bottom = tmp.resolve("bottom");
        dir(bottom, 0, "rwxr-xr-x");
        dir(bottom.resolve("opt"), 0, "rwxr-xr-x");
        dir(bottom.resolve("opt/app"), 0, "rwxr-xr-x");
        file(bottom.resolve("opt/app/rootfile"), "root-data\n", 0, "rw-r--r--");
        file(bottom.resolve("opt/app/suid"), "#!/bin/sh\n", 0, "rwxr-xr-x");
        Files.setAttribute(bottom.resolve("opt/app/suid"), "unix:mode", 04755);
        file(bottom.resolve("opt/app/shadowed"), "bottom\n", 0, "rw-r--r--");
        file(bottom.resolve("opt/app/gone"), "bottom\n", 0, "rw-r--r--");
        file(bottom.resolve("opt/app/bottom-only"), "bottom\n", 0, "rw-r--r--");
        dir(bottom.resolve("srv"), 0, "rwxr-xr-x");
        dir(bottom.resolve("srv/data"), 1000, "rwxr-xr-x");
        file(bottom.resolve("srv/data/f"), "mine\n", 1000, "rw-r--r--");
        dir(bottom.resolve("etc"), 0, "rwxr-xr-x");
        file(bottom.resolve("etc/hostname"), "layered\n", 0, "rw-r--r--");
        // The top layer: shadows one file of the bottom one and deletes another (overlay's whiteout,
        // as a layer made from a sandbox's upper directory holds them).
        top = tmp.resolve("top");
        dir(top, 0, "rwxr-xr-x");
        dir(top.resolve("opt"), 0, "rwxr-xr-x");
        dir(top.resolve("opt/app"), 0, "rwxr-xr-x");
        file(top.resolve("opt/app/shadowed"), "top\n", 0, "rw-r--r--");
        HostCommand.Result r = HostCommand.run(List.of("mknod", top.resolve("opt/app/gone").toString(), "c", "0", "0"),
                java.time.Duration.ofSeconds(10));
        assertTrue(r.ok(), r.output());
    }

    @AfterEach
    void tearDown() {
        if (runtime != null) {
            runtime.reapExcept(Set.of());
            runtime.close();
        }
    }

    /**
     * Inside, owners are the sandbox's root and user, the shadowing files win (top layer over bottom
     * over the default template), the whiteout hides; root changes the root file (copied up to its
     * own disk), the user cannot but writes in its own directory. Two sandboxes on the same layers at
     * once see only their own changes; the layers on the host do not change by a byte; destroy
     * leaves no mount and no helper process, and close no user namespace descriptor.
     */
    @Test
    void layersAreSharedIdmappedReadOnlyAndCopiedUpPerSandbox() throws Exception {
        sharedLayers();
    }

    /** The same under gVisor: its gofer serves the overlay whose lower layers are idmapped mounts. */
    @Test
    void runscSeesTheLayersAsRuncDoes() throws Exception {
        RuntimeProvider.Availability a = new RunscProvider().probe();
        assumeTrue(a.available(), "runsc unavailable: " + a.reason());
        runtime = new RunscProvider().create(tmp.resolve("runsc-state"));
        stateRoot = tmp.resolve("runsc-state");
        sharedLayers();
    }

    private void sharedLayers() throws Exception {
        String before = digest(top) + digest(bottom);
        Template template = layered(List.of(top, bottom));
        SandboxSpec a = spec(0, template);
        SandboxSpec b = spec(1, template);
        runtime.start(a);
        runtime.start(b);
        JsonNode ra = report(a, "first.json");
        JsonNode rb = report(b, "first.json");
        for (JsonNode r : List.of(ra, rb)) {
            assertEquals(0, r.at("/rootfile/uid").asInt(), r.toString());
            assertEquals(0, r.at("/rootfile/gid").asInt(), r.toString());
            assertEquals(0644, r.at("/rootfile/mode").asInt(), r.toString());
            assertEquals(0, r.at("/suid/uid").asInt(), r.toString());
            assertEquals(04755, r.at("/suid/mode").asInt(), "the setuid bit is kept: " + r);
            assertEquals(1000, r.at("/userdir/uid").asInt(), r.toString());
            assertEquals(1000, r.at("/userdir/gid").asInt(), r.toString());
            assertEquals(1000, r.at("/userfile/uid").asInt(), r.toString());
            assertEquals("layered\n", r.get("hostname").asText(), "a layer's file shadows the default template's");
            assertEquals("top\n", r.get("shadowed").asText(), "the top layer wins");
            assertFalse(r.get("gone").asBoolean(), "the top layer's whiteout hides the bottom's file");
            assertEquals("bottom\n", r.get("bottom_only").asText());
            assertEquals("13", r.get("user_appends_rootfile").asText(), "EACCES for the user: " + r);
            assertEquals("ok", r.get("user_writes_own_dir").asText(), r.toString());
            assertEquals("ok", r.get("user_appends_own_file").asText(), r.toString());
            assertEquals("ok", r.get("root_appends_rootfile").asText(), r.toString());
            assertEquals(0, r.at("/rootfile_after/uid").asInt(), "copied up with its owner: " + r);
        }
        // Both have written: each sees its own change only.
        for (SandboxSpec s : List.of(a, b)) Files.writeString(s.stateDir().resolve("disk/run/go"), "");
        String tokenA = ra.get("token").asText();
        String tokenB = rb.get("token").asText();
        JsonNode sa = report(a, "second.json");
        JsonNode sb = report(b, "second.json");
        assertEquals("root-data\n" + tokenA + "\n", sa.get("rootfile").asText());
        assertEquals("root-data\n" + tokenB + "\n", sb.get("rootfile").asText());
        assertEquals("mine\nuser " + tokenA + "\n", sa.get("userfile").asText());
        assertEquals("mine\nuser " + tokenB + "\n", sb.get("userfile").asText());
        // The copy-up is on the sandbox's own disk, owned within its uid range.
        Path copied = a.stateDir().resolve("disk/upper/opt/app/rootfile");
        assertEquals(a.uidBase(), Integer.toUnsignedLong((Integer) Files.getAttribute(copied, "unix:uid", LinkOption.NOFOLLOW_LINKS)));
        assertEquals(2, LayerMounts.mounted(new BundleLayout(a.stateDir())).size(), "two layer mounts");

        runtime.destroy(a.id());
        runtime.destroy(b.id());
        String mountinfo = Files.readString(Path.of("/proc/self/mountinfo"));
        assertFalse(mountinfo.contains(stateRoot.toString()), "no mount left under the state root");
        assertFalse(Files.exists(a.stateDir()) || Files.exists(b.stateDir()), "state directories removed");
        assertEquals(before, digest(top) + digest(bottom), "the layers on the host are unchanged");
        assertEquals(List.of(), helpers(), "no user-namespace helper left");
        runtime.close();
        assertEquals(0, userNamespaceDescriptors(), "close closes the cached namespaces");
    }

    /** A start that fails after mounting the layers (a missing layer further down) unmounts those mounted. */
    @Test
    void aFailedStartUnmountsTheLayersItMounted() throws Exception {
        Template template = layered(List.of(top, tmp.resolve("missing")));
        SandboxSpec s = spec(2, template);
        var failure = assertThrows(RuntimeFailure.class, () -> runtime.start(s));
        assertTrue(failure.getMessage().contains("layer 1 of template layered"), failure.getMessage());
        assertFalse(failure.getMessage().contains(tmp.toString()), "no host path: " + failure.getMessage());
        assertFalse(Files.readString(Path.of("/proc/self/mountinfo")).contains(stateRoot.toString()), "no mount left");
        assertFalse(Files.exists(s.stateDir()));
        assertEquals(List.of(), helpers());
    }

    /**
     * Where idmapped mounts are refused (here: a layer on sysfs, which does not support them, as an
     * old kernel refuses them everywhere) the start fails UNAVAILABLE naming the need, with no host
     * path, and leaves nothing.
     */
    @Test
    void aLayerThatCannotBeIdmappedFailsTheStartNamingTheNeed() throws Exception {
        SandboxSpec s = spec(4, layered(List.of(top, Path.of("/sys/kernel"))));
        var failure = assertThrows(RuntimeFailure.class, () -> runtime.start(s));
        assertEquals(RuntimeFailure.Code.UNAVAILABLE, failure.code(), failure.getMessage());
        assertTrue(failure.getMessage().contains("idmapped mounts") && failure.getMessage().contains("Linux >= 5.19"),
                failure.getMessage());
        assertFalse(failure.getMessage().contains("/sys") || failure.getMessage().contains(tmp.toString()), failure.getMessage());
        assertFalse(Files.readString(Path.of("/proc/self/mountinfo")).contains(stateRoot.toString()), "no mount left");
        assertFalse(Files.exists(s.stateDir()));
    }

    /** After a crash, a new runtime's reaper unmounts the layers of the sandboxes it removes. */
    @Test
    void theReaperUnmountsLayersLeftByACrashedServer() throws Exception {
        SandboxSpec s = spec(5, layered(List.of(top, bottom)));
        runtime.start(s);
        assertEquals(2, LayerMounts.mounted(new BundleLayout(s.stateDir())).size());
        runtime.close(); // the crashed server's runtime: its sandbox and mounts stay
        runtime = new RuncProvider().create(stateRoot);
        assertEquals(Set.of(s.id()), runtime.reapExcept(Set.of()));
        assertFalse(Files.readString(Path.of("/proc/self/mountinfo")).contains(stateRoot.toString()), "no mount left");
        assertFalse(Files.exists(s.stateDir()));
    }

    /** Layer-less sandboxes (the default template) make no user namespace at all. */
    @Test
    void theDefaultTemplateMakesNoUserNamespace() throws Exception {
        SandboxSpec s = spec(3, runtime.defaultTemplate());
        runtime.start(s);
        assertEquals(List.of(), LayerMounts.mounted(new BundleLayout(s.stateDir())));
        assertEquals(0, ((OciRuntime) runtime).cachedUserNamespaces());
        runtime.destroy(s.id());
    }

    /** Overlay's options hold a page: too many layers under a deep state directory are refused before any mount. */
    @Test
    void overlayOptionsPastAPageAreRefused() {
        Template many = new Template("many", Path.of("/nonexistent"), List.of(),
                java.util.Collections.nCopies(Template.MAX_LAYERS, top));
        BundleLayout deep = new BundleLayout(Path.of("/" + "d".repeat(100)));
        var failure = assertThrows(RuntimeFailure.class,
                () -> LayerMounts.checkLength("lowerdir=" + LayerMounts.lowerdir(many, deep), many));
        assertTrue(failure.getMessage().contains("64 layers"), failure.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Template("x", top, List.of(),
                java.util.Collections.nCopies(Template.MAX_LAYERS + 1, top)));
        assertThrows(IllegalArgumentException.class, () -> new Template("x", top, List.of(), List.of(Path.of("rel"))));
    }

    private Template layered(List<Path> layers) {
        Template d = runtime.defaultTemplate();
        return new Template("layered", d.lowerDir(), d.readOnlyBinds(), layers);
    }

    private SandboxSpec spec(int index, Template template) {
        String id = "l" + Long.toHexString(System.nanoTime());
        return new SandboxSpec(id, UID_BASE + 65536L * index, stateRoot.resolve("sandboxes").resolve(id), template,
                agentDir, LIMITS);
    }

    private static JsonNode report(SandboxSpec s, String name) throws Exception {
        Path report = s.stateDir().resolve("disk/run").resolve(name);
        long deadline = System.currentTimeMillis() + 15_000;
        while (!Files.exists(report) && System.currentTimeMillis() < deadline) Thread.sleep(20);
        assertTrue(Files.exists(report), "no report " + name + "; agent log: "
                + OciRuntime.tail(s.stateDir().resolve("disk/agent.log")));
        return new ObjectMapper().readTree(report.toFile());
    }

    /** Every entry's path, type, mode, owners, times and content. */
    private static String digest(Path root) throws Exception {
        MessageDigest md = MessageDigest.getInstance("SHA-256");
        try (var all = Files.walk(root)) {
            for (Path p : all.sorted().toList()) {
                var attrs = Files.readAttributes(p, "unix:mode,uid,gid,lastModifiedTime,ctime,size", LinkOption.NOFOLLOW_LINKS);
                md.update((root.relativize(p) + " " + new java.util.TreeMap<>(attrs) + "\n").getBytes());
                if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) md.update(Files.readAllBytes(p));
            }
        }
        return HexFormat.of().formatHex(md.digest());
    }

    /** This JVM's child processes that are user-namespace helpers. */
    private static List<String> helpers() {
        return ProcessHandle.current().children()
                .map(p -> p.pid() + " " + p.info().commandLine().orElse(""))
                .filter(c -> c.contains("unshare") || c.contains("read _"))
                .toList();
    }

    private static long userNamespaceDescriptors() throws IOException {
        try (var fds = Files.list(Path.of("/proc/self/fd"))) {
            return fds.filter(fd -> {
                try {
                    return Files.readSymbolicLink(fd).toString().startsWith("user:[");
                } catch (IOException gone) {
                    return false;
                }
            }).count();
        }
    }

    private static void dir(Path p, int owner, String perms) throws IOException {
        Files.createDirectories(p);
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString(perms));
        Files.setAttribute(p, "unix:uid", owner);
        Files.setAttribute(p, "unix:gid", owner);
    }

    private static void file(Path p, String content, int owner, String perms) throws IOException {
        Files.writeString(p, content);
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString(perms));
        Files.setAttribute(p, "unix:uid", owner);
        Files.setAttribute(p, "unix:gid", owner);
    }
}
