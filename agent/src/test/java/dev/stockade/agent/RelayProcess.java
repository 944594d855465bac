package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * The real relay script started as a child of the test JVM, on a free loopback port, behind an
 * optional command prefix (e.g. setpriv). {@link #close()} stops it by its pid and deletes its dir.
 */
final class RelayProcess implements AutoCloseable {
    final Path dir;
    final Process process;
    final int port;

    private RelayProcess(Path dir, Process process, int port) {
        this.dir = dir;
        this.process = process;
        this.port = port;
    }

    static RelayProcess start(Path upstream, List<String> prefix, List<String> extraArgs) throws IOException {
        Path dir = Files.createTempDirectory("stockade-relay-test");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        AgentScript.writeSources(dir);
        Path script = dir.resolve("relay");
        int port = freePort();
        List<String> command = new ArrayList<>(prefix);
        command.addAll(List.of(AgentProcess.PYTHON, "-I", "-S", script.toString(),
                "--listen-port", String.valueOf(port), "--upstream", upstream.toString()));
        command.addAll(extraArgs);
        Process process = new ProcessBuilder(command)
                .redirectOutput(ProcessBuilder.Redirect.INHERIT)
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
        RelayProcess relay = new RelayProcess(dir, process, port);
        try {
            awaitListening(port, Duration.ofSeconds(10), process.toHandle());
        } catch (RuntimeException | Error e) {
            relay.close();
            throw e;
        }
        return relay;
    }

    /** A loopback port nobody listens on right now. */
    static int freePort() throws IOException {
        try (ServerSocket probe = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return probe.getLocalPort();
        }
    }

    /**
     * Waits until 127.0.0.1:port is in LISTEN state, read from /proc/net/tcp rather than by
     * connecting, which would hand a connection to the upstream.
     */
    static void awaitListening(int port, Duration max, ProcessHandle owner) {
        String needle = String.format(Locale.ROOT, " 0100007F:%04X 00000000:0000 0A ", port);
        long deadline = System.nanoTime() + max.toNanos();
        while (System.nanoTime() < deadline) {
            try {
                if (Files.readString(Path.of("/proc/net/tcp")).contains(needle)) {
                    return;
                }
            } catch (IOException e) {
                fail("cannot read /proc/net/tcp: " + e);
            }
            if (owner != null && !owner.isAlive()) {
                fail("the relay (pid " + owner.pid() + ") exited before listening on port " + port);
            }
            sleep(10);
        }
        fail("nothing listens on 127.0.0.1:" + port + " after " + max);
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    @Override
    public void close() throws IOException {
        ProcessHandle handle = process.toHandle(); // by pid, never by name
        handle.destroy();
        try {
            if (!process.waitFor(3, TimeUnit.SECONDS)) {
                handle.destroyForcibly();
                process.waitFor(3, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            handle.destroyForcibly();
        }
        AgentProcess.deleteTree(dir);
    }
}
