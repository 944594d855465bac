package dev.stockade.agent;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The agent's directory, shipped in this jar (from src/main/python): three entry programs
 * ("agent", "kernel", "relay") and the Python package {@code stockade_agent} they import.
 * The server calls {@link #install(Path)} once at start, on the thread that starts it, to lay the
 * directory out compiled to bytecode; runtimes bind it read-only at {@link #SANDBOX_DIR} and start the agent
 * with {@link #command(String, String)}. Tests lay it out as source with {@link #writeSources(Path)}.
 * {@link #sha256()} names a version of the directory, so an install named after it is never stale.
 */
public final class AgentScript {
    /** Where a runtime binds the agent's directory inside a sandbox (read-only). */
    public static final String SANDBOX_DIR = "/opt/stockade";
    /** The agent's entry program inside a sandbox. */
    public static final String SANDBOX_PATH = SANDBOX_DIR + "/agent";
    /** Conventional location of the agent's socket inside a sandbox (its directory is bind-mounted). */
    public static final String SANDBOX_SOCKET = "/run/stockade/agent.sock";
    /** The interpreter: Debian's, which the default template binds read-only from the host. */
    public static final String PYTHON = "/usr/bin/python3";

    /** Where the directory's files lie on the classpath (agent/pom.xml puts them there). */
    static final String RESOURCE_ROOT = "dev/stockade/agent/sandbox/";

    /**
     * Every file of the directory, by its path inside it, in a fixed order. Listed here because a
     * classpath cannot be listed; AgentScriptTest checks the list against src/main/python.
     */
    static final List<String> FILES = List.of(
            "agent", "kernel", "relay",
            "stockade_agent/__init__.py", "stockade_agent/shared.py",
            // the agent
            "stockade_agent/main.py", "stockade_agent/protocol.py", "stockade_agent/settings.py",
            "stockade_agent/children.py", "stockade_agent/credentials.py", "stockade_agent/processes.py",
            "stockade_agent/terminals.py",
            "stockade_agent/files.py", "stockade_agent/contexts.py", "stockade_agent/kernels.py",
            "stockade_agent/egress.py", "stockade_agent/watch.py",
            "stockade_agent/file_metadata.py",
            // the kernel and the relay
            "stockade_agent/kernel.py", "stockade_agent/kernel_events.py", "stockade_agent/kernel_charts.py",
            "stockade_agent/kernel_bash.py", "stockade_agent/kernel_js.py",
            "stockade_agent/relay.py", "stockade_agent/relay_identify.py");

    private static final Map<String, byte[]> SOURCES = load();
    private static final String SHA256 = HexFormat.of().formatHex(digest(SOURCES));

    /**
     * Compiles each (source, bytecode, name in tracebacks) triple of its arguments: unchecked-hash
     * bytecode, because no source lies beside it to compare with.
     */
    private static final String COMPILE = """
            import py_compile, sys
            args = sys.argv[1:]
            for i in range(0, len(args), 3):
                py_compile.compile(args[i], cfile=args[i + 1], dfile=args[i + 2], doraise=True,
                                   invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
            """;

    private AgentScript() {}

    /** Every file of the directory as source, by its path inside it, in a fixed order (fresh copies). */
    public static Map<String, byte[]> sandboxFiles() {
        Map<String, byte[]> copy = new LinkedHashMap<>();
        SOURCES.forEach((path, bytes) -> copy.put(path, bytes.clone()));
        return Collections.unmodifiableMap(copy);
    }

    /**
     * Lowercase hex SHA-256 over every file of {@link #sandboxFiles()} (each file's path, then its
     * content, each preceded by its length, in the fixed order): it changes whenever any of them
     * does, or is added, removed or renamed.
     */
    public static String sha256() {
        return SHA256;
    }

    /**
     * The agent's command line: {@code python3 -I -S script --socket socket}. {@code -I} ignores
     * PYTHON* variables and the user site; {@code -S} skips site, which saves start-up time.
     */
    public static List<String> command(String scriptPath, String socketPath) {
        return List.of(PYTHON, "-I", "-S", scriptPath, "--socket", socketPath);
    }

    /** Lays the directory out in {@code dir} as source, which python runs as it is (tests do). */
    public static void writeSources(Path dir) throws IOException {
        for (var file : SOURCES.entrySet()) {
            Path target = dir.resolve(file.getKey());
            Files.createDirectories(target.getParent());
            Files.write(target, file.getValue());
        }
    }

    /**
     * Lays the directory out in {@code dir} (which exists) as bytecode compiled by {@link #PYTHON},
     * the interpreter the sandboxes run, read-only: compiling the sources costs every sandbox
     * start otherwise. An entry program becomes bytecode under its own name (python recognises
     * bytecode by its magic number, so command lines stay {@code /opt/stockade/agent}); a module
     * of the package becomes NAME.pyc beside where its source would be, which python imports
     * without a source. One python process compiles them all.
     */
    public static void install(Path dir) throws IOException {
        List<String> command = new ArrayList<>(List.of(PYTHON, "-I", "-S", "-c", COMPILE));
        List<Path> sources = new ArrayList<>();
        List<Path> compiled = new ArrayList<>();
        for (var file : SOURCES.entrySet()) {
            String path = file.getKey();
            boolean module = path.endsWith(".py");
            Path source = dir.resolve(module ? path : path + ".py");
            Path bytecode = dir.resolve(module ? path + "c" : path);
            if (!source.getParent().equals(dir)) { // the package's directory: readable by the sandbox's users
                Files.createDirectories(source.getParent());
                Files.setPosixFilePermissions(source.getParent(), PosixFilePermissions.fromString("rwxr-xr-x"));
            }
            Files.write(source, file.getValue());
            sources.add(source);
            compiled.add(bytecode);
            command.addAll(List.of(source.toString(), bytecode.toString(), SANDBOX_DIR + "/" + path));
        }
        try {
            Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
            String text = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (p.waitFor() != 0) {
                throw new IOException("compiling the agent's programs with " + PYTHON + " failed: " + text.strip()
                        + ". Check that Python 3.10 or newer is installed at " + PYTHON);
            }
            for (Path bytecode : compiled) {
                Files.setPosixFilePermissions(bytecode, PosixFilePermissions.fromString("r--r--r--"));
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while compiling the agent's programs", e);
        } finally {
            for (Path source : sources) {
                Files.deleteIfExists(source);
            }
        }
    }

    private static Map<String, byte[]> load() {
        Map<String, byte[]> files = new LinkedHashMap<>();
        for (String path : FILES) {
            String resource = RESOURCE_ROOT + path;
            try (InputStream in = AgentScript.class.getClassLoader().getResourceAsStream(resource)) {
                if (in == null) {
                    throw new IllegalStateException("the agent's file " + resource
                            + " is missing from the classpath: the stockade-agent jar was built without its resources");
                }
                files.put(path, in.readAllBytes());
            } catch (IOException e) {
                throw new UncheckedIOException("cannot read the agent's file " + resource, e);
            }
        }
        return Collections.unmodifiableMap(files);
    }

    private static byte[] digest(Map<String, byte[]> files) {
        try {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            for (var file : files.entrySet()) {
                for (byte[] part : List.of(file.getKey().getBytes(StandardCharsets.UTF_8), file.getValue())) {
                    digest.update(ByteBuffer.allocate(8).putLong(part.length).array());
                    digest.update(part);
                }
            }
            return digest.digest();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JDK", e);
        }
    }
}
