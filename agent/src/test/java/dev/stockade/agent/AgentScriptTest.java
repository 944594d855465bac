package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

class AgentScriptTest {
    @Test
    void theJarCarriesTheScript() throws Exception {
        byte[] bytes = AgentScript.bytes();
        Path source = Path.of("src/main/python/stockade_agent.py");
        if (Files.exists(source)) {
            assertArrayEquals(Files.readAllBytes(source), bytes);
        }
        Path kernelSource = Path.of("src/main/python/stockade_kernel.py");
        if (Files.exists(kernelSource)) {
            assertArrayEquals(Files.readAllBytes(kernelSource), AgentScript.kernelBytes());
        }
        Path relaySource = Path.of("src/main/python/stockade_relay.py");
        if (Files.exists(relaySource)) {
            assertArrayEquals(Files.readAllBytes(relaySource), AgentScript.relayBytes());
        }
        assertEquals(java.util.Set.of("agent", "kernel", "relay"), AgentScript.sandboxFiles().keySet());
        MessageDigest digest = MessageDigest.getInstance("SHA-256");
        for (byte[] file : List.of(bytes, AgentScript.kernelBytes(), AgentScript.relayBytes())) {
            digest.update(java.nio.ByteBuffer.allocate(8).putLong(file.length).array());
            digest.update(file);
        }
        assertEquals(HexFormat.of().formatHex(digest.digest()), AgentScript.sha256());
        assertTrue(new String(bytes, java.nio.charset.StandardCharsets.UTF_8).contains("def main("));
        assertEquals(List.of("/usr/bin/python3", "-I", "-S", "/opt/stockade/agent", "--socket", "/run/stockade/agent.sock"),
                AgentScript.command(AgentScript.SANDBOX_PATH, AgentScript.SANDBOX_SOCKET));
    }

    @Test
    void theSocketIsOnlyForItsOwner() throws IOException {
        try (AgentProcess agent = AgentProcess.start()) {
            assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(
                    Files.getPosixFilePermissions(agent.socket)));
            assertEquals("rwx------", java.nio.file.attribute.PosixFilePermissions.toString(
                    Files.getPosixFilePermissions(agent.socket.getParent())));
        }
    }

    @Test
    void refusesToStartWithoutItsArguments() throws Exception {
        Path dir = Files.createTempDirectory("stockade-agent-args");
        try {
            Path script = dir.resolve("agent.py");
            Files.write(script, AgentScript.bytes());
            Process p = new ProcessBuilder(AgentProcess.PYTHON, "-I", "-S", script.toString(), "--bogus")
                    .redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            assertEquals(1, p.waitFor());
            assertTrue(out.contains("usage:"), out);
        } finally {
            AgentProcess.deleteTree(dir);
        }
    }
}
