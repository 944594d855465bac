package dev.stockade.server.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.server.error.StockadeError;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/**
 * Connect protocol envelopes for server-streaming RPCs with the JSON codec: a flag byte (0 =
 * message, 2 = end of stream), a 4-byte big-endian length, then the JSON. Every frame is flushed at
 * once: a buffered frame is a background command that hangs in the SDK.
 */
final class ConnectFrames {
    static final int FLAG_END = 0x02;
    static final int FLAG_COMPRESSED = 0x01;

    private ConnectFrames() {}

    /** The single message of a streaming request body. */
    static JsonNode readRequest(byte[] body, ObjectMapper json) {
        if (body.length < 5) throw StockadeError.invalid("the Connect request must be one enveloped message (5-byte prefix)");
        int flags = body[0] & 0xff;
        if ((flags & FLAG_COMPRESSED) != 0) throw StockadeError.invalid("compressed Connect messages are not supported");
        if (flags != 0) throw StockadeError.invalid("the Connect request must be one message envelope (flags 0), got flags " + flags);
        long len = ((body[1] & 0xffL) << 24) | ((body[2] & 0xff) << 16) | ((body[3] & 0xff) << 8) | (body[4] & 0xff);
        if (len != body.length - 5) {
            throw StockadeError.invalid("the Connect envelope says " + len + " bytes but " + (body.length - 5) + " followed");
        }
        return parse(json, body, 5, (int) len);
    }

    private static JsonNode parse(ObjectMapper json, byte[] bytes, int offset, int length) {
        try {
            JsonNode n = json.readTree(bytes, offset, length);
            if (n == null || !n.isObject()) throw StockadeError.invalid("the Connect message must be a JSON object");
            return n;
        } catch (IOException e) {
            throw StockadeError.invalid("the Connect message is not valid JSON: " + e.getMessage());
        }
    }

    /**
     * The next message of a client stream (a request body of envelopes), at most {@code max} bytes;
     * null at the end of the body (or at an end-of-stream envelope).
     */
    static JsonNode readMessage(InputStream in, ObjectMapper json, int max) throws IOException {
        byte[] head = in.readNBytes(5);
        if (head.length == 0) return null;
        if (head.length < 5) throw StockadeError.invalid("the Connect stream ended inside an envelope prefix");
        int flags = head[0] & 0xff;
        if ((flags & FLAG_COMPRESSED) != 0) throw StockadeError.invalid("compressed Connect messages are not supported");
        long len = ((head[1] & 0xffL) << 24) | ((head[2] & 0xff) << 16) | ((head[3] & 0xff) << 8) | (head[4] & 0xff);
        if (len > max) throw Request.tooLarge(max);
        byte[] payload = in.readNBytes((int) len);
        if (payload.length < len) throw StockadeError.invalid("the Connect stream ended inside a message");
        if ((flags & FLAG_END) != 0) return null;
        return parse(json, payload, 0, payload.length);
    }

    static void write(OutputStream out, int flags, byte[] payload) throws IOException {
        byte[] head = {(byte) flags, (byte) (payload.length >>> 24), (byte) (payload.length >>> 16),
                (byte) (payload.length >>> 8), (byte) payload.length};
        out.write(head);
        out.write(payload);
        out.flush();
    }

    static void message(OutputStream out, ObjectMapper json, JsonNode msg) throws IOException {
        write(out, 0, json.writeValueAsBytes(msg));
    }

    /** Answers 200 with the stream's content type (a Connect stream always does) and returns its body. */
    static OutputStream begin(Request r) throws IOException {
        r.setResponseHeader("Content-Type", "application/connect+json");
        return r.respond(200, 0);
    }

    /** A stream refused before its first message: 200, then only the end-of-stream carrying {@code error}. */
    static void refuse(Request r, StockadeError error) throws IOException {
        try (OutputStream out = begin(r)) {
            end(out, r.json, error);
        }
    }

    static void end(OutputStream out, ObjectMapper json, StockadeError error) throws IOException {
        var end = json.createObjectNode();
        if (error != null) {
            var e = end.putObject("error");
            e.put("code", Errors.connectCode(error.code()));
            e.put("message", dev.stockade.server.error.HostPaths.scrub(error.getMessage()));
        }
        write(out, FLAG_END, json.writeValueAsBytes(end));
    }
}
