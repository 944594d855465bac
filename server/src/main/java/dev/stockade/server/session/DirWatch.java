package dev.stockade.server.session;

import dev.stockade.protocol.AgentException;
import dev.stockade.protocol.WatchEvent;
import dev.stockade.protocol.link.EventStream;
import dev.stockade.server.core.Sandbox;
import dev.stockade.server.error.StockadeError;
import java.time.Duration;
import java.util.Optional;

/**
 * A directory watch opened through {@link Sessions}: the changes the agent reports, with the
 * link's failures as the server's errors (saying so when the sandbox itself ended). Counts as
 * activity of its sandbox until closed; closing it ends the watch in the agent (its connection
 * closes, the agent drops its inotify watches).
 *
 * <p>For one consumer thread (the request's); {@link #close} may be called from any thread.
 */
public final class DirWatch implements AutoCloseable {
    private final Sandbox sandbox;
    private final EventStream<WatchEvent> stream;
    private final Runnable done;

    DirWatch(Sandbox sandbox, EventStream<WatchEvent> stream, Runnable done) {
        this.sandbox = sandbox;
        this.stream = stream;
        this.done = done;
    }

    /**
     * The next change, or the end when the watched directory went away, waiting at most
     * {@code idle}; empty when nothing came. Throws StockadeError when the watch failed (events
     * lost: INTERNAL) or the link broke (UNAVAILABLE, saying so when the sandbox ended).
     */
    public Optional<WatchEvent> next(Duration idle) {
        try {
            return stream.next(idle);
        } catch (AgentException e) {
            close();
            throw AgentErrors.translate(e, sandbox);
        }
    }

    @Override
    public void close() {
        stream.close();
        done.run();
    }
}
