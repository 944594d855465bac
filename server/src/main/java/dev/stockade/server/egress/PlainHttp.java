package dev.stockade.server.egress;

import java.io.IOException;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;

/**
 * A plain-HTTP request through the proxy ({@code GET http://host/path HTTP/1.1}): internal sites
 * are served directly; anything else is decided, sent to the pinned address in origin form with
 * {@code Connection: close}, and answered. One request per proxy connection: after the request's
 * own body the client is not read again, so a pipelined second request never reaches anyone.
 */
final class PlainHttp {
    private final ProxyConnection conn;

    PlainHttp(ProxyConnection conn) {
        this.conn = conn;
    }

    void serve(HttpHead.RequestLine line, HttpHead head) throws IOException {
        String rest = line.target().substring("http://".length());
        int end = 0;
        while (end < rest.length() && "/?#".indexOf(rest.charAt(end)) < 0) {
            end++;
        }
        String authorityText = rest.substring(0, end);
        String path = rest.substring(end);
        int fragment = path.indexOf('#');
        path = fragment >= 0 ? path.substring(0, fragment) : path;
        String origin = path.isEmpty() ? "/" : path.startsWith("?") ? "/" + path : path;
        Authority a;
        HttpBody body;
        try {
            a = Authority.parse(authorityText, 80);
        } catch (HttpHead.Malformed m) {
            conn.badRequest("?", 0, m.status(), m.getMessage());
            return;
        }
        InternalSite site = a.literal() == null ? conn.sandbox().proxy().site(a.host()) : null;
        if (site != null && a.port() == 80) {
            new InternalRoute(conn).serve(site, line.method(), origin, head);
            return;
        }
        try {
            String hostHeader = head.single("host");
            if (hostHeader != null && !Authority.parse(hostHeader, 80).sameAs(a)) {
                conn.badRequest(a.host(), a.port(), 400, "the Host header does not match the URL's host "
                        + a.host() + ":" + a.port());
                return;
            }
            body = HttpBody.ofRequest(head, line.version());
        } catch (HttpHead.Malformed m) {
            conn.badRequest(a.host(), a.port(), m.status(), m.getMessage());
            return;
        }
        NetworkPolicy policy = conn.sandbox().policy();
        EgressGate.Outcome o = conn.sandbox().proxy().gate().decide(policy, a.host(), a.literal(), a.port());
        if (!o.allowed()) {
            conn.refuse(conn.client().out(), "http", a.host(), a.port(), o.addressText(), o.rule(), o.reason());
            return;
        }
        List<HttpHead.Field> fields = new ArrayList<>(head.endToEnd());
        if (fields.stream().noneMatch(f -> f.is("host"))) {
            fields.addFirst(new HttpHead.Field("Host", hostHeader(a, 80)));
        }
        HttpExchange.Request request;
        try {
            request = HttpExchange.rewrite(conn.sandbox().secrets(), policy, "http", a.host(), a.port(), line.method(),
                    origin, fields, body);
        } catch (Secrets.Refused r) {
            conn.refuse(conn.client().out(), "http", a.host(), a.port(), o.addressText(), r.rule(), r.getMessage());
            return;
        }
        Socket socket;
        try {
            socket = HttpExchange.connect(o.address(), conn.sandbox().proxy().config().connectTimeout());
        } catch (IOException e) {
            String why = "upstream failed: " + o.addressText() + " port " + a.port() + ": " + e.getMessage();
            conn.record("http", a.host(), a.port(), o.addressText(), true, o.rule(), why);
            Responses.error(conn.client().out(), 502, why);
            return;
        }
        conn.own(socket);
        conn.record("http", a.host(), a.port(), o.addressText(), true, o.rule(), o.reason());
        conn.endHead();
        conn.establish(new ProxyConnection.Destination("http", a.host(), a.literal(), a.port(),
                o.address().getAddress()), policy);
        Endpoint upstream = Endpoint.of(socket, conn::touch);
        HttpExchange.forward(conn.client(), upstream, request, false);
    }

    /** The Host header value for an authority: brackets for IPv6, the port unless it is the default. */
    static String hostHeader(Authority a, int defaultPort) {
        String h = a.literal() instanceof java.net.Inet6Address ? "[" + a.host() + "]" : a.host();
        return a.port() == defaultPort ? h : h + ":" + a.port();
    }
}
