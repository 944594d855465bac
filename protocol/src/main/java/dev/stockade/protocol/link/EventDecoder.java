package dev.stockade.protocol.link;

import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * What makes a {@link FrameEventStream} a process's or a cell's: how frames become events, which
 * event is the last, how much may wait unconsumed. Runs on the stream's reader thread only, so an
 * implementation may keep state (a cell's UTF-8 decoders).
 */
interface EventDecoder<E> {
    /** Where the events come from, for messages: "process 12", "a cell of context 3f…". */
    String what();

    /** The JSON limits for this stream's frames: the agent's usual ones unless a stream needs others. */
    default ObjectMapper mapper() {
        return AgentJson.MAPPER;
    }

    /** Bytes of events buffered between the reader and the consumer (one larger event still passes). */
    int bufferBytes();

    /**
     * Turns one frame into zero or more events handed to {@code sink}, reading continuation frames
     * from {@code connection} when the frame announces them. Throws AgentException for a frame that
     * does not belong here.
     */
    void decode(Frame frame, AgentConnection connection, Sink<E> sink);

    /** True for the stream's last event. */
    boolean isLast(E event);

    /** Receives decoded events with their approximate size in bytes (for the buffer bound). */
    interface Sink<E> {
        void hand(E event, int bytes);
    }
}
