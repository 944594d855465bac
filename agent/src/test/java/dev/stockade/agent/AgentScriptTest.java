package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

class AgentScriptTest {
    private static final Path SOURCES = Path.of("src/main/python");

    @Test
    void theJarCarriesEveryFileOfTheAgentsDirectory() throws Exception {
        Map<String, byte[]> files = AgentScript.sandboxFiles();
        assertEquals(AgentScript.FILES, List.copyOf(files.keySet()));
        if (Files.isDirectory(SOURCES)) { // in the module's build: the list misses no file and adds none
            Map<String, byte[]> tree = new TreeMap<>();
            try (Stream<Path> paths = Files.walk(SOURCES)) {
                for (Path p : paths.filter(Files::isRegularFile).toList()) {
                    String path = SOURCES.relativize(p).toString();
                    if (!path.contains("__pycache__")) tree.put(path, Files.readAllBytes(p));
                }
            }
            assertEquals(tree.keySet(), new TreeSet<>(files.keySet()));
            tree.forEach((path, bytes) -> assertArrayEquals(bytes, files.get(path), path));
        }
        MessageDigest digest = MessageDigest.getInstance("SHA-256");
        for (var file : files.entrySet()) {
            for (byte[] part : List.of(file.getKey().getBytes(StandardCharsets.UTF_8), file.getValue())) {
                digest.update(java.nio.ByteBuffer.allocate(8).putLong(part.length).array());
                digest.update(part);
            }
        }
        assertEquals(HexFormat.of().formatHex(digest.digest()), AgentScript.sha256());
        assertEquals(List.of("/usr/bin/python3", "-I", "-S", "/opt/stockade/agent", "--socket", "/run/stockade/agent.sock"),
                AgentScript.command(AgentScript.SANDBOX_PATH, AgentScript.SANDBOX_SOCKET));
    }

    /**
     * What the server binds into sandboxes: bytecode only, read-only, the entry programs under
     * their own names, and it runs.
     */
    @Test
    void theInstalledDirectoryIsBytecodeThatRuns() throws Exception {
        Path dir = Files.createTempDirectory("stockade-agent-install");
        try {
            AgentScript.install(dir);
            Set<String> installed = new TreeSet<>();
            try (Stream<Path> paths = Files.walk(dir)) {
                for (Path p : paths.filter(Files::isRegularFile).toList()) {
                    installed.add(dir.relativize(p).toString());
                    assertArrayEquals(PYC_MAGIC, Arrays.copyOf(Files.readAllBytes(p), 4), p + " is bytecode of " + AgentScript.PYTHON);
                    assertEquals("r--r--r--", PosixFilePermissions.toString(Files.getPosixFilePermissions(p)), p.toString());
                }
            }
            Set<String> expected = new TreeSet<>();
            for (String path : AgentScript.FILES) expected.add(path.endsWith(".py") ? path + "c" : path);
            assertEquals(expected, installed);
            assertEquals("rwxr-xr-x", PosixFilePermissions.toString(
                    Files.getPosixFilePermissions(dir.resolve("stockade_agent"))));
            String out = run(AgentProcess.PYTHON, "-I", "-S", dir.resolve("agent").toString(), "--bogus");
            assertTrue(out.contains("usage:"), out);
        } finally {
            AgentProcess.deleteTree(dir);
        }
    }

    /**
     * Start-up is on the create path: before its socket listens, the agent imports builtin (and
     * frozen) modules only, and of its own package not the modules of the operations, which the
     * warm-up thread imports once it listens.
     */
    @Test
    void startUpImportsNoMoreThanItNeeds() throws Exception {
        Path dir = Files.createTempDirectory("stockade-agent-imports");
        try {
            AgentScript.install(dir);
            String out = run(AgentProcess.PYTHON, "-I", "-S", "-c", """
                    import sys
                    before = set(sys.modules)
                    sys.path.insert(0, sys.argv[1])
                    import stockade_agent.main
                    print(" ".join(sorted(set(sys.modules) - before)))
                    """, dir.toString());
            Set<String> imported = new TreeSet<>(List.of(out.strip().split(" ")));
            Set<String> standard = new TreeSet<>(imported);
            standard.removeIf(name -> name.startsWith("stockade_agent"));
            assertTrue(Set.of("os", "os.path", "posixpath", "genericpath", "stat", "_stat", "_collections_abc",
                    "select", "_socket", "_signal", "_thread").containsAll(standard), "imported at start-up: " + imported);
            for (String operations : List.of("processes", "files", "contexts", "kernels", "credentials", "children")) {
                assertFalse(imported.contains("stockade_agent." + operations), "imported at start-up: " + imported);
            }
            assertTrue(imported.contains("stockade_agent.protocol"), out);
        } finally {
            AgentProcess.deleteTree(dir);
        }
    }

    @Test
    void theSocketIsOnlyForItsOwner() throws IOException {
        try (AgentProcess agent = AgentProcess.start()) {
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(agent.socket)));
            assertEquals("rwx------", PosixFilePermissions.toString(
                    Files.getPosixFilePermissions(agent.socket.getParent())));
        }
    }

    @Test
    void refusesToStartWithoutItsArguments() throws Exception {
        Path dir = Files.createTempDirectory("stockade-agent-args");
        try {
            AgentScript.writeSources(dir);
            Process p = new ProcessBuilder(AgentProcess.PYTHON, "-I", "-S", dir.resolve("agent").toString(), "--bogus")
                    .redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            assertEquals(1, p.waitFor());
            assertTrue(out.contains("usage:"), out);
        } finally {
            AgentProcess.deleteTree(dir);
        }
    }

    /** The magic number of this interpreter's bytecode, as the first four bytes of a pyc. */
    private static final byte[] PYC_MAGIC = HexFormat.of().parseHex(
            run(AgentProcess.PYTHON, "-I", "-S", "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())")
                    .strip());

    /** Runs a command to its end; returns its output (stdout and stderr). */
    private static String run(String... command) {
        try {
            Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            p.waitFor();
            return out;
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }
}
