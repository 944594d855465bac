package dev.stockade.server.egress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.server.egress.NetworkPolicy.Mode;
import java.net.InetAddress;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Policy plus private ranges plus resolution, with static host overrides instead of DNS. */
class EgressGateTest {
    private static InetAddress ip(String s) {
        return Cidr.parseAddress(s);
    }

    private static EgressGate gate(List<String> privateAllow) {
        HostResolver resolver = new HostResolver(Map.of(
                "evil.com", List.of(ip("10.0.0.5")),
                "mixed.com", List.of(ip("10.0.0.5"), ip("93.184.216.34")),
                "metadata.test", List.of(ip("169.254.169.254")),
                "allowed.test", List.of(ip("127.0.0.1"), ip("::1")),
                "nat64.test", List.of(ip("64:ff9b::a00:5")),
                "mapped.test", List.of(ip("::ffff:192.168.1.1")),
                "public.test", List.of(ip("93.184.216.34")),
                "self.test", List.of(ip("203.0.113.9"))), Duration.ofSeconds(2));
        return new EgressGate(resolver, privateAllow.stream().map(Cidr::parse).toList(), HOST);
    }

    /** This test's host: one public address on its interfaces (besides loopback). */
    private static final HostAddresses HOST = new HostAddresses(() -> List.of(ip("127.0.0.1"), ip("203.0.113.9")),
            () -> 0L);

    private static NetworkPolicy allow(String... entries) {
        return NetworkPolicy.of(Mode.ALLOWLIST, List.of(entries), List.of(), Map.of());
    }

    @Test
    void everySpecialRangeIsClosed() {
        Map<String, String> cases = Map.ofEntries(
                Map.entry("0.1.2.3", "0.0.0.0/8"), Map.entry("10.1.2.3", "10.0.0.0/8"),
                Map.entry("100.64.0.1", "100.64.0.0/10"), Map.entry("127.0.0.1", "127.0.0.0/8"),
                Map.entry("169.254.169.254", "169.254.0.0/16"), Map.entry("172.31.255.255", "172.16.0.0/12"),
                Map.entry("192.0.0.8", "192.0.0.0/24"), Map.entry("192.168.0.1", "192.168.0.0/16"),
                Map.entry("198.19.0.1", "198.18.0.0/15"), Map.entry("224.0.0.1", "224.0.0.0/4"),
                Map.entry("240.0.0.1", "240.0.0.0/4"), Map.entry("255.255.255.255", "240.0.0.0/4"),
                Map.entry("::", "::/128"), Map.entry("::1", "::1/128"), Map.entry("fd12::1", "fc00::/7"),
                Map.entry("fe80::1", "fe80::/10"), Map.entry("ff02::1", "ff00::/8"),
                Map.entry("fd00:ec2::254", "fd00:ec2::254/128"), Map.entry("::ffff:10.0.0.1", "10.0.0.0/8"),
                Map.entry("64:ff9b::a9fe:a9fe", "169.254.0.0/16"),
                // Issue 15: every IPv6 form that embeds an IPv4 address is judged by it.
                Map.entry("::127.0.0.1", "127.0.0.0/8"), Map.entry("::ffff:127.0.0.1", "127.0.0.0/8"),
                Map.entry("64:ff9b::7f00:1", "127.0.0.0/8"), Map.entry("2002:7f00:1::", "127.0.0.0/8"),
                Map.entry("2002:a9fe:a9fe::1", "169.254.0.0/16"), Map.entry("::a00:1", "10.0.0.0/8"),
                Map.entry("64:ff9b:1::a00:1", "64:ff9b:1::/48"), Map.entry("2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::/32"));
        EgressGate g = gate(List.of());
        NetworkPolicy open = NetworkPolicy.of(Mode.OPEN, List.of(), List.of(), Map.of());
        cases.forEach((address, range) -> {
            assertEquals(range, AddressRanges.special(ip(address)).orElseThrow().toString(), address);
            EgressGate.Outcome o = g.decide(open, Cidr.text(ip(address)), ip(address), 443);
            assertFalse(o.allowed(), address);
            assertEquals("private-range " + range, o.rule(), address);
        });
        for (String pub : List.of("93.184.216.34", "2606:4700::1111", "64:ff9b::5db8:d822", "172.32.0.1", "100.128.0.1",
                "2002:5db8:d822::1", "2001:db8::1")) {
            assertTrue(AddressRanges.special(ip(pub)).isEmpty(), pub);
            assertTrue(g.decide(open, Cidr.text(ip(pub)), ip(pub), 443).allowed(), pub);
        }
    }

