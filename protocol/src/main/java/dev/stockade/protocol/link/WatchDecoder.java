package dev.stockade.protocol.link;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.protocol.EntryInfo;
import dev.stockade.protocol.WatchEvent;

/**
 * A directory watch's frames: one JSON frame per change, then an end event (or an error frame).
 * Stateless.
 */
record WatchDecoder(String path) implements EventDecoder<WatchEvent> {
    /** Changes buffered for a slow consumer (the agent holds 4096 more before it gives up). */
    private static final int BUFFER_BYTES = 4 << 20;
    private static final int MAX_NAME = 8192;

    @Override
    public String what() {
        return "the watch of " + path;
    }

    @Override
    public int bufferBytes() {
        return BUFFER_BYTES;
    }

    @Override
    public void decode(Frame frame, AgentConnection connection, Sink<WatchEvent> sink) {
        if (!(frame instanceof Frame.Json(ObjectNode body))) {
            throw AgentJson.protocol("a non-JSON frame inside " + what());
        }
        AgentJson.throwIfError(body);
        String ev = AgentJson.string(body, "ev", 16, false);
        switch (ev) {
            case "fs" -> {
                WatchEvent.Changed c = changed(body, what());
                sink.hand(c, 128 + c.name().length() * 2);
            }
            case "end" -> sink.hand(new WatchEvent.Ended(AgentJson.text(body, "reason")), 128);
            default -> throw AgentJson.protocol("unexpected event '" + ev + "' in " + what());
        }
    }

    /** One change as the agent sends it: {type, name, entry?}, from {@code what} (for messages). */
    static WatchEvent.Changed changed(ObjectNode body, String what) {
        String type = AgentJson.string(body, "type", 16, false);
        WatchEvent.Kind kind = switch (type) {
            case "create" -> WatchEvent.Kind.CREATE;
            case "rename" -> WatchEvent.Kind.RENAME;
            case "chmod" -> WatchEvent.Kind.CHMOD;
            case "write" -> WatchEvent.Kind.WRITE;
            case "remove" -> WatchEvent.Kind.REMOVE;
            default -> throw AgentJson.protocol("unknown change type '" + type + "' in " + what);
        };
        String name = AgentJson.string(body, "name", MAX_NAME, false);
        EntryInfo entry = body.hasNonNull("entry") ? AgentJson.entry(body.get("entry")) : null;
        return new WatchEvent.Changed(kind, name, entry);
    }

    @Override
    public boolean isLast(WatchEvent event) {
        return event instanceof WatchEvent.Ended;
    }
}
