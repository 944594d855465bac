package dev.stockade.protocol.link;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.protocol.AgentEvent;

/**
 * A process's frames: stdout and stderr chunks (or a terminal's output) as they are, then the end
 * event. Stateless.
 */
record ProcessDecoder(int pid) implements EventDecoder<AgentEvent> {
    /** Output buffered for a slow consumer: 16 full frames. */
    private static final int BUFFER_BYTES = 16 << 20;
    /** What an event without data counts for in the buffer bound. */
    private static final int EVENT_BYTES = 64;

    @Override
    public String what() {
        return "process " + pid;
    }

    @Override
    public int bufferBytes() {
        return BUFFER_BYTES;
    }

    @Override
    public void decode(Frame frame, AgentConnection connection, Sink<AgentEvent> sink) {
        switch (frame) {
            case Frame.Stdout(byte[] data) -> sink.hand(new AgentEvent.Stdout(data), Math.max(EVENT_BYTES, data.length));
            case Frame.Stderr(byte[] data) -> sink.hand(new AgentEvent.Stderr(data), Math.max(EVENT_BYTES, data.length));
            case Frame.Terminal(byte[] data) -> sink.hand(new AgentEvent.Terminal(data), Math.max(EVENT_BYTES, data.length));
            case Frame.Json(ObjectNode body) -> {
                AgentJson.throwIfError(body);
                if (!"end".equals(AgentJson.string(body, "ev", 16, false))) {
                    throw AgentJson.protocol("unexpected event in a process stream: " + body.get("ev"));
                }
                sink.hand(AgentJson.ended(body), EVENT_BYTES);
            }
            case Frame.Data d -> throw AgentJson.protocol("a data frame inside the stream of process " + pid);
        }
    }

    @Override
    public boolean isLast(AgentEvent event) {
        return event instanceof AgentEvent.Ended;
    }
}
