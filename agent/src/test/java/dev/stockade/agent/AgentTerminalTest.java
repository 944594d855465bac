package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.protocol.AgentEvent;
import dev.stockade.protocol.AgentException;
import dev.stockade.protocol.ExecRequest;
import dev.stockade.protocol.ExecRequest.TerminalSize;
import dev.stockade.protocol.Outcome;
import dev.stockade.protocol.link.AgentClient;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** Processes on a pseudo-terminal (exec with a terminal size), against the real agent script. */
class AgentTerminalTest {
    private static final Duration MAX = Duration.ofSeconds(10);

    private AgentProcess agent;
    private AgentClient client;

    @BeforeEach
    void start() throws IOException {
        agent = AgentProcess.start(Map.of());
        client = agent.client;
    }

    @AfterEach
    void stop() throws IOException {
        agent.close();
    }

    private static ExecRequest terminal(TerminalSize size, String... argv) {
        return new ExecRequest(List.of(argv), Map.of(), null, "user", false, 0, 0, null, size);
    }

    /** Reads the terminal's output until it contains {@code wanted}; fails after MAX. */
    private static String readUntil(Proc stream, StringBuilder seen, String wanted) {
        long deadline = System.nanoTime() + MAX.toNanos();
        while (!seen.toString().contains(wanted)) {
            assertTrue(System.nanoTime() < deadline, "no '" + wanted + "' in the terminal's output: " + seen);
            stream.next(Duration.ofMillis(100)).ifPresent(e -> {
                if (e instanceof AgentEvent.Terminal(byte[] data)) seen.append(new String(data, StandardCharsets.UTF_8));
                assertFalse(e instanceof AgentEvent.Ended, "ended before '" + wanted + "': " + seen);
            });
        }
        return seen.toString();
    }

    @Test
    void runsOnAControllingTerminalOfTheGivenSize() {
        Proc stream = Proc.of(client.exec(terminal(new TerminalSize(100, 30), "sh", "-c",
                "stty size; tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys; echo term=$TERM;"
                        + " ps -o tty= -p $$; echo err >&2")));
        assertEquals(new AgentEvent.Started(stream.pid(), true), stream.next(MAX).orElseThrow());
        Events events = Events.collect(stream, MAX);
        assertEquals(0, events.ended().exitCode());
        // stdout and stderr are one stream, with the terminal's line discipline (\r\n).
        assertTrue(events.all().stream().noneMatch(e -> e instanceof AgentEvent.Stdout || e instanceof AgentEvent.Stderr));
        String out = events.out();
        assertTrue(out.startsWith("30 100\r\n"), out);
        assertTrue(out.matches("(?s).*/dev/pts/\\d+\r\nall-ttys\r\nterm=xterm-256color\r\npts/\\d+\\s*\r\nerr\r\n"), out);
    }

    @Test
    void inputResizeAndInterrupt() {
        Proc stream = Proc.of(client.exec(terminal(new TerminalSize(80, 24), "sh", "-c",
                "trap 'echo got-winch' WINCH; read line; stty size; sleep 60; echo after-sleep; read line; echo bye")));
        StringBuilder seen = new StringBuilder();
        client.sendInput(stream.pid(), "go\n".getBytes(StandardCharsets.UTF_8));
        readUntil(stream, seen, "24 80");
        client.resize(stream.pid(), new TerminalSize(132, 40));
        // ^C is the terminal's: SIGINT to the foreground process group (sh and its sleep).
        client.sendInput(stream.pid(), new byte[] {3});
        Events rest = Events.collect(stream, MAX);
        assertEquals("SIGINT", rest.ended().signal());
        assertFalse(rest.out().contains("after-sleep"), rest.out());

        Proc second = Proc.of(client.exec(terminal(new TerminalSize(80, 24), "sh", "-c", "read line; stty size")));
        client.resize(second.pid(), new TerminalSize(132, 40));
        client.sendInput(second.pid(), "go\n".getBytes(StandardCharsets.UTF_8));
        assertTrue(Events.collect(second, MAX).out().contains("40 132\r\n"));
    }

