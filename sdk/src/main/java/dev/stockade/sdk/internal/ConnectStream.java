package dev.stockade.sdk.internal;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.sdk.NotFoundException;
import dev.stockade.sdk.SandboxException;
import java.io.IOException;
import java.io.InputStream;

/**
 * The response side of one Connect server-streaming call: JSON messages as they arrive, then the
 * end-of-stream frame, whose error (if any) is thrown as the SDK's exception. Read by one thread;
 * {@link #close()} may come from any thread and unblocks a pending read.
 */
public final class ConnectStream implements AutoCloseable {
    private final InputStream body;
    private final EnvelopeReader reader;
    private final String what;
    private volatile boolean closed;
    private boolean messageSeen;

    public ConnectStream(InputStream body, String what) {
        this(body, new EnvelopeReader(body), what);
    }

    ConnectStream(InputStream body, EnvelopeReader reader, String what) {
        this.body = body;
        this.reader = reader;
        this.what = what;
    }

    /**
     * The next message, or null after a clean end of stream.
     *
     * @throws dev.stockade.sdk.StockadeException the error the server ended the stream with, a
     *     malformed frame, or a broken connection
     */
    public JsonNode next() {
        Envelope e;
        try {
            e = reader.next();
        } catch (IOException ex) {
            throw new SandboxException(what + ": " + (closed ? "the stream was closed" : "the connection broke: " + ex), 0, ex);
        }
        if (e == null) {
            throw new SandboxException(what + ": the server closed the stream without ending it"
                    + " (the server may have restarted or the connection dropped)", 0, null);
        }
        JsonNode message = e.payload().length == 0 ? Json.object() : Json.parse(e.payload(), what);
        if (e.endStream()) {
            JsonNode error = message.get("error");
            if (error != null && error.isObject()) {
                RpcError rpc = RpcError.fromEndOfStream(error);
                // As in the E2B SDKs: "unavailable" before anything else means the sandbox is gone.
                if (!messageSeen && rpc.is("unavailable")) {
                    throw new NotFoundException(what + ": the sandbox was not found: it has ended (killed or timed out)"
                            + " or never existed (" + rpc.message() + ")", 0, null);
                }
                throw rpc.toException(what);
            }
            return null;
        }
        messageSeen = true;
        return message;
    }

    public boolean isClosed() {
        return closed;
    }

    @Override
    public void close() {
        closed = true;
        try {
            body.close();
        } catch (IOException ignored) {
            // closing is best effort: the connection is dropped either way
        }
    }
}
