package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.stockade.protocol.AgentEvent;
import dev.stockade.protocol.AgentException;
import dev.stockade.protocol.ExecRequest;
import dev.stockade.protocol.ExecuteCell;
import dev.stockade.protocol.Outcome;
import dev.stockade.protocol.ProcessInfo;
import java.io.IOException;
import java.net.InetAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The agent started with --egress: the relay it runs beside itself (out of ps, restarted, stopped
 * with it) and the proxy variables every process and kernel gets.
 */
class AgentEgressTest {
    private static final Duration MAX = Duration.ofSeconds(10);
    private static final List<String> CA_VARIABLES =
            List.of("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT", "NODE_EXTRA_CA_CERTS");

    private Path dir;
    private FakeUpstream upstream;
    private int port;
    private AgentProcess agent;

    @BeforeEach
    void start() throws IOException {
        dir = Files.createTempDirectory("stockade-egress-test");
        upstream = FakeUpstream.start(dir.resolve("egress.sock"));
        port = RelayProcess.freePort();
        agent = AgentProcess.start(Map.of(), List.of(),
                List.of("--egress", upstream.path.toString(), "--egress-port", String.valueOf(port)));
        RelayProcess.awaitListening(port, MAX, null);
    }

    @AfterEach
    void stop() throws IOException {
        if (agent != null) {
            agent.close();
        }
        upstream.close();
        AgentProcess.deleteTree(dir);
    }

    private Map<String, String> envOf(Map<String, String> requestEnv) {
        Events events = Events.collect(agent.client.exec(
                new ExecRequest(List.of("env"), requestEnv, null, "user", false, 0, 0, null)), MAX);
        assertEquals(0, events.ended().exitCode());
        Map<String, String> env = new HashMap<>();
        for (String line : new String(events.stdout(), StandardCharsets.UTF_8).split("\n")) {
            int eq = line.indexOf('=');
            if (eq > 0) {
                env.put(line.substring(0, eq), line.substring(eq + 1));
            }
        }
        return env;
    }

    @Test
    void processesGetTheProxyAndTheirOwnVariablesWin() throws IOException {
        String proxy = "http://127.0.0.1:" + port;
        Map<String, String> env = envOf(Map.of());
        for (String name : List.of("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")) {
            assertEquals(proxy, env.get(name), name);
        }
        assertEquals("localhost,127.0.0.1,::1", env.get("NO_PROXY"));
        assertEquals("localhost,127.0.0.1,::1", env.get("no_proxy"));
        for (String name : CA_VARIABLES) {
            assertNull(env.get(name), name + " without a CA bundle beside the agent");
        }

        Path bundle = agent.dir.resolve("ca-bundle.pem");
        Files.writeString(bundle, "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n");
        env = envOf(Map.of("HTTPS_PROXY", "http://proxy.example:3128", "NO_PROXY", "*", "PIP_CERT", "/mine.pem"));
        assertEquals("http://proxy.example:3128", env.get("HTTPS_PROXY"), "the request's own value wins");
        assertEquals("*", env.get("NO_PROXY"));
        assertEquals("/mine.pem", env.get("PIP_CERT"));
        assertEquals(proxy, env.get("HTTP_PROXY"));
        for (String name : List.of("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS")) {
            assertEquals(bundle.toString(), env.get(name), name);
        }
        // The request's variables are what ps reports: the agent's additions are not.
        assertFalse(agent.client.listProcesses().stream().anyMatch(p -> p.env().containsKey("HTTP_PROXY")));
    }

    @Test
    void codeContextsGetTheProxyToo() {
        CellRun run = CellRun.collect(agent.client.execute(ExecuteCell.of(
                "import os\nprint(os.environ.get('HTTPS_PROXY'), os.environ.get('NO_PROXY'))")), Duration.ofSeconds(60));
        assertEquals(Outcome.OK, run.end().outcome(), run.toString());
        assertEquals("http://127.0.0.1:" + port + " localhost,127.0.0.1,::1\n", run.stdout());
        CellRun own = CellRun.collect(agent.client.execute(new ExecuteCell(null,
                "import os\nprint(os.environ.get('HTTPS_PROXY'))", Map.of("HTTPS_PROXY", "http://mine:1"), 0, 0)),
                Duration.ofSeconds(60));
        assertEquals("http://mine:1\n", own.stdout(), own.toString());
    }

