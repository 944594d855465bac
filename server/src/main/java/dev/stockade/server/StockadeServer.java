package dev.stockade.server;

import dev.stockade.server.config.ServerConfig;
import java.net.URI;

/**
 * A running Stockade server: the public entry point for `stockade serve`, the CLI's embedded mode
 * and tests. {@link #start} returns once the server accepts requests; {@link #close} stops it and
 * ends every sandbox it started.
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

    @Override
    public void close() {
        server.close();
    }
}
