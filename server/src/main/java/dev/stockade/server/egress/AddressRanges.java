package dev.stockade.server.egress;

import java.net.Inet6Address;
import java.net.InetAddress;
import java.util.List;
import java.util.Optional;

/**
 * Private and special address ranges a sandbox may never reach unless an IP/CIDR entry of its own
 * allow list, or the operator's {@code privateAllow}, covers the address explicitly. A host name
 * never unlocks them, so DNS rebinding ({@code evil.com → 10.0.0.5}) gets nowhere.
 *
 * <p>IPv4-mapped ({@code ::ffff:0:0/96}) and NAT64 ({@code 64:ff9b::/96}) addresses are judged by the
 * IPv4 address they embed: {@code 64:ff9b::a00:5} is refused as {@code 10.0.0.0/8}.
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
            Cidr.parse("fc00::/7"),           // unique local
            Cidr.parse("fe80::/10"),          // link-local
            Cidr.parse("ff00::/8"),           // multicast
            Cidr.parse("fd00:ec2::254/128")); // AWS metadata over IPv6 (inside fc00::/7, named for clarity)

    private static final Cidr NAT64 = Cidr.parse("64:ff9b::/96");

    private AddressRanges() {}

    /** The address a check should judge: the embedded IPv4 address for mapped and NAT64 addresses. */
    static InetAddress effective(InetAddress address) {
        byte[] raw = address.getAddress();
        if (address instanceof Inet6Address && (Cidr.isMapped(raw) || NAT64.contains(address))) {
            return Cidr.v4(raw, 12);
        }
        return address;
    }

    /** The special range holding {@code address} (judged by {@link #effective}), if any; most specific first. */
    static Optional<Cidr> special(InetAddress address) {
        InetAddress judged = effective(address);
        Cidr best = null;
        for (Cidr range : SPECIAL) {
            if (range.contains(judged) && (best == null || range.prefix() > best.prefix())) {
                best = range;
            }
        }
        return Optional.ofNullable(best);
    }
}
