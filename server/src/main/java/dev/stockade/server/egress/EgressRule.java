package dev.stockade.server.egress;

import java.net.InetAddress;
import java.util.Locale;

/**
 * One parsed entry of a network policy: an exact host ({@code api.example.com}), a wildcard
 * ({@code *.example.com}: subdomains at any depth, not the apex), or an IP/CIDR
 * ({@code 10.0.0.0/8}, {@code 2001:db8::/32}), each optionally with a port
 * ({@code example.com:8443}, {@code [::1]:8080}, {@code 10.0.0.0/8:443},
 * {@code [2001:db8::/32]:443}). Without a port the entry admits 80 and 443 only (for deny
 * entries: every port).
 *
 * @param text the canonical entry, as shown back to users
 * @param kind what the entry names
 * @param host the lowercase host for {@link Kind#EXACT}, the suffix after {@code *.} for
 *     {@link Kind#WILDCARD}; null for {@link Kind#ADDRESS}
 * @param cidr the prefix for {@link Kind#ADDRESS}; null otherwise
 * @param port the port, or 0 when the entry gave none
 */
record EgressRule(String text, Kind kind, String host, Cidr cidr, int port) {
    enum Kind { EXACT, WILDCARD, ADDRESS }

    static final int MAX_LENGTH = 253;

    /**
     * Parses a policy entry. Throws IllegalArgumentException with a message that names the entry.
     *
     * @param portAllowed false for header-rule patterns, which name hosts only
     */
    static EgressRule parse(String raw, boolean portAllowed) {
        if (raw == null) {
            throw new IllegalArgumentException("a network entry is null");
        }
        String entry = raw.strip();
        if (entry.isEmpty()) {
            throw new IllegalArgumentException("a network entry is empty");
        }
        if (entry.length() > MAX_LENGTH) {
            throw new IllegalArgumentException("network entry '" + shorten(entry) + "' is longer than "
                    + MAX_LENGTH + " characters");
        }
        String body = entry;
        int port = 0;
        if (entry.startsWith("[")) {
            int close = entry.indexOf(']');
            if (close < 0) {
                throw new IllegalArgumentException("network entry '" + entry + "' has '[' without ']'");
            }
            body = entry.substring(1, close);
            String rest = entry.substring(close + 1);
            if (!rest.isEmpty()) {
                if (!rest.startsWith(":")) {
                    throw new IllegalArgumentException("network entry '" + entry + "': expected ':port' after ']'");
                }
                port = parsePort(rest.substring(1), entry);
            }
            if (body.indexOf(':') < 0) {
                throw new IllegalArgumentException("network entry '" + entry + "': brackets are for IPv6 only");
            }
        } else {
            int colons = (int) entry.chars().filter(c -> c == ':').count();
            if (colons == 1) {
                int colon = entry.indexOf(':');
                body = entry.substring(0, colon);
                port = parsePort(entry.substring(colon + 1), entry);
            }
        }
        if (port != 0 && !portAllowed) {
            throw new IllegalArgumentException("'" + entry + "': header rules name hosts without a port");
        }
        String suffix = port == 0 ? "" : ":" + port;
        boolean v6 = body.indexOf(':') >= 0;
        if (v6 || looksLikeAddress(body)) {
            Cidr cidr = Cidr.parse(body);
            String shown = cidr.prefix() == (cidr.isV4() ? 32 : 128) && body.indexOf('/') < 0
                    ? cidr.toString().substring(0, cidr.toString().indexOf('/')) : cidr.toString();
            if (!portAllowed) {
                throw new IllegalArgumentException("'" + entry + "': header rules name hosts, not addresses");
            }
            String text = port == 0 ? shown : (cidr.isV4() ? shown + suffix : "[" + shown + "]" + suffix);
            return new EgressRule(text, Kind.ADDRESS, null, cidr, port);
        }
        if (body.equals("*")) {
            throw new IllegalArgumentException("'*' is not a valid entry: to admit every public address use "
                    + "0.0.0.0/0 and ::/0, or the open network mode");
        }
        if (body.startsWith("*.")) {
            String name = hostName(body.substring(2), entry);
            return new EgressRule("*." + name + suffix, Kind.WILDCARD, name, null, port);
        }
        String name = hostName(body, entry);
        return new EgressRule(name + suffix, Kind.EXACT, name, null, port);
    }

