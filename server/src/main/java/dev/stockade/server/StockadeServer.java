package dev.stockade.server;

import dev.stockade.server.config.ServerConfig;
import java.net.URI;

/**
 * A running Stockade server: the public entry point for `stockade serve`, the CLI's embedded mode
 * and tests. {@link #start} returns once the server accepts requests (having taken over the
 * sandboxes an earlier server left running on its data directory); {@link #close} stops it and ends
 * every sandbox; {@link #stopLeavingSandboxes} stops it and leaves them to the next server.
 */
public final class StockadeServer implements AutoCloseable {
    private final Server server;

    private StockadeServer(Server server) {
        this.server = server;
    }

    public static StockadeServer start(ServerConfig config) {
        return new StockadeServer(Server.start(config));
    }

    public int port() {
        return server.port();
    }

    public URI url() {
        return URI.create("http://" + server.host() + ":" + server.port());
    }

    public String apiKey() {
        return server.apiKey();
    }

    /** Blocks until {@link #close} is called from another thread (or a shutdown hook). */
    public void awaitClose() throws InterruptedException {
        server.awaitClose();
    }

    /** Stops the server and ends every sandbox it runs. */
    @Override
    public void close() {
        server.close();
    }

    /**
     * An orderly stop that keeps the sandboxes: no new requests, those running may finish for up to
     * {@code graceSeconds}, and the sandboxes go on running, recorded in the data directory, for the
     * next server there to take over (docs/RELIABILITY.md). Returns how many were left running.
     */
    public int stopLeavingSandboxes(int graceSeconds) {
        return server.stop(false, graceSeconds);
    }
}