    @Test
    void terminalOperationsRefuseWhatDoesNotFit() {
        Proc pipes = Proc.of(client.exec(new ExecRequest(List.of("sleep", "30"), Map.of(), null, "user", true, 0, 0, null)));
        AgentException notTerminal = assertThrows(AgentException.class,
                () -> client.resize(pipes.pid(), new TerminalSize(10, 10)));
        assertEquals(AgentException.Code.INVALID_ARGUMENT, notTerminal.code());
        AgentException unknown = assertThrows(AgentException.class, () -> client.resize(999_999, new TerminalSize(10, 10)));
        assertEquals(AgentException.Code.PROCESS_NOT_FOUND, unknown.code());

        Proc term = Proc.of(client.exec(terminal(new TerminalSize(80, 24), "sleep", "30")));
        AgentException closeStdin = assertThrows(AgentException.class, () -> client.closeStdin(term.pid()));
        assertEquals(AgentException.Code.INVALID_ARGUMENT, closeStdin.code());
        assertThrows(IllegalArgumentException.class, () -> new TerminalSize(0, 24));
        client.signal(pipes.pid(), "SIGKILL");
        client.signal(term.pid(), "SIGKILL");
        Events.collect(pipes, MAX);
        assertEquals(Outcome.KILLED, Events.collect(term, MAX).ended().outcome());
    }

    @Test
    void aSignalReachesEveryJobOfTheTerminalsSession() throws Exception {
        // With job control on (set -m) the background job has a process group of its own.
        Proc stream = Proc.of(client.exec(terminal(new TerminalSize(80, 24), "sh", "-c",
                "set -m; sleep 300 & echo job=$!; wait")));
        StringBuilder seen = new StringBuilder();
        Matcher m = Pattern.compile("job=(\\d+)").matcher(readUntil(stream, seen, "\r\n"));
        assertTrue(m.find(), seen.toString());
        Path job = Path.of("/proc", m.group(1));
        assertTrue(Files.exists(job));
        client.signal(stream.pid(), "SIGKILL");
        assertEquals(Outcome.KILLED, Events.collect(stream, MAX).ended().outcome());
        long deadline = System.nanoTime() + MAX.toNanos();
        while (Files.exists(job) && !Files.readString(job.resolve("stat")).contains(") Z ")) {
            assertTrue(System.nanoTime() < deadline, "the terminal's background job survived its SIGKILL");
            Thread.sleep(20);
        }
    }

    @Test
    void outputWhileNobodyIsAttachedWaitsForTheNextClient() throws Exception {
        Proc first = Proc.of(client.exec(terminal(new TerminalSize(80, 24), "sh", "-c",
                "stty -echo; echo ready; read a; echo late-output; read b; echo bye")));
        readUntil(first, new StringBuilder(), "ready");
        first.close();
        client.sendInput(first.pid(), "a\n".getBytes(StandardCharsets.UTF_8));
        Thread.sleep(300);
        Proc again = Proc.of(client.attach(first.pid()));
        assertInstanceOf(AgentEvent.Started.class, again.next(MAX).orElseThrow());
        readUntil(again, new StringBuilder(), "late-output");
        client.sendInput(first.pid(), "b\n".getBytes(StandardCharsets.UTF_8));
        Events rest = Events.collect(again, MAX);
        assertEquals("bye\r\n", rest.out());
        assertEquals(0, rest.ended().exitCode());
    }

    @Test
    void terminalsPerSandboxAreBounded() {
        List<Proc> open = new ArrayList<>();
        try {
            AgentException full = null;
            for (int i = 0; i < 64 && full == null; i++) {
                try {
                    open.add(Proc.of(client.exec(terminal(new TerminalSize(80, 24), "sleep", "30"))));
                } catch (AgentException e) {
                    full = e;
                }
            }
            assertEquals(32, open.size());
            assertEquals(AgentException.Code.RESOURCE_EXHAUSTED, full.code());
            // Processes on pipes are not terminals and do not count.
            Proc pipes = Proc.of(client.exec(new ExecRequest(List.of("true"), Map.of(), null, "user", false, 0, 0, null)));
            assertEquals(0, Events.collect(pipes, MAX).ended().exitCode());
        } finally {
            for (Proc p : open) {
                client.signal(p.pid(), "SIGKILL");
                p.close();
            }
        }
    }
}