    /** Whether this entry admits {@code port}: its own port, or 80 and 443 when it has none. */
    boolean admitsPort(int p) {
        return port == 0 ? p == 80 || p == 443 : p == port;
    }

    /** Whether this entry names {@code name} (a normalized host name, never an IP literal). */
    boolean matchesName(String name) {
        return switch (kind) {
            case EXACT -> host.equals(name);
            case WILDCARD -> name.length() > host.length() + 1 && name.endsWith(host)
                    && name.charAt(name.length() - host.length() - 1) == '.';
            case ADDRESS -> false;
        };
    }

    /** Whether this address entry covers {@code address} or the IPv4 address it embeds. */
    boolean matchesAddress(InetAddress address) {
        return kind == Kind.ADDRESS
                && (cidr.contains(address) || cidr.contains(AddressRanges.effective(address)));
    }

    /**
     * Normalizes a host name: lowercase, no trailing dot, LDH labels (underscore tolerated) of at
     * most 63 characters, at most 253 in all, and a last label that is not all digits (that would
     * be a malformed IP address). Unicode is refused: IDNs must be written in punycode.
     */
    static String hostName(String raw, String context) {
        String name = raw.endsWith(".") ? raw.substring(0, raw.length() - 1) : raw;
        if (name.isEmpty()) {
            throw new IllegalArgumentException("'" + context + "' has an empty host name");
        }
        for (int i = 0; i < name.length(); i++) {
            if (name.charAt(i) > 0x7e) {
                throw new IllegalArgumentException("'" + shorten(context) + "' is not ASCII: write international "
                        + "names in punycode (xn--...)");
            }
        }
        name = name.toLowerCase(Locale.ROOT);
        if (name.length() > MAX_LENGTH) {
            throw new IllegalArgumentException("host name in '" + shorten(context) + "' is longer than 253 characters");
        }
        String[] labels = name.split("\\.", -1);
        for (String label : labels) {
            if (label.isEmpty() || label.length() > 63) {
                throw new IllegalArgumentException("'" + context + "' has an empty or over-long label");
            }
            for (int i = 0; i < label.length(); i++) {
                char c = label.charAt(i);
                boolean ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
                if (!ok) {
                    throw new IllegalArgumentException("'" + context + "' contains '" + c
                            + "': host names use letters, digits, '-' and '.' (wildcards only as a leading '*.')");
                }
            }
            if (label.startsWith("-") || label.endsWith("-")) {
                throw new IllegalArgumentException("'" + context + "' has a label starting or ending with '-'");
            }
        }
        if (labels[labels.length - 1].chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw new IllegalArgumentException("'" + context + "' is neither a host name nor a valid IP address");
        }
        return name;
    }

    private static boolean looksLikeAddress(String body) {
        return !body.isEmpty() && body.chars().allMatch(c -> (c >= '0' && c <= '9') || c == '.' || c == '/');
    }

    private static int parsePort(String text, String entry) {
        if (text.isEmpty() || text.length() > 5 || !text.chars().allMatch(c -> c >= '0' && c <= '9')
                || text.charAt(0) == '0' || Integer.parseInt(text) > 65535) {
            throw new IllegalArgumentException("network entry '" + entry + "' has a bad port: use 1..65535");
        }
        return Integer.parseInt(text);
    }

    private static String shorten(String s) {
        return s.length() > 40 ? s.substring(0, 40) + "..." : s;
    }

    @Override
    public String toString() {
        return text;
    }
}
