package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.stockade.protocol.AgentEvent;
import dev.stockade.protocol.AgentException;
import dev.stockade.protocol.AgentInfo;
import dev.stockade.protocol.ExecRequest;
import dev.stockade.protocol.Outcome;
import dev.stockade.protocol.ProcessInfo;
import dev.stockade.protocol.link.AgentClient;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Process operations against the real agent script. */
class AgentProcessesTest {
    private static final Duration MAX = Duration.ofSeconds(10);

    private AgentProcess agent;
    private AgentClient client;

    @BeforeEach
    void start() throws IOException {
        agent = AgentProcess.start(Map.of("STOCKADE_TEST_MARKER", "agent-secret-42"));
        client = agent.client;
    }

    @AfterEach
    void stop() throws IOException {
        agent.close();
    }

    private static ExecRequest cmd(String... argv) {
        return new ExecRequest(List.of(argv), Map.of(), null, "user", false, 0, 0, null);
    }

    private Events run(ExecRequest request) {
        return Events.collect(client.exec(request), MAX);
    }

    @Test
    void helloReportsVersionAndPid() {
        AgentInfo info = client.hello(Duration.ofSeconds(2));
        assertEquals("0.1.0", info.version());
        assertEquals(agent.process.pid(), info.pid());
    }

    @Test
    void exitCodesOfEchoTrueAndFalse() {
        Events echo = run(cmd("echo", "hello", "world"));
        assertInstanceOf(AgentEvent.Started.class, echo.all().getFirst());
        assertEquals("hello world\n", echo.out());
        assertEquals(new AgentEvent.Ended(0, null, Outcome.EXITED, "exited with code 0"), echo.ended());

        assertEquals(0, run(cmd("/bin/true")).ended().exitCode());
        Events fail = run(cmd("false"));
        assertEquals(1, fail.ended().exitCode());
        assertEquals(Outcome.EXITED, fail.ended().outcome());
        assertEquals(42, run(cmd("sh", "-c", "exit 42")).ended().exitCode());
    }

    @Test
    void stdoutAndStderrStaySeparateAndInOrder() {
        Events events = run(cmd("sh", "-c",
                "echo out1; sleep 0.05; echo err1 >&2; sleep 0.05; echo out2; sleep 0.05; echo err2 >&2"));
        assertEquals("out1\nout2\n", events.out());
        assertEquals("err1\nerr2\n", events.err());
        List<String> order = events.all().stream()
                .map(e -> switch (e) {
                    case AgentEvent.Stdout(byte[] d) -> "out:" + new String(d, StandardCharsets.UTF_8).trim();
                    case AgentEvent.Stderr(byte[] d) -> "err:" + new String(d, StandardCharsets.UTF_8).trim();
                    default -> null;
                })
                .filter(s -> s != null)
                .toList();
        assertEquals(List.of("out:out1", "err:err1", "out:out2", "err:err2"), order);
    }

    @Test
    void outputStreamsBeforeTheProcessEnds() {
        long start = System.nanoTime();
        Proc stream = Proc.of(client.exec(cmd("sh", "-c", "echo first; sleep 0.3; echo second")));
        assertInstanceOf(AgentEvent.Started.class, stream.next(MAX).orElseThrow());
        AgentEvent first = stream.next(MAX).orElseThrow();
        long firstAt = System.nanoTime();
        assertEquals("first\n", new String(((AgentEvent.Stdout) first).data(), StandardCharsets.UTF_8));
        Events rest = Events.collect(stream, MAX);
        long endAt = System.nanoTime();
        assertEquals("second\n", rest.out());
        assertTrue(endAt - firstAt >= 200_000_000L,
                "the first chunk should arrive ~300 ms before the end, got " + (endAt - firstAt) / 1_000_000 + " ms");
        System.out.printf("streaming: first chunk after %d ms, end after %d ms%n",
                (firstAt - start) / 1_000_000, (endAt - start) / 1_000_000);
    }

