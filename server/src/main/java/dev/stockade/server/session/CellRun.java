package dev.stockade.server.session;

import dev.stockade.protocol.AgentException;
import dev.stockade.protocol.CellEvent;
import dev.stockade.protocol.Outcome;
import dev.stockade.protocol.link.EventStream;
import dev.stockade.server.core.Sandbox;
import dev.stockade.server.error.StockadeError;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A cell run through {@link Sessions}: its events as the agent sends them, always ending with one
 * {@link CellEvent.End}. What the cell's stream cannot deliver becomes events too, so that a client
 * is always told how the cell ended: when the link fails mid-way (the status line is already sent),
 * and when the server's {@link Backstop} ends a cell the agent did not stop (its context is then
 * restarted), an {@link CellEvent.Error} saying why comes first, then the End. Counts as activity of
 * its sandbox until closed.
 *
 * <p>For one consumer thread (the request's); {@link #close} detaches, the cell keeps running.
 */
public final class CellRun implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(CellRun.class.getName());

    private final Sandbox sandbox;
    private final EventStream<CellEvent> stream;
    private final String contextId;
    private final Backstop backstop;
    private final Runnable done;
    /** The server's own closing events, once it has ended the cell. */
    private final ArrayDeque<CellEvent> verdict = new ArrayDeque<>();
    private long forwarded;
    private boolean ended;

    CellRun(Sandbox sandbox, EventStream<CellEvent> stream, String contextId, Backstop backstop, Runnable done) {
        this.sandbox = sandbox;
        this.stream = stream;
        this.contextId = contextId;
        this.backstop = backstop;
        this.done = done;
    }

    /**
     * The next event, waiting at most {@code idle}; empty when nothing came. After the End the run
     * is over; calling again throws IllegalStateException. Never throws for a failure of the agent.
     */
    public Optional<CellEvent> next(Duration idle) {
        if (!verdict.isEmpty()) return Optional.of(take());
        if (ended) throw new IllegalStateException("the cell has already ended");
        long left = backstop.nanosLeft();
        if (left <= 0) {
            stop(Outcome.TIMEOUT, "the cell was stopped by the server after exceeding its "
                    + backstop.timeoutMillis() / 1000.0 + " s timeout (the interpreter did not stop it)");
            return Optional.of(take());
        }
        Optional<CellEvent> event;
        try {
            event = stream.next(Duration.ofNanos(Math.min(left, idle.toNanos())));
        } catch (AgentException e) {
            failed(e);
            return Optional.of(take());
        }
        if (event.isEmpty()) return event;
        long bytes = switch (event.get()) {
            case CellEvent.Stdout o -> utf8Length(o.text());
            case CellEvent.Stderr o -> utf8Length(o.text());
            case CellEvent.Result r -> size(r.data());
            case CellEvent.Error e -> 0;
            case CellEvent.End e -> 0;
        };
        forwarded += bytes;
        if (backstop.overOutput(forwarded)) {
            stop(Outcome.OUTPUT_TRUNCATED, "the cell was stopped by the server after producing more than "
                    + backstop.outputLimit() + " bytes of output (the interpreter did not stop it)");
            return Optional.of(take());
        }
        sandbox.outputPace().pass(bytes); // sustained output waits here (OutputPace)
        if (event.get() instanceof CellEvent.End) ended = true;
        return event;
    }

    private CellEvent take() {
        CellEvent event = verdict.poll();
        if (event instanceof CellEvent.End) ended = true;
        return event;
    }

    /**
     * The server's own verdict on a cell the agent did not stop: restart the context (when the cell
     * named one; the agent does not say which context is the default), end the run.
     */
    private void stop(Outcome outcome, String reason) {
        LOG.log(Level.WARNING, "sandbox " + sandbox.id() + ": " + reason);
        String why = reason;
        if (contextId != null) {
            try {
                sandbox.agent().restartContext(contextId);
                why += "; its context was restarted";
            } catch (AgentException | StockadeError e) {
                LOG.log(Level.WARNING, "sandbox " + sandbox.id() + ": restarting context " + contextId + " failed", e);
                why += "; restarting its context failed";
            }
        }
        close();
        verdict.add(new CellEvent.Error(errorName(outcome), why, ""));
        verdict.add(new CellEvent.End(0, outcome, why, true, List.of()));
    }

    /** A cell whose stream failed: an error and an end that say what happened. */
    private void failed(AgentException e) {
        String name;
        Outcome outcome;
        boolean lost;
        String reason;
        switch (e.code()) {
            case RESOURCE_EXHAUSTED -> {
                // The cell never ran: an earlier cell kept the context busy.
                name = "ContextBusyError";
                outcome = Outcome.ERROR;
                lost = false;
                reason = "the cell did not run: " + e.getMessage();
            }
            case NOT_FOUND -> {
                name = "ContextNotFoundError";
                outcome = Outcome.KILLED;
                lost = true;
                reason = "the cell did not run: its context was deleted while it waited (" + e.getMessage() + ")";
            }
            default -> {
                name = "SandboxError";
                outcome = Outcome.KILLED;
                lost = true;
                reason = "the sandbox's agent failed during the cell: " + e.getMessage();
            }
        }
        close();
        verdict.add(new CellEvent.Error(name, reason, ""));
        verdict.add(new CellEvent.End(0, outcome, reason, lost, List.of()));
    }

    /** The error name a client shows for a cell that did not end on its own. */
    public static String errorName(Outcome outcome) {
        return switch (outcome == null ? Outcome.UNKNOWN : outcome) {
            case TIMEOUT -> "TimeoutError";
            case OUTPUT_TRUNCATED -> "OutputLimitExceeded";
            case KILLED -> "ContextDied";
            default -> "ExecutionError";
        };
    }

    /** Roughly the bytes a result carries (its strings' lengths), for the output backstop. */
    private static long size(Map<String, Object> data) {
        long n = 0;
        for (var e : data.entrySet()) {
            Object v = e.getValue();
            n += e.getKey().length() + (v instanceof String str ? utf8Length(str) : String.valueOf(v).length());
        }
        return n;
    }

    static long utf8Length(String s) {
        long n = 0;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x80) n += 1;
            else if (c < 0x800) n += 2;
            else if (Character.isHighSurrogate(c)) {
                n += 4;
                i++;
            } else n += 3;
        }
        return n;
    }

    @Override
    public void close() {
        stream.close();
        done.run();
    }
}
