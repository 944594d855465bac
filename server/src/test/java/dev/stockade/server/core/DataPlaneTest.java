package dev.stockade.server.core;

import dev.stockade.server.error.StockadeError;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.protocol.AgentEvent;
import dev.stockade.protocol.AgentException;
import dev.stockade.protocol.CellEvent;
import dev.stockade.protocol.ExecRequest;
import dev.stockade.protocol.ExecuteCell;
import dev.stockade.protocol.Outcome;
import dev.stockade.protocol.link.AgentClient;
import dev.stockade.protocol.link.EventStream;
import dev.stockade.runtime.Limits;
import dev.stockade.server.session.CellRun;
import dev.stockade.server.session.CommandRun;
import dev.stockade.server.session.Sessions;
import java.lang.reflect.Proxy;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * The data plane's rules ({@link Sessions}) against a fake agent that breaks them: the server's
 * backstop ends a command the agent lets flood or overrun, a broken cell stream still ends with an
 * error and an end, the agent's failures reach the HTTP layer as StockadeErrors, and every
 * operation counts as activity for exactly as long as it runs. Lives in {@code core} to build a
 * running {@link Sandbox} around the fake.
 */
class DataPlaneTest {
    private static final Duration WAIT = Duration.ofSeconds(1);
    private final Sessions sessions = new Sessions();
    /** What the fake agent was asked, in order ("signal 7 SIGKILL"). */
    private final List<String> calls = new ArrayList<>();

    @Test
    void aCommandThatFloodsPastItsLimitIsKilledByTheServer() {
        byte[] chunk = new byte[400 * 1024]; // the third passes the cap: the limit (1 byte) plus 1 MiB of slack
        Sandbox sb = running(agent(new FakeStream<>(new AgentEvent.Started(7), new AgentEvent.Stdout(chunk),
                new AgentEvent.Stdout(chunk), new AgentEvent.Stdout(chunk)), null));
        try (CommandRun run = sessions.exec(sb, command(60_000, 1))) {
            assertEquals(7, run.pid());
            assertEquals(1, sb.requestsInFlight(), "a running command is activity");
            assertInstanceOf(AgentEvent.Stdout.class, run.next(WAIT).orElseThrow());
            assertInstanceOf(AgentEvent.Stdout.class, run.next(WAIT).orElseThrow());
            AgentEvent.Ended end = (AgentEvent.Ended) run.next(WAIT).orElseThrow();
            assertEquals(Outcome.OUTPUT_TRUNCATED, end.outcome());
            assertEquals("SIGKILL", end.signal());
            assertTrue(end.reason().contains("the agent did not stop it"), end.reason());
            assertThrows(IllegalStateException.class, () -> run.next(WAIT));
        }
        assertEquals(List.of("exec", "signal 7 SIGKILL"), calls);
        assertEquals(0, sb.requestsInFlight());
    }

    @Test
    void aCommandPastItsDeadlineIsKilledByTheServer() {
        Sandbox sb = running(agent(new FakeStream<>(new AgentEvent.Started(9)), null));
        long start = System.nanoTime();
        try (CommandRun run = sessions.exec(sb, command(1, 0))) {
            Optional<AgentEvent> event;
            do {
                event = run.next(WAIT);
            } while (event.isEmpty());
            AgentEvent.Ended end = (AgentEvent.Ended) event.get();
            assertEquals(Outcome.TIMEOUT, end.outcome());
            assertTrue(System.nanoTime() - start >= Duration.ofSeconds(5).toNanos(), "the agent has a grace period");
        }
        assertEquals(List.of("exec", "signal 9 SIGKILL"), calls);
    }

    @Test
    void aCellWhoseStreamFailsEndsWithAnErrorAndAnEnd() {
        FakeStream<CellEvent> broken = new FakeStream<>();
        broken.failure = new AgentException(AgentException.Code.RESOURCE_EXHAUSTED, "context c1 stayed busy");
        Sandbox sb = running(agent(null, broken));
        try (CellRun run = sessions.execute(sb, ExecuteCell.of("1+1"))) {
            CellEvent.Error error = (CellEvent.Error) run.next(WAIT).orElseThrow();
            assertEquals("ContextBusyError", error.name());
            CellEvent.End end = (CellEvent.End) run.next(WAIT).orElseThrow();
            assertEquals(Outcome.ERROR, end.outcome());
            assertEquals(false, end.stateLost());
            assertThrows(IllegalStateException.class, () -> run.next(WAIT));
        }
        assertEquals(0, sb.requestsInFlight());
    }

    @Test
    void theAgentsFailuresAreTheServersErrors() {
        Sandbox sb = running(agent(null, null));
        StockadeError e = assertThrows(StockadeError.class, () -> sessions.stat(sb, "/missing", "user"));
        assertEquals(StockadeError.Code.NOT_FOUND, e.code());
        assertEquals(false, sessions.remove(sb, "/missing", "user"), "removing what is gone is not an error");
        assertEquals(0, sb.requestsInFlight());

        Sandbox stopped = sandbox();
        e = assertThrows(StockadeError.class, () -> sessions.stat(stopped, "/", "user"));
        assertEquals(StockadeError.Code.NOT_FOUND, e.code());
        assertEquals(0, stopped.requestsInFlight());
    }

    private static ExecRequest command(long timeoutMillis, long outputLimit) {
        return new ExecRequest(List.of("yes"), Map.of(), null, "user", false, timeoutMillis, outputLimit, null);
    }

    private static Sandbox sandbox() {
        var facts = new Sandbox.Facts("sb1", "base", "base", "runc", Map.of(), Map.of(), List.of(),
                new Limits(256, 1, 64, 512, 1, 60), Instant.now(), "token", 100_000, false, 0, null, null);
        return new Sandbox(facts, new Sandbox.Owner("t", null), Instant.now().plusSeconds(300), null, 0, s -> java.util.Optional.empty(), OutputPace.UNPACED);
    }

    private static Sandbox running(AgentClient agent) {
        Sandbox sb = sandbox();
        sb.running(agent);
        return sb;
    }

    /** An agent that streams {@code process} and {@code cell}, knows no file, and records what it is asked. */
    private AgentClient agent(EventStream<AgentEvent> process, EventStream<CellEvent> cell) {
        return (AgentClient) Proxy.newProxyInstance(getClass().getClassLoader(), new Class<?>[] {AgentClient.class},
                (proxy, method, args) -> switch (method.getName()) {
                    case "exec" -> {
                        calls.add("exec");
                        yield process;
                    }
                    case "execute" -> cell;
                    case "signal" -> {
                        calls.add("signal " + args[0] + " " + args[1]);
                        yield null;
                    }
                    case "stat", "remove" -> throw new AgentException(AgentException.Code.NOT_FOUND, "no such file");
                    case "toString" -> "fake agent";
                    default -> throw new UnsupportedOperationException(method.getName());
                });
    }

    /** A stream that delivers its events at once, then nothing (or its failure). */
    private static final class FakeStream<E> implements EventStream<E> {
        private final Deque<E> events;
        AgentException failure;

        @SafeVarargs
        FakeStream(E... events) {
            this.events = new ArrayDeque<>(List.of(events));
        }

        @Override
        public Optional<E> next(Duration idle) {
            if (!events.isEmpty()) return Optional.of(events.poll());
            if (failure != null) throw failure;
            try {
                Thread.sleep(idle);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            return Optional.empty();
        }

        @Override
        public void close() {}
    }
}
