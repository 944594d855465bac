package dev.stockade.server.egress;

import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.List;
import java.util.Map;

/**
 * The egress gate's address checks for connections the server opens itself on behalf of sandboxes — the
 * package index following an upstream page's file URLs and redirects. It judges a destination exactly as
 * the proxy judges a sandbox in open mode with no entries: the name is resolved here (the operator's host
 * overrides first, bounded in time), every address is classified by the same {@link EgressGate} (loopback,
 * link-local and cloud metadata, private and special ranges, unless the operator's {@code privateAllow}
 * covers them), and the first admitted address is returned so the caller connects to exactly that
 * address and never resolves the name again (no DNS-rebinding window).
 *
 * <p>Callers: the package index's upstream client, from the proxy's connection threads, concurrently.
 */
public final class ServerFetchGate {
    /** The policy a server-side fetch is judged under: any public address, nothing private. */
    private static final NetworkPolicy PUBLIC_ONLY = NetworkPolicy.of(NetworkPolicy.Mode.OPEN, List.of(), List.of(), Map.of());

    private final EgressGate gate;

    private ServerFetchGate(EgressGate gate) {
        this.gate = gate;
    }

    /** The gate for the operator's egress settings (the same resolver and private-range admissions as the proxy). */
    public static ServerFetchGate from(EgressConfig config) {
        return new ServerFetchGate(gate(config));
    }

    /** How the proxy and this class build a gate from the operator's settings: one place, so both judge alike. */
    static EgressGate gate(EgressConfig config) {
        return new EgressGate(new HostResolver(config.hostAddresses(), config.connectTimeout()), config.privateAllowCidrs());
    }

    /** A destination the gate refused; the message says which address and range. */
    public static final class Refused extends IOException {
        Refused(String message) {
            super(message);
        }
    }

    /**
     * Resolves {@code host} and returns the address to connect to for {@code host:port}.
     *
     * @param host a host name, an IPv4 literal or an IPv6 literal (with or without brackets)
     * @throws Refused when the name is malformed, does not resolve, or every address it has is refused
     */
    public InetSocketAddress admit(String host, int port) throws Refused {
        if (host == null || port < 1 || port > 65535) throw new Refused("no host or port to connect to");
        String bare = host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
        InetAddress literal = Cidr.parseAddress(bare);
        String normalized;
        try {
            normalized = literal != null ? Cidr.text(literal) : EgressRule.hostName(bare, bare);
        } catch (IllegalArgumentException e) {
            throw new Refused("'" + bare + "' is not a host name or IP address: " + e.getMessage());
        }
        EgressGate.Outcome o = gate.decide(PUBLIC_ONLY, normalized, literal, port);
        if (!o.allowed()) throw new Refused(normalized + ":" + port + " is refused (" + o.rule() + "): " + o.reason());
        return o.address();
    }
}
