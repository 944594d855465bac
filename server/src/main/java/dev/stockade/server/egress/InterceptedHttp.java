package dev.stockade.server.egress;

import java.io.IOException;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The request loop inside an intercepted tunnel: reads each plaintext request from the sandbox,
 * checks that it is for the tunnel's host, re-judges the destination against the current policy,
 * applies header rules and secret substitutions, records a decision (kind {@code https}) and
 * forwards it over the verified upstream TLS connection. Keep-alive is honoured; upgrades are not.
 */
final class InterceptedHttp {
    private final ProxyConnection conn;
    private final Authority tunnel;
    private final InetAddress pinned;

    InterceptedHttp(ProxyConnection conn, Authority tunnel, InetAddress pinned) {
        this.conn = conn;
        this.tunnel = tunnel;
        this.pinned = pinned;
    }

    void run(Endpoint client, Endpoint upstream) throws IOException {
        String host = tunnel.host();
        int port = tunnel.port();
        while (true) {
            conn.startHead();
            HttpHead head;
            HttpHead.RequestLine line;
            HttpBody body;
            String target;
            try {
                head = HttpHead.read(client.in());
                if (head == null) {
                    return;
                }
                line = HttpHead.RequestLine.parse(head.startLine());
                target = originTarget(line);
                String hostHeader = head.single("host");
                if (hostHeader != null && !Authority.parse(hostHeader, 443).sameAs(tunnel)) {
                    throw new HttpHead.Malformed(400, "the Host header does not match the tunnel's host " + host);
                }
                body = HttpBody.ofRequest(head, line.version());
            } catch (HttpHead.Malformed m) {
                conn.badRequest(client.out(), "https", host, port, m.status(), m.getMessage());
                return;
            }
            conn.endHead();
            NetworkPolicy policy = conn.sandbox().policy();
            EgressGate.Outcome o = conn.sandbox().proxy().gate().judge(policy, host, false, pinned, port);
            if (!o.allowed()) {
                conn.refuse(client.out(), "https", host, port, o.addressText(), o.rule(), o.reason());
                return;
            }
            List<HttpHead.Field> fields = new ArrayList<>(head.endToEnd());
            if (fields.stream().noneMatch(f -> f.is("host"))) {
                fields.addFirst(new HttpHead.Field("Host", PlainHttp.hostHeader(tunnel, 443)));
            }
            HttpExchange.Request request;
            try {
                request = HttpExchange.rewrite(conn.sandbox().secrets(), policy, "https", host, port, line.method(),
                        target, fields, body);
            } catch (Secrets.Refused r) {
                conn.refuse(client.out(), "https", host, port, o.addressText(), r.rule(), r.getMessage());
                return;
            }
            conn.record("https", host, port, o.addressText(), true, o.rule(), o.reason());
            boolean keepAlive = line.version().equals("HTTP/1.1") && !head.connectionHas("close");
            if (!HttpExchange.forward(client, upstream, request, keepAlive)) {
                return;
            }
        }
    }

    /** The origin-form target: as sent, or from an absolute https:// URL naming the tunnel's host. */
    private String originTarget(HttpHead.RequestLine line) throws HttpHead.Malformed {
        String target = line.target();
        if (line.method().equals("CONNECT")) {
            throw new HttpHead.Malformed(400, "CONNECT inside a tunnel is not supported");
        }
        if (target.startsWith("/") || (target.equals("*") && line.method().equals("OPTIONS"))) {
            return target;
        }
        if (target.toLowerCase(Locale.ROOT).startsWith("https://")) {
            String rest = target.substring("https://".length());
            int end = 0;
            while (end < rest.length() && "/?#".indexOf(rest.charAt(end)) < 0) {
                end++;
            }
            if (!Authority.parse(rest.substring(0, end), 443).sameAs(tunnel)) {
                throw new HttpHead.Malformed(400, "the URL's host does not match the tunnel's host " + tunnel.host());
            }
            String path = rest.substring(end);
            return path.isEmpty() ? "/" : path.startsWith("?") ? "/" + path : path;
        }
        throw new HttpHead.Malformed(400, "unsupported request target inside the tunnel");
    }
}
