package dev.stockade.sdk.internal;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.sdk.SandboxException;
import dev.stockade.sdk.StockadeException;
import dev.stockade.sdk.TimeoutException;
import java.io.IOException;
import java.io.InputStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.Objects;
import java.util.StringJoiner;

/**
 * HTTP plumbing shared by the control plane and the in-sandbox API: one {@link HttpClient}
 * (HTTP/1.1, thread-safe), the base URL, the API key, the request timeout, and the translation of
 * transport failures into the SDK's exceptions. Called from any thread.
 */
public final class Transport implements AutoCloseable {
    public static final String USER_AGENT = "stockade-java-sdk/0.1";
    private static final int MAX_ERROR_BODY = 64 * 1024;

    private final HttpClient http;
    private final URI base;
    private final String apiKey;
    private final Duration requestTimeout;

    public Transport(URI base, String apiKey, Duration requestTimeout) {
        this.base = normalise(base);
        this.apiKey = Objects.requireNonNull(apiKey, "apiKey");
        this.requestTimeout = Objects.requireNonNull(requestTimeout, "requestTimeout");
        this.http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(requestTimeout.compareTo(Duration.ofSeconds(10)) < 0 ? requestTimeout : Duration.ofSeconds(10))
                .followRedirects(HttpClient.Redirect.NEVER)
                .build();
    }

    public URI base() {
        return base;
    }

    public Duration requestTimeout() {
        return requestTimeout;
    }

    /** A control-plane request to {@code path} (which may carry a query): API key, user agent and request timeout set. */
    public HttpRequest.Builder request(String path) {
        return HttpRequest.newBuilder(URI.create(base + path))
                .timeout(requestTimeout)
                .header("User-Agent", USER_AGENT)
                .header("X-API-Key", apiKey);
    }

    /**
     * A request to a sandbox route: no API key (the control-plane key never goes to sandbox
     * routes; they take the sandbox's own token), and the request timeout only when {@code timed}.
     */
    public HttpRequest.Builder sandboxRequest(String path, boolean timed) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).header("User-Agent", USER_AGENT);
        if (timed) b.timeout(requestTimeout);
        return b;
    }

    public HttpResponse<byte[]> send(HttpRequest request, String what) {
        return send(request, HttpResponse.BodyHandlers.ofByteArray(), what);
    }

    public HttpResponse<InputStream> sendStreaming(HttpRequest request, String what) {
        return send(request, HttpResponse.BodyHandlers.ofInputStream(), what);
    }

    private <T> HttpResponse<T> send(HttpRequest request, HttpResponse.BodyHandler<T> handler, String what) {
        try {
            return http.send(request, handler);
        } catch (HttpTimeoutException e) {
            throw new TimeoutException(what + ": no answer from " + base + " within " + requestTimeout.toMillis()
                    + " ms. Check that the server is up, or raise the client's requestTimeout.", 0, e);
        } catch (ConnectException e) {
            throw new SandboxException(what + ": cannot connect to " + base + " (" + e.getMessage()
                    + "). Is the server running? Check STOCKADE_URL or the client's apiUrl.", 0, e);
        } catch (IOException e) {
            throw new SandboxException(what + ": the connection to " + base + " failed: " + e, 0, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SandboxException(what + ": interrupted", 0, e);
        }
    }

    /**
     * A control-plane call with a JSON body (or none) answering JSON (or nothing): the parsed
     * answer, a missing node for an empty one, or the mapped exception for an error status.
     */
    public JsonNode json(String method, String path, JsonNode body, String what) {
        HttpRequest.BodyPublisher publisher = body == null
                ? HttpRequest.BodyPublishers.noBody()
                : HttpRequest.BodyPublishers.ofByteArray(Json.bytes(body));
        HttpRequest.Builder b = request(path).method(method, publisher).header("Accept", "application/json");
        if (body != null) b.header("Content-Type", "application/json");
        HttpResponse<byte[]> res = send(b.build(), what);
        if (res.statusCode() / 100 != 2) throw error(res.statusCode(), res.body(), what);
        byte[] bytes = res.body();
        return bytes == null || bytes.length == 0 ? Json.MAPPER.missingNode() : Json.parse(bytes, what);
    }

    public static StockadeException error(int status, byte[] body, String what) {
        return RpcError.fromBody(status, body).toException(what);
    }

    /** Reads at most 64 KiB of an error body and closes the stream. */
    public static byte[] drainError(InputStream in) {
        try (in) {
            return in.readNBytes(MAX_ERROR_BODY);
        } catch (IOException e) {
            return new byte[0];
        }
    }

    /** Percent-encodes one path segment, so that an id like {@code ../x} stays one segment. */
    public static String segment(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20");
    }

    /** {@code ?k=v&...} with every key and value percent-encoded; null values are left out. */
    public static String query(Map<String, String> params) {
        StringJoiner j = new StringJoiner("&", "?", "");
        j.setEmptyValue("");
        params.forEach((k, v) -> {
            if (v != null) j.add(segment(k) + "=" + segment(v));
        });
        return j.toString();
    }

    private static URI normalise(URI uri) {
        Objects.requireNonNull(uri, "apiUrl");
        String s = uri.toString();
        while (s.endsWith("/")) s = s.substring(0, s.length() - 1);
        URI u = URI.create(s);
        if (u.getScheme() == null || u.getHost() == null
                || !(u.getScheme().equals("http") || u.getScheme().equals("https"))) {
            throw new IllegalArgumentException("apiUrl must be an http:// or https:// URL with a host, got '" + uri + "'");
        }
        if (u.getQuery() != null || u.getFragment() != null) {
            throw new IllegalArgumentException("apiUrl must not carry a query or fragment, got '" + uri + "'");
        }
        return u;
    }

    /** Aborts open requests and streams; the client is unusable afterwards. */
    @Override
    public void close() {
        http.shutdownNow();
    }
}