    @Test
    void stdinInputThenClose() {
        Proc stream = Proc.of(client.exec(new ExecRequest(List.of("cat"), Map.of(), null, "user", true, 0, 0, null)));
        assertInstanceOf(AgentEvent.Started.class, stream.next(MAX).orElseThrow());
        client.sendInput(stream.pid(), "hello\n".getBytes(StandardCharsets.UTF_8));
        AgentEvent echoed = stream.next(MAX).orElseThrow();
        assertEquals("hello\n", new String(((AgentEvent.Stdout) echoed).data(), StandardCharsets.UTF_8));
        client.closeStdin(stream.pid());
        Events rest = Events.collect(stream, MAX);
        assertEquals(0, rest.ended().exitCode());
    }

    @Test
    void largeInputFlowsThroughAFullPipe() throws Exception {
        Proc stream = Proc.of(client.exec(new ExecRequest(List.of("cat"), Map.of(), null, "user", true, 0, 0, null)));
        var collected = new java.util.concurrent.CompletableFuture<Events>();
        Thread.ofVirtual().start(() -> {
            try {
                collected.complete(Events.collect(stream, MAX));
            } catch (Throwable t) {
                collected.completeExceptionally(t);
            }
        });
        byte[] big = new byte[3 << 20]; // more than a frame, and far more than a pipe holds
        java.util.Arrays.fill(big, (byte) 'x');
        client.sendInput(stream.pid(), big);
        client.closeStdin(stream.pid());
        Events events = collected.get(10, java.util.concurrent.TimeUnit.SECONDS);
        assertEquals(big.length, events.stdout().length);
        assertEquals(0, events.ended().exitCode());
    }

    @Test
    void inputAndCloseStdinOfMissingProcessOrWithoutStdin() {
        AgentException e = assertThrows(AgentException.class, () -> client.sendInput(999_999, new byte[] {1}));
        assertEquals(AgentException.Code.PROCESS_NOT_FOUND, e.code());
        Proc stream = Proc.of(client.exec(cmd("sleep", "5")));
        e = assertThrows(AgentException.class, () -> client.sendInput(stream.pid(), new byte[] {1}));
        assertEquals(AgentException.Code.INVALID_ARGUMENT, e.code());
        client.signal(stream.pid(), "SIGKILL");
        Events.collect(stream, MAX);
    }

    @Test
    void secondClientAttaches() {
        Proc first = Proc.of(client.exec(cmd("sh", "-c", "sleep 0.4; echo later; sleep 0.2")));
        AgentClient other = AgentClient.unix(agent.socket);
        Proc second = Proc.of(other.attach(first.pid()));
        assertEquals(first.pid(), second.pid());
        Events a = Events.collect(first, MAX);
        Events b = Events.collect(second, MAX);
        assertEquals("later\n", a.out());
        assertEquals("later\n", b.out());
        assertEquals(a.ended(), b.ended());

        Events late = Events.collect(other.attach(first.pid()), MAX); // ended less than 60 s ago
        assertEquals(2, late.all().size());
        assertEquals(a.ended(), late.ended());

        AgentException e = assertThrows(AgentException.class, () -> other.attach(999_999));
        assertEquals(AgentException.Code.PROCESS_NOT_FOUND, e.code());
    }

    @Test
    void closingTheExecStreamLeavesTheProcessRunning() {
        Proc stream = Proc.of(client.exec(new ExecRequest(List.of("sleep", "30"), Map.of("A", "1"), "/", "user",
                false, 0, 0, "my-tag")));
        int pid = stream.pid();
        stream.close();
        List<ProcessInfo> listed = client.listProcesses();
        ProcessInfo info = listed.stream().filter(p -> p.pid() == pid).findFirst().orElseThrow();
        assertEquals(List.of("sleep", "30"), info.argv());
        assertEquals(Map.of("A", "1"), info.env());
        assertEquals("/", info.cwd());
        assertEquals("my-tag", info.tag());

        Proc attached = Proc.of(client.attach(pid));
        client.signal(pid, "SIGKILL");
        // E2B's kill tests run `kill -0 PID` right after kill(): the process is reaped, not a zombie.
        assertFalse(java.nio.file.Files.exists(java.nio.file.Path.of("/proc", Integer.toString(pid))),
                "a SIGKILL's answer comes once the process is reaped");
        AgentEvent.Ended ended = Events.collect(attached, MAX).ended();
        assertEquals(new AgentEvent.Ended(-1, "SIGKILL", Outcome.KILLED, "killed by SIGKILL sent through the API"), ended);
        assertTrue(client.listProcesses().stream().noneMatch(p -> p.pid() == pid));
    }

