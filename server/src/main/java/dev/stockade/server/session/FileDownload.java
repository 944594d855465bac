package dev.stockade.server.session;

import dev.stockade.protocol.AgentException;
import dev.stockade.protocol.link.FileRead;
import dev.stockade.server.core.Sandbox;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;

/**
 * A file being read out of a sandbox through {@link Sessions}: its size as the agent saw it at open
 * and its bytes, whose stream throws StockadeError (not the link's AgentException) when the link
 * fails mid-way. Counts as activity of its sandbox until closed. For one thread.
 */
public final class FileDownload implements AutoCloseable {
    private final FileRead read;
    private final Runnable done;
    private final InputStream content;

    FileDownload(Sandbox sandbox, FileRead read, Runnable done) {
        this.read = read;
        this.done = done;
        this.content = new FilterInputStream(read.content()) {
            @Override
            public int read() throws IOException {
                try {
                    return super.read();
                } catch (AgentException e) {
                    throw AgentErrors.translate(e, sandbox);
                }
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                try {
                    return super.read(b, off, len);
                } catch (AgentException e) {
                    throw AgentErrors.translate(e, sandbox);
                }
            }

            @Override
            public void close() {
                FileDownload.this.close();
            }
        };
    }

    public long size() {
        return read.size();
    }

    public InputStream content() {
        return content;
    }

    @Override
    public void close() {
        read.close();
        done.run();
    }
}