    @Test
    void aNameNeverUnlocksAPrivateAddress() {
        EgressGate.Outcome o = gate(List.of()).decide(allow("evil.com"), "evil.com", null, 443);
        assertFalse(o.allowed());
        assertEquals("private-range 10.0.0.0/8", o.rule());
        assertEquals("10.0.0.5", o.addressText());
    }

    @Test
    void metadataStaysClosedUnderAWildcard() {
        EgressGate.Outcome o = gate(List.of("127.0.0.1/32")).decide(allow("*.test"), "metadata.test", null, 80);
        assertFalse(o.allowed());
        assertEquals("private-range 169.254.0.0/16", o.rule());
    }

    @Test
    void embeddedV4AddressesAreJudgedByTheirV4() {
        EgressGate g = gate(List.of());
        assertEquals("private-range 10.0.0.0/8", g.decide(allow("nat64.test"), "nat64.test", null, 443).rule());
        assertEquals("private-range 192.168.0.0/16", g.decide(allow("mapped.test"), "mapped.test", null, 443).rule());
    }

    /** Issue 15: the tenant's own address entries never open loopback, metadata or private ranges. */
    @Test
    void aSandboxsAddressEntriesNeverOpenTheOperatorsAddresses() {
        EgressGate g = gate(List.of());
        record Try(String entry, String host, int port) {}
        for (Try t : List.of(new Try("127.0.0.1:3000", "127.0.0.1", 3000), new Try("127.0.0.0/8:3000", "127.0.0.1", 3000),
                new Try("169.254.169.254", "169.254.169.254", 80), new Try("10.0.0.0/8", "10.0.0.5", 443),
                new Try("[::1]:3000", "::1", 3000), new Try("[::127.0.0.1]:3000", "::127.0.0.1", 3000),
                new Try("[64:ff9b::7f00:1]:3000", "64:ff9b::7f00:1", 3000), new Try("[2002:7f00:1::]:3000", "2002:7f00:1::", 3000),
                new Try("127.0.0.1:3000", "::ffff:127.0.0.1", 3000))) {
            EgressGate.Outcome o = g.decide(allow(t.entry()), Cidr.text(ip(t.host())), ip(t.host()), t.port());
            assertFalse(o.allowed(), t.toString());
            assertTrue(o.rule().startsWith("private-range "), t + ": " + o.rule());
            assertTrue(o.reason().contains("which only the operator can open (--egress-private); the sandbox's "),
                    t + ": " + o.reason());
        }
        EgressGate.Outcome named = g.decide(allow("10.0.0.0/8"), "evil.com", null, 443);
        assertFalse(named.allowed(), "a name resolving there is refused after resolution too");
        assertEquals("10.0.0.5 is in the private/special range 10.0.0.0/8, which only the operator can open"
                + " (--egress-private); the sandbox's 10.0.0.0/8 entry cannot", named.reason());
        assertFalse(g.decide(allow("0.0.0.0/0"), "10.0.0.5", ip("10.0.0.5"), 443).allowed());
    }

