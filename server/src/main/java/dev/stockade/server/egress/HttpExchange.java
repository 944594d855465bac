package dev.stockade.server.egress;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Forwards one HTTP/1.1 request upstream and its response back, for plain HTTP and for requests
 * inside intercepted TLS. The request body is copied by its own framing on a second virtual thread
 * (so {@code 100 Continue} and early answers flow back while it uploads); the response is read
 * with the same bounds as requests and re-framed by the proxy.
 */
final class HttpExchange {
    private HttpExchange() {}

    /**
     * A request ready to send: origin-form target and end-to-end fields, already rewritten.
     */
    record Request(String method, String target, List<HttpHead.Field> fields, HttpBody body) {}

    /**
     * Applies the destination's header rules (set or replace), then replaces secret placeholders in
     * the target and every header value; a placeholder in a header name is refused. Bodies are never
     * rewritten.
     *
     * @param scheme {@code http} or {@code https}: how the request leaves the host (secrets bind it)
     * @throws Secrets.Refused if a placeholder may not go to {@code scheme://host:port}
     */
    static Request rewrite(Secrets secrets, NetworkPolicy policy, String scheme, String host, int port, String method,
                           String target, List<HttpHead.Field> fields, HttpBody body) throws Secrets.Refused {
        List<HttpHead.Field> out = new ArrayList<>(fields);
        Map<String, String> rules = policy.headersFor(host);
        if (!rules.isEmpty()) {
            out.removeIf(f -> rules.keySet().stream().anyMatch(name -> f.name().equalsIgnoreCase(name)));
            rules.forEach((name, value) -> out.add(new HttpHead.Field(name, value)));
        }
        List<HttpHead.Field> substituted = new ArrayList<>(out.size());
        for (HttpHead.Field f : out) {
            // Substituted in values only: a placeholder in a name is refused, never passed on as is
            // (issue 15, finding 7; chunked trailers: HttpBody).
            if (f.name().toLowerCase(java.util.Locale.ROOT).contains(SecretBinding.PREFIX)) {
                throw new Secrets.Refused(null, "a secret placeholder in a header name is never substituted: refused");
            }
            substituted.add(new HttpHead.Field(f.name(), secrets.apply(f.value(), scheme, host, port)));
        }
        return new Request(method, secrets.apply(target, scheme, host, port), substituted, body);
    }

    /** Connects to the pinned address within {@code timeout}. */
    static Socket connect(InetSocketAddress address, Duration timeout) throws IOException {
        Socket socket = new Socket();
        try {
            socket.connect(address, (int) Math.min(Integer.MAX_VALUE, timeout.toMillis()));
            socket.setTcpNoDelay(true);
            return socket;
        } catch (IOException e) {
            socket.close();
            throw e;
        }
    }

    /**
     * Sends {@code request} and relays the response.
     *
     * @param keepAlive whether the client side may carry another request afterwards; when false
     *     both sides are told {@code Connection: close}
     * @return whether both connections may carry another exchange
     */
    static boolean forward(Endpoint client, Endpoint upstream, Request request, boolean keepAlive)
            throws IOException {
        List<HttpHead.Field> fields = new ArrayList<>(request.fields());
        if (!keepAlive) {
            fields.add(new HttpHead.Field("Connection", "close"));
        }
        HttpHead.write(upstream.out(), request.method() + " " + request.target() + " HTTP/1.1", fields);
        AtomicReference<IOException> bodyError = new AtomicReference<>();
        Thread uploader = null;
        if (!(request.body() instanceof HttpBody.None)) {
            uploader = Thread.ofVirtual().name("egress-upload").start(() -> {
                try {
                    request.body().copy(client.in(), upstream.out());
                } catch (IOException e) {
                    bodyError.set(e);
                    upstream.close(); // the upstream must not wait for the rest of a broken body
                }
            });
        }
        boolean answered = false;
        try {
            while (true) {
                HttpHead response = HttpHead.read(upstream.in());
                if (response == null) {
                    throw new IOException("the upstream closed without answering");
                }
                int status = status(response.startLine());
                if (status == 101) {
                    throw new HttpHead.Malformed(502, "the upstream switched protocols, which the proxy does not relay");
                }
                if (status / 100 == 1) {
                    HttpHead.write(client.out(), response.startLine(), response.endToEnd());
                    continue;
                }
                HttpBody body = HttpBody.ofResponse(response, request.method(), status);
                boolean reuse = keepAlive && !(body instanceof HttpBody.UntilClose)
                        && !response.connectionHas("close") && response.startLine().startsWith("HTTP/1.1 ");
                List<HttpHead.Field> back = new ArrayList<>(response.endToEnd());
                if (!reuse) {
                    back.add(new HttpHead.Field("Connection", "close"));
                }
                answered = true;
                HttpHead.write(client.out(), response.startLine(), back);
                body.copy(upstream.in(), client.out());
                if (uploader != null && reuse) {
                    uploader.join();
                }
                return reuse && bodyError.get() == null;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        } catch (IOException e) {
            if (!answered) {
                IOException cause = bodyError.get();
                if (cause instanceof HttpHead.Malformed m) {
                    Responses.error(client.out(), m.status(), "bad request body: " + m.getMessage());
                } else if (cause == null) {
                    Responses.error(client.out(), 502, "the upstream sent no valid response: " + e.getMessage());
                }
            }
            return false;
        }
    }

    private static int status(String line) throws HttpHead.Malformed {
        if ((line.startsWith("HTTP/1.1 ") || line.startsWith("HTTP/1.0 ")) && line.length() >= 12
                && (line.length() == 12 || line.charAt(12) == ' ')) {
            String code = line.substring(9, 12);
            if (code.chars().allMatch(c -> c >= '0' && c <= '9') && code.charAt(0) != '0') {
                return Integer.parseInt(code);
            }
        }
        throw new HttpHead.Malformed(502, "malformed status line");
    }
}