    @Test
    void aUserProcessReachesTheUpstreamNamedByPidAndUid() throws IOException {
        Proc stream = Proc.of(agent.client.exec(new ExecRequest(List.of(AgentProcess.PYTHON, "-I", "-S", "-c",
                RelayTest.PYTHON_CLIENT, "127.0.0.1", String.valueOf(port)), Map.of(), null, "user", false, 0, 0, null)));
        assertTrue(stream.next(MAX).orElseThrow() instanceof AgentEvent.Started);
        int uid = AgentProcess.ROOT ? 1000 : RelayTest.uidOfThisProcess();
        try (FakeUpstream.Connection up = upstream.next(MAX)) {
            assertEquals("STOCKADE-RELAY 1 pid=" + stream.pid() + " uid=" + uid, up.preamble());
            assertEquals("ping", new String(up.in().readNBytes(4), StandardCharsets.US_ASCII));
            up.out().write('k');
        }
        Events events = Events.collect(stream, MAX);
        assertEquals(0, events.ended().exitCode(), new String(events.stderr(), StandardCharsets.UTF_8));
    }

    /** The relay starts on the first connection; this makes one (and takes it off the upstream's queue). */
    private ProcessHandle startRelay() throws IOException {
        try (Socket client = new Socket(InetAddress.getLoopbackAddress(), port)) {
            ProcessHandle relay = awaitRelay(-1);
            upstream.next(MAX).close();
            return relay;
        }
    }

    @Test
    void noRelayRunsUntilAProcessConnects() throws Exception {
        Events.collect(agent.client.exec(new ExecRequest(List.of("true"), Map.of(), null, "user", false, 0, 0, null)), MAX);
        RelayProcess.sleep(300);
        assertTrue(agent.process.toHandle().children().noneMatch(AgentEgressTest::isRelay),
                "an idle sandbox carries no relay process");
        ProcessHandle relay = startRelay();
        assertTrue(relay.isAlive());
    }

    @Test
    void theRelayIsHiddenFromPsAndSignalsAndRestartedWhenKilled() throws Exception {
        ProcessHandle relay = startRelay();
        Proc sleeper = Proc.of(agent.client.exec(
                new ExecRequest(List.of("sleep", "30"), Map.of(), null, "user", false, 0, 0, null)));
        sleeper.next(MAX).orElseThrow();
        List<ProcessInfo> ps = agent.client.listProcesses();
        assertEquals(List.of(sleeper.pid()), ps.stream().map(ProcessInfo::pid).toList(), "only the user's process");
        AgentException e = assertThrows(AgentException.class, () -> agent.client.signal((int) relay.pid(), "SIGKILL"));
        assertEquals(AgentException.Code.PROCESS_NOT_FOUND, e.code());
        assertTrue(relay.isAlive());
        agent.client.signal(sleeper.pid(), "SIGKILL");
        Events.collect(sleeper, MAX);

        assertTrue(relay.destroyForcibly()); // by pid
        // Restarted (after its backoff) when the next client comes: that client is served.
        try (Socket client = new Socket(InetAddress.getLoopbackAddress(), port)) {
            ProcessHandle restarted = awaitRelay(relay.pid());
            assertNotEquals(relay.pid(), restarted.pid());
            client.getOutputStream().write('x');
            try (FakeUpstream.Connection up = upstream.next(MAX)) {
                assertEquals("STOCKADE-RELAY 1 pid=" + ProcessHandle.current().pid() + " uid="
                        + RelayTest.uidOfThisProcess(), up.preamble());
                assertEquals('x', up.in().read());
            }
        }
    }

    @Test
    void noRelayOutlivesTheAgent() throws Exception {
        ProcessHandle relay = startRelay();
        agent.close();
        agent = null;
        assertFalse(Files.exists(Path.of("/proc/" + relay.pid())) && isRelay(relay),
                "relay " + relay.pid() + " is still there after the agent stopped");
    }

    @Test
    void withoutEgressThereIsNoRelayAndNoProxy() throws IOException {
        try (AgentProcess plain = AgentProcess.start()) {
            Events events = Events.collect(plain.client.exec(
                    new ExecRequest(List.of("env"), Map.of(), null, "user", false, 0, 0, null)), MAX);
            assertFalse(new String(events.stdout(), StandardCharsets.UTF_8).contains("PROXY="));
            assertTrue(plain.process.toHandle().children().noneMatch(AgentEgressTest::isRelay));
        }
    }

