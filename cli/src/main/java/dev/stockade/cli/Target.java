package dev.stockade.cli;

import dev.stockade.sdk.StockadeClient;
import dev.stockade.server.StockadeServer;
import dev.stockade.server.config.ServerConfig;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Path;
import java.util.Optional;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The server a client subcommand talks to, and whatever the CLI started to have one. Resolution,
 * first match wins: {@code --server}/{@code --api-key}; {@code STOCKADE_URL}/{@code STOCKADE_API_KEY}
 * (then {@code E2B_API_URL}/{@code E2B_API_KEY}); a {@code stockade serve} running on the default
 * data directory; and, for {@code run} and {@code repl} only, an embedded server started for this one command.
 */
final class Target implements AutoCloseable {
    /** Keeps the server's loggers quiet while embedded (JUL holds loggers weakly). */
    private static final Logger SERVER_LOGS = Logger.getLogger("dev.stockade");

    private final StockadeClient client;
    private final StockadeServer embedded;
    private final DataDir.Claim claim;

    private Target(StockadeClient client, StockadeServer embedded, DataDir.Claim claim) {
        this.client = client;
        this.embedded = embedded;
        this.claim = claim;
    }

    StockadeClient client() {
        return client;
    }

    boolean isEmbedded() {
        return embedded != null;
    }

    static Target resolve(String command, Args args, Io io, boolean embeddedAllowed) throws UsageException, IOException {
        String url = first(args.value("server"), io.env("STOCKADE_URL"), io.env("E2B_API_URL"));
        String key = first(args.value("api-key"), io.env("STOCKADE_API_KEY"), io.env("E2B_API_KEY"));
        Path dir = DataDir.defaultDir(io);
        if (url == null) {
            Optional<DataDir.Advert> running = DataDir.runningServer(dir);
            if (running.isPresent()) {
                url = running.get().url().toString();
                if (key == null) key = running.get().apiKey();
            }
        }
        if (url != null) {
            if (key == null) {
                throw new UsageException(command, "no API key for " + url + ": pass --api-key or set STOCKADE_API_KEY"
                        + " (`stockade serve` prints the key it uses)");
            }
            return new Target(client(command, url, key), null, null);
        }
        if (!embeddedAllowed) {
            throw new UsageException(command, "no Stockade server: pass --server URL or set STOCKADE_URL, or start one"
                    + " with `stockade serve` (found none running on " + dir + ")");
        }
        return embedded(command, dir, key);
    }

    /**
     * Starts a server in this process on an ephemeral loopback port. It takes the default data
     * directory when free; when another embedded run holds it, a numbered slot below it, so that
     * concurrent runs never share (and so never reap) each other's sandboxes.
     */
    private static Target embedded(String command, Path dir, String key) throws IOException, UsageException {
        SERVER_LOGS.setLevel(Level.WARNING);
        DataDir.Claim claim = DataDir.tryClaim(dir).orElse(null);
        for (int slot = 1; claim == null && slot <= 64; slot++) {
            claim = DataDir.tryClaim(dir.resolve("slots").resolve(Integer.toString(slot))).orElse(null);
        }
        if (claim == null) {
            throw new IOException("every embedded-server slot under " + dir + " is in use; start a shared server with"
                    + " `stockade serve` and point STOCKADE_URL at it");
        }
        StockadeServer server;
        try {
            server = StockadeServer.start(ServerConfig.defaults(claim.dir()).withPort(0).withApiKey(key));
        } catch (RuntimeException e) {
            claim.close();
            throw e;
        }
        try {
            return new Target(client(command, server.url().toString(), server.apiKey()), server, claim);
        } catch (RuntimeException | UsageException e) {
            server.close();
            claim.close();
            throw e;
        }
    }

    private static StockadeClient client(String command, String url, String key) throws UsageException {
        try {
            URI.create(url);
            return StockadeClient.builder().apiUrl(url).apiKey(key).build();
        } catch (IllegalArgumentException | dev.stockade.sdk.InvalidArgumentException e) {
            throw new UsageException(command, "bad server URL '" + url + "': " + e.getMessage());
        }
    }

    private static String first(String... values) {
        for (String v : values) {
            if (v != null && !v.isBlank()) return v.strip();
        }
        return null;
    }

    /** Closes the client, then the embedded server (which ends its sandboxes), then the claim. */
    @Override
    public void close() {
        try {
            client.close();
        } finally {
            try {
                if (embedded != null) embedded.close();
            } finally {
                if (claim != null) claim.close();
            }
        }
    }
}
