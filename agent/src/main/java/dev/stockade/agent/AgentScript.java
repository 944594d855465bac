package dev.stockade.agent;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;

/**
 * The agent program (src/main/python/stockade_agent.py), shipped in this jar. Runtimes copy
 * {@link #bytes()} into the sandbox (e.g. at {@link #SANDBOX_PATH}) and start it with
 * {@link #command(String, String)}; {@link #sha256()} lets them skip rewriting an unchanged copy.
 */
public final class AgentScript {
    /** Where the script lives on the classpath. */
    public static final String RESOURCE = "dev/stockade/agent/stockade_agent.py";
    /** The interpreter kernel of code contexts, which the agent starts from "kernel" next to itself. */
    public static final String KERNEL_RESOURCE = "dev/stockade/agent/stockade_kernel.py";
    /**
     * The egress relay, which the agent started with {@code --egress} runs from "relay" next to
     * itself: it carries loopback TCP connections (HTTP_PROXY) to the host's egress proxy socket.
     */
    public static final String RELAY_RESOURCE = "dev/stockade/agent/stockade_relay.py";
    /** Conventional location of the script inside a sandbox. */
    public static final String SANDBOX_PATH = "/opt/stockade/agent";
    /** Conventional location of the agent's socket inside a sandbox (its directory is bind-mounted). */
    public static final String SANDBOX_SOCKET = "/run/stockade/agent.sock";
    /** The interpreter: Debian's, which the default template binds read-only from the host. */
    public static final String PYTHON = "/usr/bin/python3";

    private static final byte[] BYTES = load(RESOURCE);
    private static final byte[] KERNEL_BYTES = load(KERNEL_RESOURCE);
    private static final byte[] RELAY_BYTES = load(RELAY_RESOURCE);
    private static final String SHA256 = HexFormat.of().formatHex(digest(BYTES, KERNEL_BYTES, RELAY_BYTES));

    private AgentScript() {}

    /**
     * Every program of the sandbox's /opt/stockade directory, by file name: the agent (its
     * entry point) and the programs it starts. A runtime installs them into one directory, compiled
     * to bytecode, and binds it read-only at /opt/stockade.
     */
    public static java.util.Map<String, byte[]> sandboxFiles() {
        return java.util.Map.of("agent", bytes(), "kernel", kernelBytes(), "relay", relayBytes());
    }

    /** The egress relay's content (a fresh copy): installed as "relay" beside the agent. */
    public static byte[] relayBytes() {
        return RELAY_BYTES.clone();
    }

    /** The kernel's content (a fresh copy): installed as "kernel" beside the agent. */
    public static byte[] kernelBytes() {
        return KERNEL_BYTES.clone();
    }

    /** The script's content (a fresh copy). */
    public static byte[] bytes() {
        return BYTES.clone();
    }

    /**
     * Lowercase hex SHA-256 over every file of {@link #sandboxFiles()} (each file's length, then its
     * content, in a fixed order): it changes whenever any of them does, so an install directory
     * named after it is never stale.
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

    private static byte[] load(String resource) {
        try (InputStream in = AgentScript.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("the agent script " + resource
                        + " is missing from the classpath: the stockade-agent jar was built without its resources");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the agent script " + resource, e);
        }
    }

    private static byte[] digest(byte[]... files) {
        try {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            for (byte[] file : files) {
                digest.update(java.nio.ByteBuffer.allocate(8).putLong(file.length).array());
                digest.update(file);
            }
            return digest.digest();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JDK", e);
        }
    }
}
