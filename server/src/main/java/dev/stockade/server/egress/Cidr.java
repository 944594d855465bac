package dev.stockade.server.egress;

import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.util.Arrays;

/**
 * An IPv4 or IPv6 prefix such as {@code 10.0.0.0/8} or {@code 2001:db8::/32}; a plain address is a
 * /32 or /128. Also the one place that turns text into an address: strictly, and never through DNS.
 *
 * <p>IPv6 prefixes that lie inside the IPv4-mapped range ({@code ::ffff:0:0/96}) are kept as the
 * IPv4 prefix they embed, because the JDK hands mapped addresses over as {@link Inet4Address}.
 */
final class Cidr {
    private final byte[] network;
    private final int prefix;

    private Cidr(byte[] network, int prefix) {
        this.network = network;
        this.prefix = prefix;
    }

    /** Parses {@code address} or {@code address/prefix}; throws IllegalArgumentException with a message. */
    static Cidr parse(String text) {
        int slash = text.indexOf('/');
        String addressText = slash < 0 ? text : text.substring(0, slash);
        InetAddress address = parseAddress(addressText);
        if (address == null) {
            throw new IllegalArgumentException("'" + text + "' is not an IP address or CIDR");
        }
        boolean mapped = address instanceof Inet4Address && addressText.indexOf(':') >= 0;
        int bits = mapped ? 128 : address.getAddress().length * 8;
        int length = bits;
        if (slash >= 0) {
            String p = text.substring(slash + 1);
            if (p.isEmpty() || p.length() > 3 || !p.chars().allMatch(c -> c >= '0' && c <= '9')
                    || (p.length() > 1 && p.charAt(0) == '0') || Integer.parseInt(p) > bits) {
                throw new IllegalArgumentException("'" + text + "' has a bad prefix length: use 0.." + bits);
            }
            length = Integer.parseInt(p);
        }
        if (mapped) {
            if (length < 96) {
                throw new IllegalArgumentException("'" + text + "': an IPv4-mapped prefix must be at least /96");
            }
            length -= 96;
        }
        Cidr cidr = of(address, length);
        if (!Arrays.equals(cidr.network, address.getAddress())) {
            throw new IllegalArgumentException("'" + text + "' has bits set after the prefix: did you mean "
                    + cidr + "?");
        }
        return cidr;
    }

    /** The prefix of the given length containing {@code address}. */
    static Cidr of(InetAddress address, int length) {
        byte[] raw = address.getAddress();
        if (address instanceof Inet6Address && length >= 96 && isMapped(raw)) {
            return of(v4(raw, 12), length - 96);
        }
        byte[] net = raw.clone();
        for (int i = 0; i < net.length * 8; i++) {
            if (i >= length) {
                net[i / 8] &= (byte) ~(0x80 >>> (i % 8));
            }
        }
        return new Cidr(net, length);
    }

    boolean contains(InetAddress address) {
        byte[] raw = address.getAddress();
        if (raw.length != network.length) {
            return false;
        }
        for (int i = 0; i < prefix; i++) {
            int mask = 0x80 >>> (i % 8);
            if ((raw[i / 8] & mask) != (network[i / 8] & mask)) {
                return false;
            }
        }
        return true;
    }

    /** Whether every address of {@code other} lies in this prefix (same family, at least as long, same bits). */
    boolean encloses(Cidr other) {
        if (other.network.length != network.length || other.prefix < prefix) {
            return false;
        }
        for (int i = 0; i < prefix; i++) {
            int mask = 0x80 >>> (i % 8);
            if ((other.network[i / 8] & mask) != (network[i / 8] & mask)) {
                return false;
            }
        }
        return true;
    }

    int prefix() {
        return prefix;
    }

    /** The network address of {@code cidr}. */
    static InetAddress address(Cidr cidr) {
        try {
            return InetAddress.getByAddress(cidr.network);
        } catch (java.net.UnknownHostException e) {
            throw new IllegalStateException(e); // 4 or 16 bytes are always an address
        }
    }

    /** The network address's bytes (a copy). */
    byte[] networkBytes() {
        return network.clone();
    }

    boolean isV4() {
        return network.length == 4;
    }

    /**
     * Parses an IP literal strictly: dotted-quad IPv4 without leading zeros, or IPv6 (no zone id,
     * brackets removed by the caller). Returns null when {@code text} is not an IP literal. Never
     * consults DNS. Note the JDK returns IPv4-mapped IPv6 literals as {@link Inet4Address}.
     */
    static InetAddress parseAddress(String text) {
        if (text.isEmpty() || text.length() > 45) {
            return null;
        }
        try {
            if (text.indexOf(':') >= 0) {
                for (int i = 0; i < text.length(); i++) {
                    char c = text.charAt(i);
                    if (!(c == ':' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
                            || (c >= 'A' && c <= 'F'))) {
                        return null;
                    }
                }
                return InetAddress.ofLiteral(text);
            }
            String[] parts = text.split("\\.", -1);
            if (parts.length != 4) {
                return null;
            }
            for (String part : parts) {
                if (part.isEmpty() || part.length() > 3 || (part.length() > 1 && part.charAt(0) == '0')
                        || !part.chars().allMatch(c -> c >= '0' && c <= '9') || Integer.parseInt(part) > 255) {
                    return null;
                }
            }
            return Inet4Address.ofLiteral(text);
        } catch (IllegalArgumentException e) {
            return null;
        }
    }

    static boolean isMapped(byte[] raw) {
        if (raw.length != 16) {
            return false;
        }
        for (int i = 0; i < 10; i++) {
            if (raw[i] != 0) {
                return false;
            }
        }
        return raw[10] == (byte) 0xff && raw[11] == (byte) 0xff;
    }

    static InetAddress v4(byte[] raw, int offset) {
        try {
            return InetAddress.getByAddress(Arrays.copyOfRange(raw, offset, offset + 4));
        } catch (java.net.UnknownHostException e) {
            throw new IllegalStateException(e); // four bytes are always an address
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof Cidr c && c.prefix == prefix && Arrays.equals(c.network, network);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(network) * 31 + prefix;
    }

    @Override
    public String toString() {
        return text(network) + "/" + prefix;
    }

    /** The canonical text of an address: dotted quad, or RFC 5952 IPv6 (longest zero run as ::). */
    static String text(InetAddress address) {
        return text(address.getAddress());
    }

    private static String text(byte[] raw) {
        if (raw.length == 4) {
            return (raw[0] & 0xff) + "." + (raw[1] & 0xff) + "." + (raw[2] & 0xff) + "." + (raw[3] & 0xff);
        }
        int[] groups = new int[8];
        for (int i = 0; i < 8; i++) {
            groups[i] = ((raw[2 * i] & 0xff) << 8) | (raw[2 * i + 1] & 0xff);
        }
        int bestStart = -1;
        int bestLength = 1;
        for (int i = 0; i < 8; ) {
            int j = i;
            while (j < 8 && groups[j] == 0) {
                j++;
            }
            if (j - i > bestLength) {
                bestStart = i;
                bestLength = j - i;
            }
            i = j == i ? i + 1 : j;
        }
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 8; i++) {
            if (i == bestStart) {
                b.append("::");
                i += bestLength - 1;
                continue;
            }
            if (!b.isEmpty() && b.charAt(b.length() - 1) != ':') {
                b.append(':');
            }
            b.append(Integer.toHexString(groups[i]));
        }
        return b.toString();
    }
}
