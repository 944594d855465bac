package dev.stockade.server.egress;

import java.net.InetAddress;

/**
 * A destination as the sandbox wrote it ({@code host}, {@code host:port}, {@code [v6]:port}),
 * normalized: lowercase name without trailing dot, or an IP literal in canonical text.
 *
 * @param host the normalized host
 * @param literal the address when {@code host} is an IP literal, else null
 * @param port the port (the default when none was written)
 */
record Authority(String host, InetAddress literal, int port) {
    /**
     * Parses an authority.
     *
     * @param defaultPort the port when none is written; 0 means a port is required
     */
    static Authority parse(String text, int defaultPort) throws HttpHead.Malformed {
        if (text.isEmpty() || text.length() > 300 || text.indexOf('@') >= 0) {
            throw new HttpHead.Malformed(400, text.indexOf('@') >= 0
                    ? "credentials in proxy URLs are not supported" : "a bad host");
        }
        String hostPart;
        String portPart = null;
        if (text.startsWith("[")) {
            int close = text.indexOf(']');
            if (close < 0) {
                throw new HttpHead.Malformed(400, "a bad IPv6 host");
            }
            hostPart = text.substring(1, close);
            String rest = text.substring(close + 1);
            if (!rest.isEmpty()) {
                if (!rest.startsWith(":")) {
                    throw new HttpHead.Malformed(400, "a bad IPv6 host");
                }
                portPart = rest.substring(1);
            }
            if (hostPart.indexOf(':') < 0) {
                throw new HttpHead.Malformed(400, "brackets are for IPv6 addresses only");
            }
        } else {
            int colon = text.lastIndexOf(':');
            if (text.indexOf(':') != colon) {
                throw new HttpHead.Malformed(400, "IPv6 addresses must be written in brackets");
            }
            hostPart = colon < 0 ? text : text.substring(0, colon);
            portPart = colon < 0 ? null : text.substring(colon + 1);
        }
        int port;
        if (portPart == null) {
            if (defaultPort == 0) {
                throw new HttpHead.Malformed(400, "CONNECT needs host:port");
            }
            port = defaultPort;
        } else {
            if (portPart.isEmpty() || portPart.length() > 5 || !portPart.chars().allMatch(c -> c >= '0' && c <= '9')
                    || Integer.parseInt(portPart) < 1 || Integer.parseInt(portPart) > 65535) {
                throw new HttpHead.Malformed(400, "a bad port");
            }
            port = Integer.parseInt(portPart);
        }
        InetAddress literal = Cidr.parseAddress(hostPart);
        if (literal != null) {
            return new Authority(Cidr.text(literal), literal, port);
        }
        if (hostPart.indexOf(':') >= 0) {
            throw new HttpHead.Malformed(400, "a bad IPv6 address");
        }
        try {
            return new Authority(EgressRule.hostName(hostPart, hostPart), null, port);
        } catch (IllegalArgumentException e) {
            throw new HttpHead.Malformed(400, "bad host: " + e.getMessage());
        }
    }

    /** Whether {@code other} names the same host and port. */
    boolean sameAs(Authority other) {
        return host.equals(other.host) && port == other.port;
    }
}
