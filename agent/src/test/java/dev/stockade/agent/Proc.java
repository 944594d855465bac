package dev.stockade.agent;

import dev.stockade.protocol.AgentEvent;
import dev.stockade.protocol.link.EventStream;
import java.time.Duration;
import java.util.Optional;

/**
 * A process's event stream with its pid at hand: the pid is read off the stream's first event
 * (Started, which the link delivers at once), and that event is still delivered by {@link #next}.
 */
final class Proc implements EventStream<AgentEvent> {
    private final EventStream<AgentEvent> stream;
    private final int pid;
    private AgentEvent.Started pending;

    private Proc(EventStream<AgentEvent> stream, AgentEvent.Started started) {
        this.stream = stream;
        this.pid = started.pid();
        this.pending = started;
    }

    static Proc of(EventStream<AgentEvent> stream) {
        AgentEvent first = stream.next(Duration.ofSeconds(1)).orElseThrow();
        return new Proc(stream, (AgentEvent.Started) first);
    }

    int pid() {
        return pid;
    }

    @Override
    public Optional<AgentEvent> next(Duration idle) {
        if (pending != null) {
            AgentEvent.Started started = pending;
            pending = null;
            return Optional.of(started);
        }
        return stream.next(idle);
    }

    @Override
    public void close() {
        stream.close();
    }
}