    @Test
    void signalTermIsKilledOutcome() {
        Proc stream = Proc.of(client.exec(cmd("sleep", "30")));
        client.signal(stream.pid(), "SIGTERM");
        AgentEvent.Ended ended = Events.collect(stream, MAX).ended();
        assertEquals(-1, ended.exitCode());
        assertEquals("SIGTERM", ended.signal());
        assertEquals(Outcome.KILLED, ended.outcome());

        AgentException e = assertThrows(AgentException.class, () -> client.signal(stream.pid(), "SIGTERM"));
        assertEquals(AgentException.Code.PROCESS_NOT_FOUND, e.code());
        Proc other = Proc.of(client.exec(cmd("sleep", "30")));
        e = assertThrows(AgentException.class, () -> client.signal(other.pid(), "SIGBOGUS"));
        assertEquals(AgentException.Code.INVALID_ARGUMENT, e.code());
        client.signal(other.pid(), "SIGKILL");
        Events.collect(other, MAX);
    }

    @Test
    void signalOutcomeWhenTheProcessKillsItself() {
        AgentEvent.Ended ended = run(cmd("sh", "-c", "kill -SEGV $$")).ended();
        assertEquals(new AgentEvent.Ended(-1, "SIGSEGV", Outcome.SIGNAL, "terminated by signal SIGSEGV"), ended);
    }

    @Test
    void timeoutKillsTheGroup() {
        long start = System.nanoTime();
        Events events = run(new ExecRequest(List.of("sh", "-c", "sleep 30 & sleep 30"), Map.of(), null, "user",
                false, 300, 0, null));
        long millis = (System.nanoTime() - start) / 1_000_000;
        assertEquals(Outcome.TIMEOUT, events.ended().outcome());
        assertEquals("SIGKILL", events.ended().signal());
        assertEquals("killed after exceeding the 300 ms command timeout", events.ended().reason());
        assertTrue(millis < 3000, "took " + millis + " ms");
    }

    @Test
    void outputLimitTruncatesAndEndsPromptly() {
        long start = System.nanoTime();
        Events events = run(new ExecRequest(List.of("yes"), Map.of(), null, "user", false, 0, 100_000, null));
        long millis = (System.nanoTime() - start) / 1_000_000;
        assertEquals(100_000, events.stdout().length);
        assertEquals(Outcome.OUTPUT_TRUNCATED, events.ended().outcome());
        assertEquals("SIGKILL", events.ended().signal());
        assertTrue(millis < 3000, "took " + millis + " ms");
        System.out.printf("yes with a 100 kB limit ended after %d ms%n", millis);
    }

    @Test
    void environmentIsBuiltFromScratch() {
        Events events = run(new ExecRequest(List.of("env"), Map.of("FOO", "bar", "LANG", "en_US.UTF-8"),
                null, "user", false, 0, 0, null));
        String env = events.out();
        assertFalse(env.contains("STOCKADE_TEST_MARKER"), env);
        assertFalse(env.contains("agent-secret-42"), env);
        assertTrue(env.contains("FOO=bar\n"), env);
        assertTrue(env.contains("LANG=en_US.UTF-8\n"), env); // the request wins
        assertTrue(env.contains("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"), env);
        assertTrue(env.contains("HOME=" + agent.userHome + "\n"), env);
        assertTrue(env.contains("USER=user\n"), env);
        assertTrue(env.contains("PWD=" + agent.userHome + "\n"), env);

        AgentException e = assertThrows(AgentException.class, () -> client.exec(
                new ExecRequest(List.of("env"), Map.of("A=B", "x"), null, "user", false, 0, 0, null)));
        assertEquals(AgentException.Code.INVALID_ARGUMENT, e.code());
    }

