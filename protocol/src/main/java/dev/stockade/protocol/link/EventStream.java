package dev.stockade.protocol.link;

import java.time.Duration;
import java.util.Optional;

/**
 * A live view of one process's ({@code EventStream<AgentEvent>}) or one cell's
 * ({@code EventStream<CellEvent>}) events, for one consumer thread. Closing it (from any thread)
 * detaches: the process or the cell keeps running to its end (its limits still apply). Events not
 * consumed are buffered up to a bound, after which the agent waits (a process blocks on its pipe)
 * and, after a minute, drops this client.
 */
public interface EventStream<E> extends AutoCloseable {
    /**
     * The next event, waiting at most {@code idle}; empty when nothing arrived in that time (the
     * caller may send a keepalive and call again). A process stream begins with
     * {@link dev.stockade.protocol.AgentEvent.Started}. After the last event
     * ({@link dev.stockade.protocol.AgentEvent.Ended}, {@link dev.stockade.protocol.CellEvent.End})
     * the stream is done (and closed): calling again throws IllegalStateException, as does calling
     * after {@link #close()}.
     *
     * <p>A failure throws {@link dev.stockade.protocol.AgentException} and closes the stream:
     * UNAVAILABLE when the link broke, TIMEOUT for a frame begun but never finished, PROTOCOL for
     * a misbehaving agent; for a cell also RESOURCE_EXHAUSTED when its context stayed busy with
     * another cell for 60 s (or the sandbox's pids limit refused a new interpreter), NOT_FOUND when
     * the context was deleted while the cell waited, INTERNAL when its interpreter could not be
     * started (the message says why).
     */
    Optional<E> next(Duration idle);

    @Override
    void close();
}
