package dev.stockade.protocol.link;

import java.io.InputStream;

/**
 * An open file read: its size as the agent saw it at open, and the bytes (at most that many;
 * fewer if the file shrank meanwhile). Reading the content throws AgentException when the link
 * fails. Close to release the connection.
 */
public interface FileRead extends AutoCloseable {
    long size();

    InputStream content();

    @Override
    void close();
}
