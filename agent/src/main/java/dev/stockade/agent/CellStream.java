package dev.stockade.agent;

import java.time.Duration;
import java.util.Optional;

/**
 * A live view of one cell's events, for one consumer thread. Closing it (from any thread) detaches:
 * the cell keeps running to its end (its timeout still applies) and the context stays busy until
 * then.
 */
public interface CellStream extends AutoCloseable {
    /**
     * The next event, waiting at most {@code idle}; empty when nothing arrived in that time (the
     * caller may send a keepalive and call again). After {@link CellEvent.End} the stream is done
     * (and closed): calling again throws IllegalStateException. A failure throws AgentException and
     * closes the stream: RESOURCE_EXHAUSTED when the context stayed busy with another cell for
     * 60 s (or the sandbox's pids limit refused a new interpreter), NOT_FOUND when the context was
     * deleted while the cell waited, INTERNAL when its interpreter could not be started (the message
     * says why), UNAVAILABLE when the link broke, TIMEOUT or PROTOCOL as for processes.
     */
    Optional<CellEvent> next(Duration idle);

    @Override
    void close();
}
