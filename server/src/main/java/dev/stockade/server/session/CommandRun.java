package dev.stockade.server.session;

import dev.stockade.protocol.AgentEvent;
import dev.stockade.protocol.AgentException;
import dev.stockade.protocol.Outcome;
import dev.stockade.protocol.link.EventStream;
import dev.stockade.server.core.Sandbox;
import dev.stockade.server.error.StockadeError;
import java.time.Duration;
import java.util.Optional;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A command started (or attached to) through {@link Sessions}: its pid, then its output and its
 * end as {@link AgentEvent}s, with the server's {@link Backstop} applied — past the deadline or
 * the output cap the process group is killed and the run ends with the server's verdict, an
 * {@link AgentEvent.Ended} like the agent's own — and the sandbox's {@link
 * dev.stockade.server.core.OutputPace}: sustained output is relayed at the server's rate. Counts as
 * activity of its sandbox until closed.
 *
 * <p>For one consumer thread (the request's); {@link #close} detaches, the process keeps running.
 */
public final class CommandRun implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(CommandRun.class.getName());

    private final Sandbox sandbox;
    private final EventStream<AgentEvent> stream;
    private final Backstop backstop;
    private final int pid;
    private final boolean terminal;
    private final Runnable done;
    private long forwarded;
    private boolean ended;

    CommandRun(Sandbox sandbox, EventStream<AgentEvent> stream, Backstop backstop, Runnable done) {
        this.sandbox = sandbox;
        this.stream = stream;
        this.backstop = backstop;
        this.done = done;
        // The link delivers Started at once: it carries the pid the agent answered with.
        AgentEvent first = next(stream, Duration.ofSeconds(1));
        if (!(first instanceof AgentEvent.Started started)) {
            throw new IllegalStateException("a process stream began with " + first);
        }
        this.pid = started.pid();
        this.terminal = started.terminal();
    }

    public int pid() {
        return pid;
    }

    /** Whether the process runs on a terminal: its output comes as {@link AgentEvent.Terminal}. */
    public boolean terminal() {
        return terminal;
    }

    /**
     * The next output chunk or the end, waiting at most {@code idle}; empty when nothing came (the
     * caller may send a keepalive). After {@link AgentEvent.Ended} the run is over; calling again
     * throws IllegalStateException. A broken link throws StockadeError (saying so when the sandbox
     * itself ended).
     */
    public Optional<AgentEvent> next(Duration idle) {
        if (ended) throw new IllegalStateException("the command " + pid + " has already ended");
        long left = backstop.nanosLeft();
        if (left <= 0) {
            return Optional.of(kill(Outcome.TIMEOUT, "killed by the server after exceeding the "
                    + backstop.timeoutMillis() / 1000.0 + " s command timeout (the agent did not stop it)"));
        }
        Optional<AgentEvent> event;
        try {
            event = stream.next(Duration.ofNanos(Math.min(left, idle.toNanos())));
        } catch (AgentException e) {
            ended = true;
            throw AgentErrors.translate(e, sandbox);
        }
        if (event.isEmpty()) {
            return backstop.nanosLeft() <= 0 ? next(idle) : event;
        }
        int bytes = switch (event.get()) {
            case AgentEvent.Stdout o -> o.data().length;
            case AgentEvent.Stderr o -> o.data().length;
            case AgentEvent.Terminal o -> o.data().length;
            case AgentEvent.Ended e -> {
                ended = true;
                yield 0;
            }
            case AgentEvent.Started s -> 0;
        };
        forwarded += bytes;
        if (backstop.overOutput(forwarded)) {
            return Optional.of(kill(Outcome.OUTPUT_TRUNCATED, "killed by the server after writing more than "
                    + backstop.outputLimit() + " bytes of output (the agent did not stop it)"));
        }
        sandbox.outputPace().pass(bytes); // sustained output waits here, and the process on its pipe
        return event;
    }

    /** Kills the process group; the run ends as if the agent had reported it killed with {@code outcome}. */
    private AgentEvent.Ended kill(Outcome outcome, String reason) {
        ended = true;
        LOG.log(Level.WARNING, "sandbox " + sandbox.id() + ", process " + pid + ": " + reason);
        try {
            sandbox.agent().signal(pid, "SIGKILL");
        } catch (AgentException | StockadeError ignored) {
            // the process or the sandbox is already gone
        }
        close();
        return new AgentEvent.Ended(-1, "SIGKILL", outcome, reason);
    }

    private static AgentEvent next(EventStream<AgentEvent> stream, Duration idle) {
        return stream.next(idle).orElse(null);
    }

    @Override
    public void close() {
        stream.close();
        done.run();
    }
}