    /** The operator opens; the sandbox's entries can only narrow what the operator opened. */
    @Test
    void theOperatorOpensAndTheSandboxNarrows() {
        EgressGate g = gate(List.of("10.1.2.0/24", "127.0.0.1/32"));
        assertTrue(g.decide(allow("10.1.2.3"), "10.1.2.3", ip("10.1.2.3"), 443).allowed());
        assertEquals("mode allowlist", g.decide(allow("10.1.2.3"), "10.1.2.4", ip("10.1.2.4"), 443).rule(),
                "opened by the operator, yet not named by the sandbox");
        assertTrue(g.decide(allow("10.0.0.0/8"), "10.1.2.9", ip("10.1.2.9"), 443).allowed());
        assertEquals("private-range 10.0.0.0/8", g.decide(allow("10.0.0.0/8"), "10.5.0.1", ip("10.5.0.1"), 443).rule(),
                "the sandbox's wider entry does not widen the operator's /24");
        assertTrue(g.decide(allow("[::127.0.0.1]:3000"), "::127.0.0.1", ip("::127.0.0.1"), 3000).allowed(),
                "an embedded form is judged by its IPv4 address, for opening too");
        EgressGate.Outcome o = g.decide(allow("allowed.test"), "allowed.test", null, 80);
        assertTrue(o.allowed());
        assertEquals("127.0.0.1", o.addressText(), "the first admitted address is pinned");
        assertFalse(g.decide(allow("forbidden.test"), "allowed.test", null, 80).allowed(),
                "privateAllow opens addresses, not names");
    }

    /** Issue 15: the host's own (non-loopback) addresses are the operator's too. */
    @Test
    void theHostsOwnAddressesAreRefused() {
        NetworkPolicy open = NetworkPolicy.of(Mode.OPEN, List.of(), List.of(), Map.of());
        EgressGate g = gate(List.of());
        EgressGate.Outcome o = g.decide(open, "203.0.113.9", ip("203.0.113.9"), 8080);
        assertFalse(o.allowed());
        assertEquals("host-address 203.0.113.9", o.rule());
        assertEquals("203.0.113.9 is an address of this host (every service it binds on 0.0.0.0), which only the operator"
                + " can open (--egress-private)", o.reason());
        assertEquals("host-address 203.0.113.9", g.decide(allow("self.test:8080"), "self.test", null, 8080).rule(),
                "an allow-listed name resolving to the host");
        assertEquals("host-address 64:ff9b::cb00:7109", g.decide(open, "64:ff9b::cb00:7109", ip("64:ff9b::cb00:7109"), 80)
                .rule(), "its NAT64 form");
        assertTrue(g.decide(open, "203.0.113.10", ip("203.0.113.10"), 80).allowed(), "a neighbour is public");
        assertTrue(gate(List.of("203.0.113.9/32")).decide(open, "203.0.113.9", ip("203.0.113.9"), 8080).allowed(),
                "the operator may open it");
    }

    @Test
    void firstAdmittedAddressIsPinnedAndAllRefusedIsExplained() {
        EgressGate g = gate(List.of());
        EgressGate.Outcome o = g.decide(allow("mixed.com"), "mixed.com", null, 443);
        assertTrue(o.allowed());
        assertEquals("93.184.216.34", o.addressText());
        EgressGate.Outcome both = gate(List.of()).decide(allow("allowed.test"), "allowed.test", null, 443);
        assertFalse(both.allowed());
        assertTrue(both.reason().startsWith("all 2 addresses of allowed.test are refused"), both.reason());
    }

    @Test
    void allowlistRefusesUnlistedNamesWithoutResolving() {
        EgressGate.Outcome o = gate(List.of()).decide(allow("public.test"), "unknown.invalid", null, 443);
        assertFalse(o.allowed());
        assertEquals("mode allowlist", o.rule());
        EgressGate.Outcome none = gate(List.of()).decide(NetworkPolicy.none(), "public.test", null, 443);
        assertEquals("mode none", none.rule());
    }

    @Test
    void unresolvableNamesAreRefusedClearly() {
        NetworkPolicy open = NetworkPolicy.of(Mode.OPEN, List.of(), List.of(), Map.of());
        EgressGate.Outcome o = gate(List.of()).decide(open, "nothing.invalid", null, 443);
        assertFalse(o.allowed());
        assertEquals("resolve", o.rule());
        assertTrue(o.reason().contains("nothing.invalid"), o.reason());
    }
}
