package dev.stockade.server.egress;

import java.io.EOFException;
import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/**
 * A CONNECT tunnel: decided like any destination, then answered 200, then its first bytes must
 * be a TLS ClientHello whose SNI (if any) matches the CONNECT host; an IP-literal CONNECT with a
 * host name in SNI is domain fronting and refused. Tunnels to hosts with secrets or header rules
 * are intercepted ({@link InterceptedHttp}); all others are spliced untouched to the pinned address.
 */
final class ConnectTunnel {
    private final ProxyConnection conn;

    ConnectTunnel(ProxyConnection conn) {
        this.conn = conn;
    }

    void serve(HttpHead.RequestLine line, HttpHead head) throws IOException {
        Authority a;
        try {
            a = Authority.parse(line.target(), 0);
        } catch (HttpHead.Malformed m) {
            conn.badRequest(conn.client().out(), "connect", "?", 0, m.status(), m.getMessage());
            return;
        }
        SandboxEgress sandbox = conn.sandbox();
        EgressProxy proxy = sandbox.proxy();
        NetworkPolicy policy = sandbox.policy();
        EgressGate.Outcome o = proxy.gate().decide(policy, a.host(), a.literal(), a.port());
        if (!o.allowed()) {
            conn.refuse(conn.client().out(), "connect", a.host(), a.port(), o.addressText(), o.rule(), o.reason());
            return;
        }
        boolean intercept = a.literal() == null
                && (sandbox.secrets().boundTo(a.host()) || !policy.headersFor(a.host()).isEmpty());
        if (intercept && proxy.tls() == null) {
            conn.refuse(conn.client().out(), "connect", a.host(), a.port(), o.addressText(), "tls-interception",
                    "requests to " + a.host() + " must be rewritten (a secret or header rule is bound to it) but "
                            + "this server has no TLS interception configured");
            return;
        }
        Socket upstream = null;
        if (!intercept) {
            try {
                upstream = HttpExchange.connect(o.address(), proxy.config().connectTimeout());
            } catch (IOException e) {
                String why = "upstream failed: " + o.addressText() + " port " + a.port() + ": " + e.getMessage();
                conn.record("connect", a.host(), a.port(), o.addressText(), true, o.rule(), why);
                Responses.error(conn.client().out(), 502, why);
                return;
            }
            conn.own(upstream);
        }
        conn.client().out().write("HTTP/1.1 200 Connection Established\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
        conn.client().out().flush();
        ClientHello hello;
        try {
            hello = ClientHello.read(conn.client().in());
        } catch (ClientHello.NotTls e) {
            refuseTunnel(a, o, "tls-only", "CONNECT carries TLS only: " + e.getMessage());
            return;
        } catch (EOFException e) {
            refuseTunnel(a, o, "tls-only", "CONNECT carries TLS only: the client sent no ClientHello");
            return;
        }
        String sni = hello.sni();
        if (sni != null && a.literal() != null) {
            refuseTunnel(a, o, "sni", "SNI " + sni + " names a host but CONNECT named the address " + a.host()
                    + " (domain fronting)");
            return;
        }
        if (sni != null && !sni.equals(a.host())) {
            refuseTunnel(a, o, "sni", "SNI " + sni + " does not match CONNECT host " + a.host());
            return;
        }
        conn.endHead();
        ProxyConnection.Destination destination = new ProxyConnection.Destination("connect", a.host(), a.literal(),
                a.port(), o.address().getAddress());
        if (!intercept) {
            conn.record("connect", a.host(), a.port(), o.addressText(), true, o.rule(), o.reason());
            conn.establish(destination, policy);
            Endpoint up = Endpoint.of(upstream, conn::touch);
            up.out().write(hello.prefix());
            up.out().flush();
            Splice.run(conn.client(), up);
            return;
        }
        Endpoint plainClient;
        Endpoint plainUpstream;
        try {
            Socket clientTls = proxy.tls().serverSide(conn.client().asSocket(), hello.prefix(), a.host());
            conn.own(clientTls);
            Socket upstreamTls = proxy.tls().clientSide(o.address(), a.host(),
                    (int) Math.min(Integer.MAX_VALUE, proxy.config().connectTimeout().toMillis()));
            conn.own(upstreamTls);
            plainClient = Endpoint.of(clientTls, conn::touch);
            plainUpstream = Endpoint.of(upstreamTls, conn::touch);
        } catch (IOException e) {
            conn.record("connect", a.host(), a.port(), o.addressText(), true, o.rule(),
                    "upstream failed: intercepted TLS to " + a.host() + ": " + e.getMessage());
            return;
        }
        conn.record("connect", a.host(), a.port(), o.addressText(), true, o.rule(),
                o.reason() + "; intercepted (secrets or header rules apply to " + a.host() + ")");
        conn.establish(destination, policy);
        new InterceptedHttp(conn, a, o.address().getAddress()).run(plainClient, plainUpstream);
    }

    /** After the 200: no HTTP answer is possible any more, so record and close. */
    private void refuseTunnel(Authority a, EgressGate.Outcome o, String rule, String reason) {
        conn.record("connect", a.host(), a.port(), o.addressText(), false, rule, reason);
        conn.close();
    }
}
