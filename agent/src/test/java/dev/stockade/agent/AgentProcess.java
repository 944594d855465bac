package dev.stockade.agent;

import dev.stockade.protocol.link.AgentClient;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * The real agent script, started as a child of the test JVM (not as init, not in a container):
 * extracted from the classpath into a temp dir, with the homes of "user" and "root" under it.
 * As root (CI), processes of "user" really run as uid 1000; otherwise --no-switch-user runs them
 * as the test's own uid. {@link #close()} stops the agent by its pid and deletes the temp dir.
 */
final class AgentProcess implements AutoCloseable {
    static final String PYTHON = "/usr/bin/python3";
    static final boolean ROOT = "root".equals(System.getProperty("user.name"));

    final Path dir;
    final Path socket;
    final Path userHome;
    final Path rootHome;
    final Process process;
    final AgentClient client;
    /** From starting python to the first answered hello. */
    final Duration startup;

    private AgentProcess(Path dir, Path socket, Path userHome, Path rootHome, Process process, Duration startup) {
        this.dir = dir;
        this.socket = socket;
        this.userHome = userHome;
        this.rootHome = rootHome;
        this.process = process;
        this.client = AgentClient.unix(socket);
        this.startup = startup;
    }

    static AgentProcess start() throws IOException {
        return start(Map.of());
    }

    static AgentProcess start(Map<String, String> agentEnv) throws IOException {
        return start(agentEnv, List.of(), List.of());
    }

    /**
     * Starts the agent behind {@code prefix} (e.g. unshare, or a shell that enters a cgroup and
     * execs the rest), with {@code extraArgs} after the standard ones.
     */
    static AgentProcess start(Map<String, String> agentEnv, List<String> prefix, List<String> extraArgs)
            throws IOException {
        Path dir = Files.createTempDirectory("stockade-agent-test");
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
        AgentScript.writeSources(dir); // the agent, and the kernel and relay it starts from its directory
        Path script = dir.resolve("agent");
        Path userHome = Files.createDirectories(dir.resolve("home/user"));
        Path rootHome = Files.createDirectories(dir.resolve("root"));
        if (ROOT) {
            Files.setAttribute(userHome, "unix:uid", 1000);
            Files.setAttribute(userHome, "unix:gid", 1000);
        }
        Path socket = dir.resolve("run/agent.sock");
        List<String> command = new ArrayList<>(prefix);
        command.addAll(List.of(PYTHON, "-I", "-S", script.toString(),
                "--socket", socket.toString(), "--home", "user=" + userHome, "--home", "root=" + rootHome));
        if (!ROOT) {
            command.add("--no-switch-user");
        }
        command.addAll(extraArgs);
        ProcessBuilder builder = new ProcessBuilder(command)
                .redirectOutput(ProcessBuilder.Redirect.INHERIT)
                .redirectError(ProcessBuilder.Redirect.INHERIT);
        builder.environment().putAll(agentEnv);
        long start = System.nanoTime();
        Process process = builder.start();
        try {
            AgentClient.unix(socket).hello(Duration.ofSeconds(10));
        } catch (RuntimeException e) {
            process.destroyForcibly();
            deleteTree(dir);
            throw e;
        }
        Duration startup = Duration.ofNanos(System.nanoTime() - start);
        return new AgentProcess(dir, socket, userHome, rootHome, process, startup);
    }

    @Override
    public void close() throws IOException {
        ProcessHandle handle = process.toHandle(); // by pid, never by name
        handle.destroy();                            // SIGTERM: the agent kills its process groups
        try {
            if (!process.waitFor(500, TimeUnit.MILLISECONDS)) {
                // A wrapper that ignores SIGTERM (unshare --fork): stop the agent under it, by pid.
                handle.children().forEach(ProcessHandle::destroy);
            }
            if (!process.waitFor(3, TimeUnit.SECONDS)) {
                handle.destroyForcibly();
                process.waitFor(3, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            handle.destroyForcibly();
        }
        deleteTree(dir);
    }

    static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> paths = Files.walk(dir)) {
            for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
