package dev.stockade.server.egress;

import java.net.Inet6Address;
import java.net.InetAddress;
import java.util.List;
import java.util.Optional;

/**
 * Private and special address ranges: the operator's assets (the host itself, its networks, the
 * cloud's metadata service). A sandbox reaches an address in them only where the operator's
 * {@code privateAllow} ({@code --egress-private}) covers it and the sandbox's policy admits it; a
 * sandbox's own allow entries never open them (issue 15), and neither does a host name, so DNS
 * rebinding ({@code evil.com → 10.0.0.5}) gets nowhere.
 *
 * <p>IPv6 forms that embed an IPv4 address are judged by that address too: IPv4-mapped
 * ({@code ::ffff:0:0/96}), IPv4-compatible ({@code ::/96}, {@code [::127.0.0.1]}), NAT64
 * ({@code 64:ff9b::/96}, so {@code 64:ff9b::a00:5} is refused as {@code 10.0.0.0/8}) and 6to4
 * ({@code 2002::/16}, the IPv4 address in bits 16..47: {@code 2002:7f00:1::} is {@code 127.0.0.1}).
 * Local-use NAT64 and Teredo, whose embedding depends on the site or is obfuscated, are closed whole.
 *
 * <p>Pure functions over addresses; called by {@link EgressGate} on the proxy's connection threads and
 * by {@link EgressConfig#closedEntry} on request threads.
 */
final class AddressRanges {
    /** The ranges, each with the reason it is closed. Order matters only for the name reported. */
    static final List<Cidr> SPECIAL = List.of(
            Cidr.parse("0.0.0.0/8"),          // "this network"
            Cidr.parse("10.0.0.0/8"),         // RFC 1918
            Cidr.parse("100.64.0.0/10"),      // carrier-grade NAT
            Cidr.parse("127.0.0.0/8"),        // loopback: the host itself
            Cidr.parse("169.254.0.0/16"),     // link-local, includes cloud metadata 169.254.169.254
            Cidr.parse("172.16.0.0/12"),      // RFC 1918
            Cidr.parse("192.0.0.0/24"),       // IETF protocol assignments
            Cidr.parse("192.168.0.0/16"),     // RFC 1918
            Cidr.parse("198.18.0.0/15"),      // benchmarking
            Cidr.parse("224.0.0.0/4"),        // multicast
            Cidr.parse("240.0.0.0/4"),        // reserved, includes 255.255.255.255
            Cidr.parse("::/128"),             // unspecified
            Cidr.parse("::1/128"),            // loopback
            Cidr.parse("64:ff9b:1::/48"),     // local-use NAT64 (RFC 8215): translates into the site's own networks
            Cidr.parse("2001::/32"),          // Teredo: embeds (obfuscated) IPv4 addresses
            Cidr.parse("fc00::/7"),           // unique local
            Cidr.parse("fe80::/10"),          // link-local
            Cidr.parse("ff00::/8"),           // multicast
            Cidr.parse("fd00:ec2::254/128")); // AWS metadata over IPv6 (inside fc00::/7, named for clarity)

    /**
     * An IPv6 range whose addresses carry an IPv4 address at bit {@code offset}.
     * ({@code ::ffff:0:0/96} needs no entry: the JDK hands those addresses over as IPv4 already.)
     */
    private record Embedding(Cidr range, int offset) {}

    private static final List<Embedding> EMBEDDINGS = List.of(
            new Embedding(Cidr.parse("::/96"), 96),          // IPv4-compatible (deprecated, still parsed)
            new Embedding(Cidr.parse("64:ff9b::/96"), 96),   // NAT64 well-known prefix
            new Embedding(Cidr.parse("2002::/16"), 16));     // 6to4

    private AddressRanges() {}

    /** The address a check should judge: the embedded IPv4 address for the forms above, else itself. */
    static InetAddress effective(InetAddress address) {
        if (address instanceof Inet6Address) {
            byte[] raw = address.getAddress();
            if (Cidr.isMapped(raw)) {
                return Cidr.v4(raw, 12);
            }
            for (Embedding e : EMBEDDINGS) {
                if (e.range().contains(address)) {
                    return Cidr.v4(raw, e.offset() / 8);
                }
            }
        }
        return address;
    }

    /**
     * The special range holding {@code address} or the IPv4 address it embeds, if any; the most
     * specific one when several hold it ({@code ::1} is reported as {@code ::1/128}, not as the
     * {@code 0.0.0.1} it also embeds).
     */
    static Optional<Cidr> special(InetAddress address) {
        InetAddress judged = effective(address);
        Cidr best = null;
        for (Cidr range : SPECIAL) {
            if ((range.contains(address) || range.contains(judged)) && (best == null || range.prefix() > best.prefix())) {
                best = range;
            }
        }
        return Optional.ofNullable(best);
    }

    /**
     * The special range that holds every address of {@code entry} (directly or through the IPv4
     * address its IPv6 form embeds), if any: such an entry can only ever name operator's addresses.
     * An entry wider than a special range ({@code 0.0.0.0/0}, {@code 8.0.0.0/6}) is not held: its
     * public part is a tenant's to name, and its special part stays closed at connect time.
     */
    static Optional<Cidr> holding(Cidr entry) {
        Cidr best = null;
        for (Cidr candidate : forms(entry)) {
            for (Cidr range : SPECIAL) {
                if (range.encloses(candidate) && (best == null || range.prefix() > best.prefix())) {
                    best = range;
                }
            }
        }
        return Optional.ofNullable(best);
    }

    /** {@code entry} itself and, when it lies inside an embedding range, the IPv4 prefix it embeds. */
    static List<Cidr> forms(Cidr entry) {
        for (Embedding e : EMBEDDINGS) {
            if (e.range().encloses(entry)) {
                int v4Bits = Math.min(entry.prefix(), e.offset() + 32) - e.offset();
                return List.of(entry, Cidr.of(Cidr.v4(entry.networkBytes(), e.offset() / 8), v4Bits));
            }
        }
        return List.of(entry);
    }
}
