package dev.stockade.server.egress;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Serves a request for an {@link InternalSite} (e.g. {@code http://pypi.stockade/simple/...}) whatever
 * the sandbox's network mode: the site has its own policy and records its own decisions, to which
 * the proxy adds the connection's reported pid and uid. The request body is not read; the answer
 * carries Content-Length (or ends by closing) and {@code Connection: close}.
 */
final class InternalRoute {
    private final ProxyConnection conn;

    InternalRoute(ProxyConnection conn) {
        this.conn = conn;
    }

    void serve(InternalSite site, String method, String origin, HttpHead head) throws IOException {
        Map<String, String> headers = new HashMap<>();
        for (HttpHead.Field f : head.fields()) {
            headers.put(f.name().toLowerCase(Locale.ROOT), f.value());
        }
        conn.endHead();
        SandboxEgress sandbox = conn.sandbox();
        InternalResponse response;
        try {
            response = site.handle(sandbox.sandboxId(), new InternalRequest(method, origin, headers),
                    d -> sandbox.record(conn.withIdentity(d)));
        } catch (IOException | RuntimeException e) {
            Responses.error(conn.client().out(), 502, "the internal site " + site.host() + " failed: " + e.getMessage());
            return;
        }
        OutputStream out = conn.client().out();
        try (InputStream body = response.body()) {
            int status = response.status();
            if (status < 100 || status > 599) {
                Responses.error(out, 502, "the internal site " + site.host() + " answered status " + status);
                return;
            }
            List<HttpHead.Field> fields = new ArrayList<>();
            for (Map.Entry<String, String> h : response.headers().entrySet()) {
                String name = h.getKey().toLowerCase(Locale.ROOT);
                if (name.equals("content-length") || h.getKey().equalsIgnoreCase(InternalResponse.REASON_HEADER) || name.equals("transfer-encoding") || name.equals("connection")
                        || name.equals("keep-alive") || !HttpHead.isToken(h.getKey())
                        || !HttpHead.isFieldValue(h.getValue())) {
                    continue;
                }
                fields.add(new HttpHead.Field(h.getKey(), h.getValue()));
            }
            if (response.length() >= 0) {
                fields.add(new HttpHead.Field("Content-Length", Long.toString(response.length())));
            }
            fields.add(new HttpHead.Field("Connection", "close"));
            // A site may explain a refusal in its own reason phrase: pip prints the phrase of a failed
            // download (and hides the body), so that is where "not allowed by the package policy" must be.
            String phrase = response.headers().get(InternalResponse.REASON_HEADER);
            phrase = phrase == null || phrase.isBlank() ? Responses.reason(status) : Responses.printable(phrase);
            HttpHead.write(out, "HTTP/1.1 " + status + " " + phrase, fields);
            if (!method.equals("HEAD") && body != null) {
                if (response.length() >= 0) {
                    new HttpBody.Fixed(response.length()).copy(body, out);
                } else {
                    body.transferTo(out);
                }
            }
            out.flush();
        }
    }
}
