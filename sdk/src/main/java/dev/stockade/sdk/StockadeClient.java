package dev.stockade.sdk;

import dev.stockade.sdk.internal.ControlPlane;
import dev.stockade.sdk.internal.Transport;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A connection to one Stockade (or E2B-compatible) server: create, connect to, list and kill
 * sandboxes. Thread-safe; make one and share it. Closing it aborts open streams.
 *
 * <pre>{@code
 * try (StockadeClient client = StockadeClient.builder().build();      // STOCKADE_URL, STOCKADE_API_KEY
 *      Sandbox sandbox = client.create()) {
 *     System.out.println(sandbox.commands().run("python3 -V").stdout());
 * }
 * }</pre>
 */
public final class StockadeClient implements AutoCloseable {
    private final Transport transport;
    private final ControlPlane controlPlane;

    private StockadeClient(Transport transport) {
        this.transport = transport;
        this.controlPlane = new ControlPlane(transport);
    }

    /** A builder whose URL and key default to the environment (see {@link Builder}). */
    public static Builder builder() {
        return new Builder(System.getenv());
    }

    /** The server's base URL. */
    public URI apiUrl() {
        return transport.base();
    }

    /** Creates a sandbox with the server's defaults. */
    public Sandbox create() {
        return create(CreateOptions.defaults());
    }

    /** Creates a sandbox; it lives until {@link Sandbox#kill()}, {@link Sandbox#close()} or its timeout. */
    public Sandbox create(CreateOptions options) {
        Objects.requireNonNull(options, "options");
        return new Sandbox(this, controlPlane.create(options));
    }

    /**
     * Connects to a running sandbox by id.
     *
     * @throws NotFoundException when there is none
     */
    public Sandbox connect(String sandboxId) {
        Objects.requireNonNull(sandboxId, "sandboxId");
        return new Sandbox(this, controlPlane.connect(sandboxId));
    }

    /** The running sandboxes. */
    public List<SandboxInfo> list() {
        return controlPlane.list();
    }

    /** Kills a sandbox by id. Returns false when there was none. */
    public boolean kill(String sandboxId) {
        Objects.requireNonNull(sandboxId, "sandboxId");
        return controlPlane.kill(sandboxId);
    }

    Transport transport() {
        return transport;
    }

    ControlPlane controlPlane() {
        return controlPlane;
    }

    /** Aborts open requests and command streams. Sandboxes keep running on the server. */
    @Override
    public void close() {
        transport.close();
    }

    @Override
    public String toString() {
        return "StockadeClient[" + transport.base() + "]";
    }

    /**
     * Builds a {@link StockadeClient}. Precedence for the URL: {@link #apiUrl}, then
     * {@code STOCKADE_URL}, then {@code E2B_API_URL}; for the key: {@link #apiKey}, then
     * {@code STOCKADE_API_KEY}, then {@code E2B_API_KEY}. Not thread-safe.
     */
    public static final class Builder {
        /** The E2B SDKs' default request timeout. */
        public static final Duration DEFAULT_REQUEST_TIMEOUT = Duration.ofSeconds(60);

        private final Map<String, String> env;
        private String apiUrl;
        private String apiKey;
        private Duration requestTimeout = DEFAULT_REQUEST_TIMEOUT;

        private Builder(Map<String, String> env) {
            this.env = env;
        }

        /** The server's base URL, e.g. {@code http://127.0.0.1:49982}. */
        public Builder apiUrl(String value) {
            apiUrl = value;
            return this;
        }

        public Builder apiKey(String value) {
            apiKey = value;
            return this;
        }

        /**
         * How long a request may wait for the server's answer (for streams: for their start; for
         * uploads and downloads: for the whole transfer to begin answering). Default 60 s.
         */
        public Builder requestTimeout(Duration value) {
            Objects.requireNonNull(value, "requestTimeout");
            if (value.isNegative() || value.isZero()) {
                throw new IllegalArgumentException("requestTimeout must be positive, got " + value);
            }
            requestTimeout = value;
            return this;
        }

        /**
         * @throws InvalidArgumentException when no URL is configured or it is not an http(s) URL
         * @throws AuthenticationException when no API key is configured
         */
        public StockadeClient build() {
            String url = first(apiUrl, env.get("STOCKADE_URL"), env.get("E2B_API_URL"));
            if (url == null) {
                throw new InvalidArgumentException("no Stockade server URL: set STOCKADE_URL (or E2B_API_URL),"
                        + " or call StockadeClient.builder().apiUrl(...)");
            }
            String key = first(apiKey, env.get("STOCKADE_API_KEY"), env.get("E2B_API_KEY"));
            if (key == null) {
                throw new AuthenticationException("no API key: set STOCKADE_API_KEY (or E2B_API_KEY), or call"
                        + " StockadeClient.builder().apiKey(...). `stockade serve` prints the key it uses.");
            }
            URI uri;
            try {
                uri = URI.create(url.strip());
                return new StockadeClient(new Transport(uri, key.strip(), requestTimeout));
            } catch (IllegalArgumentException e) {
                throw new InvalidArgumentException("bad server URL '" + url + "': " + e.getMessage(), 0, e);
            }
        }

        private static String first(String... values) {
            for (String v : values) {
                if (v != null && !v.isBlank()) return v;
            }
            return null;
        }
    }
}