    @Test
    void usersAndWorkingDirectories() {
        Events root = run(new ExecRequest(List.of("sh", "-c", "pwd; echo $HOME"), Map.of(), null, "root",
                false, 0, 0, null));
        assertEquals(agent.rootHome + "\n" + agent.rootHome + "\n", root.out());
        Events relative = run(new ExecRequest(List.of("pwd"), Map.of(), "..", "user", false, 0, 0, null));
        assertEquals(agent.userHome.getParent() + "\n", relative.out());

        AgentException e = assertThrows(AgentException.class, () -> client.exec(
                new ExecRequest(List.of("true"), Map.of(), "/no/such/dir", "user", false, 0, 0, null)));
        assertEquals(AgentException.Code.INVALID_ARGUMENT, e.code());
        assertTrue(e.getMessage().contains("/no/such/dir"), e.getMessage());
        e = assertThrows(AgentException.class, () -> client.exec(
                new ExecRequest(List.of("true"), Map.of(), null, "mallory", false, 0, 0, null)));
        assertEquals(AgentException.Code.INVALID_ARGUMENT, e.code());
    }

    @Test
    void userRunsAsUid1000WhenTheAgentIsRoot() {
        assumeTrue(AgentProcess.ROOT, "needs root to switch users");
        assertEquals("1000 1000 1000\n", run(new ExecRequest(List.of("sh", "-c", "echo $(id -u) $(id -g) $(id -G)"),
                Map.of(), null, "user", false, 0, 0, null)).out());
        assertEquals("0\n", run(new ExecRequest(List.of("id", "-u"), Map.of(), null, "root", false, 0, 0, null)).out());
    }

    @Test
    void missingExecutableIsNotFound() throws IOException {
        AgentException e = assertThrows(AgentException.class, () -> client.exec(cmd("no-such-program-xyz")));
        assertEquals(AgentException.Code.NOT_FOUND, e.code());
        assertTrue(e.getMessage().contains("no-such-program-xyz"), e.getMessage());
        java.nio.file.Files.writeString(agent.userHome.resolve("script"), "echo hi\n");
        e = assertThrows(AgentException.class, () -> client.exec(cmd("./script")));
        assertEquals(AgentException.Code.PERMISSION_DENIED, e.code(), e.getMessage());
        java.nio.file.Files.write(agent.userHome.resolve("garbage"), new byte[] {0x7f, 'E', 'L', 'F', 0, 0});
        agent.userHome.resolve("garbage").toFile().setExecutable(true, false);
        e = assertThrows(AgentException.class, () -> client.exec(cmd("./garbage")));
        assertEquals(AgentException.Code.INVALID_ARGUMENT, e.code(), e.getMessage());
    }

    @Test
    void orphanedGrandchildrenDoNotHoldTheEndBack() {
        long start = System.nanoTime();
        Events events = run(cmd("sh", "-c", "sleep 5 & echo started"));
        long millis = (System.nanoTime() - start) / 1_000_000;
        assertEquals("started\n", events.out());
        assertEquals(Outcome.EXITED, events.ended().outcome());
        assertTrue(millis < 2000, "took " + millis + " ms");
    }

    @Test
    void malformedFramesCloseOnlyThatConnection() throws IOException {
        for (byte[] garbage : List.of(
                new byte[] {0x7f, (byte) 0xff, (byte) 0xff, (byte) 0xff, 'J'},
                new byte[] {0, 0, 0, 5, 'J', '{', 'x', '}', '!'},
                new byte[] {0, 0, 0, 3, 'Z', 'a', 'b'},
                "GET / HTTP/1.1\r\n\r\n".getBytes(StandardCharsets.US_ASCII))) {
            try (SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX)) {
                channel.connect(UnixDomainSocketAddress.of(agent.socket));
                channel.write(ByteBuffer.wrap(garbage));
                channel.shutdownOutput();
                ByteBuffer sink = ByteBuffer.allocate(4096);
                try {
                    while (channel.read(sink) >= 0) {
                        sink.clear();
                    }
                } catch (IOException reset) {
                    // the agent closed with our garbage unread: the kernel reports a reset
                }
            }
        }
        assertEquals(agent.process.pid(), client.hello(Duration.ofSeconds(2)).pid());
        assertEquals("dir", client.stat("~", "user").type());
    }

    @Test
    void idleNextReturnsEmpty() {
        Proc stream = Proc.of(client.exec(cmd("sleep", "1")));
        assertInstanceOf(AgentEvent.Started.class, stream.next(MAX).orElseThrow());
        assertEquals(Optional.empty(), stream.next(Duration.ofMillis(50)));
        Events rest = Events.collect(stream, MAX);
        assertNull(rest.ended().signal());
        assertThrows(IllegalStateException.class, () -> stream.next(Duration.ofMillis(1)));
    }
}