    /**
     * Start-up to the first hello with and without --egress, alternated to share the machine's
     * noise, with the programs compiled to bytecode as the server installs them and the socket
     * polled every 0.2 ms. The relay is spawned off the start-up path. Printed; asserted loosely.
     */
    @Test
    void theRelayDoesNotDelayStartUp() throws Exception {
        Path installed = Files.createDirectories(dir.resolve("opt"));
        AgentScript.install(installed);
        List<Long> with = new ArrayList<>();
        List<Long> without = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            boolean egressFirst = i % 2 == 0;
            for (boolean egress : egressFirst ? List.of(true, false) : List.of(false, true)) {
                (egress ? with : without).add(startupMicros(installed, i, egress));
            }
        }
        long w = RelayTest.median(with);
        long wo = RelayTest.median(without);
        System.out.printf("agent start-up to first hello (bytecode, 40 runs each): median %.2f ms with --egress,"
                + " %.2f ms without (%+.2f ms)%n", w / 1000.0, wo / 1000.0, (w - wo) / 1000.0);
        assertTrue(w - wo < 5_000, "--egress adds " + (w - wo) + " us to start-up");
    }

    /** Microseconds from starting the agent to its answer to the first hello; then stops it. */
    private long startupMicros(Path installed, int run, boolean egress) throws Exception {
        Path socket = dir.resolve("run" + run + (egress ? "e" : "") + "/agent.sock");
        List<String> command = new ArrayList<>(List.of(AgentProcess.PYTHON, "-I", "-S",
                installed.resolve("agent").toString(), "--socket", socket.toString(),
                "--home", "user=" + dir, "--home", "root=" + dir));
        if (!AgentProcess.ROOT) {
            command.add("--no-switch-user");
        }
        if (egress) {
            command.addAll(List.of("--egress", upstream.path.toString(), "--egress-port",
                    String.valueOf(RelayProcess.freePort())));
        }
        byte[] hello = "{\"op\":\"hello\"}".getBytes(StandardCharsets.US_ASCII);
        java.nio.ByteBuffer frame = java.nio.ByteBuffer.allocate(5 + hello.length)
                .putInt(1 + hello.length).put((byte) 'J').put(hello);
        long start = System.nanoTime();
        Process agentProcess = new ProcessBuilder(command).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        try {
            long deadline = start + MAX.toNanos();
            while (System.nanoTime() < deadline) {
                try (var channel = java.nio.channels.SocketChannel.open(java.net.UnixDomainSocketAddress.of(socket))) {
                    channel.write(frame.flip());
                    java.nio.ByteBuffer answer = java.nio.ByteBuffer.allocate(4);
                    while (answer.hasRemaining() && channel.read(answer) >= 0) {
                        // the length of the answer is enough: it comes once hello is answered
                    }
                    if (!answer.hasRemaining()) {
                        return (System.nanoTime() - start) / 1000;
                    }
                } catch (IOException notYet) {
                    java.util.concurrent.locks.LockSupport.parkNanos(200_000);
                }
            }
            return fail("the agent did not answer hello within " + MAX);
        } finally {
            agentProcess.toHandle().destroy(); // by pid; SIGTERM: it stops its relay too
            if (!agentProcess.waitFor(5, java.util.concurrent.TimeUnit.SECONDS)) {
                agentProcess.toHandle().destroyForcibly();
                agentProcess.waitFor(5, java.util.concurrent.TimeUnit.SECONDS);
            }
        }
    }

    /** The agent's relay child other than the one with pid {@code not}, waiting for it to appear. */
    private ProcessHandle awaitRelay(long not) {
        long deadline = System.nanoTime() + MAX.toNanos();
        while (System.nanoTime() < deadline) {
            Optional<ProcessHandle> relay = agent.process.toHandle().children()
                    .filter(p -> p.pid() != not && isRelay(p)).findFirst();
            if (relay.isPresent()) {
                return relay.get();
            }
            RelayProcess.sleep(20);
        }
        return fail("the agent runs no relay (other than " + not + ") after " + MAX);
    }

    private static boolean isRelay(ProcessHandle p) {
        String cmdline;
        try {
            cmdline = Files.readString(Path.of("/proc/" + p.pid() + "/cmdline"));
        } catch (IOException e) {
            return false;
        }
        return cmdline.contains("/relay\0--listen-port\0");
    }
}
