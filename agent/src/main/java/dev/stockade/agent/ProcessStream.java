package dev.stockade.agent;

import java.time.Duration;
import java.util.Optional;

/**
 * A live view of one process's events, for one consumer thread. Closing it (from any thread)
 * detaches; the process keeps running. Output not consumed is buffered up to a bound, after which
 * the agent waits (the process blocks on its pipe) and, after a minute, drops this client.
 */
public interface ProcessStream extends AutoCloseable {
    int pid();

    /**
     * The next event, waiting at most {@code idle}; empty when nothing arrived in that time (the
     * caller may send a keepalive and call again). The first event is always
     * {@link AgentEvent.Started}. After {@link AgentEvent.Ended} the stream is done (and closed):
     * calling again throws IllegalStateException. A broken link throws AgentException (UNAVAILABLE,
     * TIMEOUT for a frame begun but never finished, PROTOCOL); the stream is then closed too.
     */
    Optional<AgentEvent> next(Duration idle);

    @Override
    void close();
}
