package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.stockade.server.StockadeServer;
import dev.stockade.server.config.ServerConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * A real Stockade server for one test class, on an ephemeral loopback port, with its own data
 * directory. {@link #close} stops it and asserts that nothing it created is left on the host:
 * containers, mounts, cgroups, sandbox processes, state directories.
 */
final class TestServer implements AutoCloseable {
    static final String KEY = "e2b_" + "0123456789abcdef0123456789abcdef01234567";
    /** Host uids of sandboxes start at slot 32 of 65536-id ranges. */
    static final long FIRST_SANDBOX_UID = 32L * 65536;

    final Path dataDir;
    final StockadeServer server;
    final RawClient client;

    TestServer() {
        this(c -> c);
    }

    TestServer(java.util.function.UnaryOperator<ServerConfig> tweak) {
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

    String url() {
        return server.url().toString();
    }

    @Override
    public void close() {
        server.close();
        assertNoLeaks(dataDir);
        deleteTree(dataDir);
    }

    /** Removes a data directory the test made (after {@link #assertNoLeaks}: nothing is mounted there). */
    static void deleteTree(Path dir) {
        try (Stream<Path> s = Files.walk(dir)) {
            List<Path> all = new ArrayList<>(s.sorted(java.util.Comparator.reverseOrder()).toList());
            for (Path p : all) Files.deleteIfExists(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Everything a server with {@code dataDir} might have left behind, asserted absent. */
    static void assertNoLeaks(Path dataDir) {
        try {
            String mounts = Files.readString(Path.of("/proc/self/mountinfo"));
            assertEquals(List.of(), mounts.lines().filter(l -> l.contains(dataDir.toString())).toList(), "mounts left behind");
            Path sandboxes = dataDir.resolve("runtime/runc/sandboxes");
            if (Files.isDirectory(sandboxes)) {
                try (Stream<Path> s = Files.list(sandboxes)) {
                    assertEquals(List.of(), s.toList(), "sandbox state directories left behind");
                }
            }
            Path egress = dataDir.resolve("egress");
            if (Files.isDirectory(egress)) {
                try (Stream<Path> s = Files.list(egress)) {
                    assertEquals(List.of(), s.toList(), "egress sockets left behind");
                }
            }
            // Containers whose bundle lies under this server's data directory (other servers may run
            // on a developer's machine at the same time; CI runs one).
            List<String> containers = new ArrayList<>();
            List<String> foreign = new ArrayList<>();
            Process p = new ProcessBuilder("runc", "list", "--format", "json").redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            p.waitFor();
            if (!out.isBlank() && out.strip().startsWith("[")) {
                for (var c : RawClient.JSON.readTree(out)) {
                    String id = c.path("id").asText();
                    if (c.path("bundle").asText("").startsWith(dataDir.toString())) containers.add(id);
                    else foreign.add(id);
                }
            }
            assertEquals(List.of(), containers, "runc containers left behind");
            for (String ctl : List.of("memory", "pids", "cpu", "freezer")) {
                Path root = Path.of("/sys/fs/cgroup", ctl);
                if (!Files.isDirectory(root)) continue;
                try (Stream<Path> s = Files.list(root)) {
                    assertEquals(List.of(), s.filter(d -> d.getFileName().toString().startsWith("stockade-"))
                                    .filter(d -> !foreign.contains(d.getFileName().toString())).toList(),
                            "cgroups left behind in " + ctl);
                }
            }
            // Processes of a killed pid namespace may take a moment to be reaped by the kernel.
            List<String> procs = sandboxProcesses(foreign);
            for (int i = 0; i < 50 && !procs.isEmpty(); i++) {
                Thread.sleep(100);
                procs = sandboxProcesses(foreign);
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
     * Host processes running as a sandbox uid, except those in the cgroups of {@code foreign}
     * containers (other servers' live sandboxes, on a developer's machine).
     */
    static List<String> sandboxProcesses(List<String> foreign) throws IOException {
        return processesWithUids(FIRST_SANDBOX_UID, 0xFFFF_FFFEL, foreign);
    }

    /** Host processes whose real uid lies in [from, to), outside the cgroups of {@code foreign} containers. */
    static List<String> processesWithUids(long from, long to, List<String> foreign) throws IOException {
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
