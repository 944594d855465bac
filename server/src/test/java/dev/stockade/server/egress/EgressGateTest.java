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
                "public.test", List.of(ip("93.184.216.34"))), Duration.ofSeconds(2));
        return new EgressGate(resolver, privateAllow.stream().map(Cidr::parse).toList());
    }

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
                Map.entry("64:ff9b::a9fe:a9fe", "169.254.0.0/16"));
        EgressGate g = gate(List.of());
        NetworkPolicy open = NetworkPolicy.of(Mode.OPEN, List.of(), List.of(), Map.of());
        cases.forEach((address, range) -> {
            assertEquals(range, AddressRanges.special(ip(address)).orElseThrow().toString(), address);
            EgressGate.Outcome o = g.decide(open, Cidr.text(ip(address)), ip(address), 443);
            assertFalse(o.allowed(), address);
            assertEquals("private-range " + range, o.rule(), address);
        });
        for (String pub : List.of("93.184.216.34", "2606:4700::1111", "64:ff9b::5db8:d822", "172.32.0.1", "100.128.0.1")) {
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

    @Test
    void explicitAddressEntriesOrPrivateAllowUnlock() {
        EgressGate g = gate(List.of());
        assertTrue(g.decide(allow("10.0.0.0/8"), "evil.com", null, 443).allowed(), "an explicit CIDR unlocks");
        assertTrue(g.decide(allow("10.0.0.5"), "10.0.0.5", ip("10.0.0.5"), 443).allowed());
        assertFalse(g.decide(allow("0.0.0.0/0"), "10.0.0.5", ip("10.0.0.5"), 443).allowed(),
                "all traffic is not an explicit private allowance");
        assertFalse(g.decide(allow("8.0.0.0/6"), "10.0.0.5", ip("10.0.0.5"), 443).allowed(),
                "a prefix wider than the private range does not unlock it");
        EgressGate operator = gate(List.of("127.0.0.1/32", "::1/128"));
        EgressGate.Outcome o = operator.decide(allow("allowed.test"), "allowed.test", null, 80);
        assertTrue(o.allowed());
        assertEquals("127.0.0.1", o.addressText(), "the first admitted address is pinned");
        assertFalse(operator.decide(allow("forbidden.test"), "allowed.test", null, 80).allowed(),
                "privateAllow opens addresses, not names");
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
