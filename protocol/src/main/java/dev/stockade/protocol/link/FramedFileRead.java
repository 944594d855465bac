package dev.stockade.protocol.link;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.protocol.AgentException;
import java.io.InputStream;
import java.time.Duration;
import java.util.Objects;

/**
 * A file being read from the agent: 'B' frames until an empty one, at most {@code size} bytes in
 * all (more is a PROTOCOL error; fewer means the file shrank meanwhile). Each frame must arrive
 * within the call timeout once asked for. Failures surface as AgentException from the stream.
 */
final class FramedFileRead implements FileRead {
    private final AgentConnection connection;
    private final long size;
    private final Content content;

    FramedFileRead(AgentConnection connection, long size, Duration frameTimeout) {
        this.connection = connection;
        this.size = size;
        this.content = new Content(frameTimeout);
    }

    @Override
    public long size() {
        return size;
    }

    @Override
    public InputStream content() {
        return content;
    }

    @Override
    public void close() {
        connection.close();
    }

    private final class Content extends InputStream {
        private final Duration frameTimeout;
        private byte[] chunk = new byte[0];
        private int position;
        private long received;
        private boolean finished;

        Content(Duration frameTimeout) {
            this.frameTimeout = frameTimeout;
        }

        @Override
        public int read() {
            byte[] one = new byte[1];
            int n = read(one, 0, 1);
            return n < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public int read(byte[] buffer, int offset, int length) {
            Objects.checkFromIndexSize(offset, length, buffer.length);
            if (length == 0) {
                return 0;
            }
            while (position == chunk.length) {
                if (finished || !nextChunk()) {
                    return -1;
                }
            }
            int n = Math.min(length, chunk.length - position);
            System.arraycopy(chunk, position, buffer, offset, n);
            position += n;
            return n;
        }

        @Override
        public int available() {
            return chunk.length - position;
        }

        private boolean nextChunk() {
            connection.arm(frameTimeout);
            Frame frame = connection.read(false, frameTimeout);
            connection.disarm();
            switch (frame) {
                case null -> throw new AgentException(AgentException.Code.UNAVAILABLE, "the agent at "
                        + connection.address() + " closed the connection in the middle of a file");
                case Frame.Data data when data.isEnd() -> {
                    finished = true;
                    connection.close();
                    return false;
                }
                case Frame.Data(byte[] data) -> {
                    received += data.length;
                    if (received > size) {
                        throw AgentJson.protocol("sent more than the " + size + " bytes it announced for a file");
                    }
                    chunk = data;
                    position = 0;
                    return true;
                }
                case Frame.Json(ObjectNode body) -> {
                    AgentJson.throwIfError(body);
                    throw AgentJson.protocol("a JSON frame inside file content");
                }
                default -> throw AgentJson.protocol("an output frame inside file content");
            }
        }

        @Override
        public void close() {
            FramedFileRead.this.close();
        }
    }
}
