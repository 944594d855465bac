package dev.stockade.server.egress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.server.egress.NetworkPolicy.Mode;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Parsing and matching of policy entries, without any network. */
class NetworkPolicyTest {
    private static InetAddress ip(String s) {
        return Cidr.parseAddress(s);
    }

    private static NetworkPolicy allow(String... entries) {
        return NetworkPolicy.of(Mode.ALLOWLIST, List.of(entries), List.of(), Map.of());
    }

    @Test
    void entriesAreNormalizedAndShownBack() {
        NetworkPolicy p = NetworkPolicy.of(Mode.ALLOWLIST,
                List.of(" API.Example.COM. ", "*.Example.org", "example.com:8443", "127.0.0.1:8080", "[::1]:8080",
                        "10.0.0.0/8", "2001:db8::/32", "10.0.0.0/8:443", "[2001:db8::/32]:443", "::1", "0.0.0.0/0",
                        "::/0", "xn--bcher-kva.example"),
                List.of("192.168.0.0/16", "[fd00::/8]:22"), Map.of("*.Example.org", Map.of("X-Team", "blue")));
        assertEquals(List.of("api.example.com", "*.example.org", "example.com:8443", "127.0.0.1:8080", "[::1]:8080",
                "10.0.0.0/8", "2001:db8::/32", "10.0.0.0/8:443", "[2001:db8::/32]:443", "::1", "0.0.0.0/0", "::/0",
                "xn--bcher-kva.example"), p.allow());
        assertEquals(List.of("192.168.0.0/16", "[fd00::/8]:22"), p.deny());
        assertEquals(Map.of("*.example.org", Map.of("X-Team", "blue")), p.headerRules());
        assertEquals(NetworkPolicy.Mode.ALLOWLIST, p.mode());
    }

    @Test
    void badEntriesAreRefusedWithTheEntryNamed() {
        for (String bad : List.of("*", "*.*.com", "foo.*.com", "bücher.example", "exa mple.com", "-a.com", "a..b",
                "example.com:0", "example.com:65536", "example.com:http", "10.0.0.1/8", "10.0.0.0/33", "300.1.1.1",
                "127.1", "010.0.0.1", "2130706433", "[example.com]:80", "[::1", "1.2.3.4.5", "", "   ")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> allow(bad), bad);
            assertFalse(e.getMessage().isBlank());
        }
        assertTrue(assertThrows(IllegalArgumentException.class, () -> allow("bücher.example")).getMessage()
                .contains("punycode"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> allow("10.0.0.1/8")).getMessage()
                .contains("10.0.0.0/8"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> allow("a".repeat(254))).getMessage()
                .contains("253"));
    }

    @Test
    void denyTakesAddressesOnly() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> NetworkPolicy.of(Mode.OPEN, List.of(), List.of("evil.com"), Map.of()));
        assertTrue(e.getMessage().contains("IP addresses or CIDRs"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> NetworkPolicy.of(Mode.OPEN, List.of(), List.of("*.evil.com"), Map.of()));
    }

    @Test
    void limitsAndModeChecks() {
        List<String> many = new ArrayList<>();
        for (int i = 0; i < 1001; i++) {
            many.add("h" + i + ".example.com");
        }
        assertThrows(IllegalArgumentException.class, () -> NetworkPolicy.of(Mode.ALLOWLIST, many, List.of(), null));
        assertEquals(1000, NetworkPolicy.of(Mode.ALLOWLIST, many.subList(0, 1000), null, null).allow().size());
        assertThrows(IllegalArgumentException.class,
                () -> NetworkPolicy.of(Mode.NONE, List.of("example.com"), List.of(), Map.of()));
        assertThrows(IllegalArgumentException.class, () -> NetworkPolicy.of(null, List.of(), List.of(), Map.of()));
    }

    @Test
    void headerRulesAreValidated() {
        assertThrows(IllegalArgumentException.class, () -> NetworkPolicy.of(Mode.OPEN, null, null,
                Map.of("example.com:443", Map.of("X-A", "b"))));
        assertThrows(IllegalArgumentException.class, () -> NetworkPolicy.of(Mode.OPEN, null, null,
                Map.of("10.0.0.1", Map.of("X-A", "b"))));
        assertThrows(IllegalArgumentException.class, () -> NetworkPolicy.of(Mode.OPEN, null, null,
                Map.of("example.com", Map.of("Content-Length", "5"))));
        assertThrows(IllegalArgumentException.class, () -> NetworkPolicy.of(Mode.OPEN, null, null,
                Map.of("example.com", Map.of("X-A", "b\r\nX-Evil: 1"))));
        assertThrows(IllegalArgumentException.class, () -> NetworkPolicy.of(Mode.OPEN, null, null,
                Map.of("example.com", Map.of("Bad Name", "v"))));
        Map<String, Map<String, String>> dup = new LinkedHashMap<>();
        dup.put("Example.com", Map.of("X-A", "1"));
        dup.put("example.com.", Map.of("X-A", "2"));
        assertThrows(IllegalArgumentException.class, () -> NetworkPolicy.of(Mode.OPEN, null, null, dup));
    }

    @Test
    void exactHostBeatsLongestWildcardInHeaderRules() {
        Map<String, Map<String, String>> rules = new LinkedHashMap<>();
        rules.put("*.example.com", Map.of("X-Rule", "wide"));
        rules.put("*.api.example.com", Map.of("X-Rule", "narrow"));
        rules.put("v1.api.example.com", Map.of("X-Rule", "exact"));
        NetworkPolicy p = NetworkPolicy.of(Mode.OPEN, null, null, rules);
        assertEquals("exact", p.headersFor("v1.api.example.com").get("X-Rule"));
        assertEquals("narrow", p.headersFor("v2.api.example.com").get("X-Rule"));
        assertEquals("wide", p.headersFor("www.example.com").get("X-Rule"));
        assertEquals(Map.of(), p.headersFor("example.com"));
        assertFalse(p.toString().contains("exact"), "header values stay out of toString");
    }

    @Test
    void wildcardsMatchSubdomainsAtAnyDepthButNotTheApex() {
        NetworkPolicy p = allow("*.example.com");
        InetAddress pub = ip("93.184.216.34");
        assertTrue(p.judge("a.example.com", false, pub, 443).allowed());
        assertTrue(p.judge("a.b.c.example.com", false, pub, 80).allowed());
        assertFalse(p.judge("example.com", false, pub, 443).allowed());
        assertFalse(p.judge("badexample.com", false, pub, 443).allowed());
        assertFalse(p.judge("example.com.evil.net", false, pub, 443).allowed());
    }

    @Test
    void portsDefaultTo80And443() {
        NetworkPolicy p = allow("example.com", "other.com:8443", "[2001:db8::1]:8080", "10.0.0.0/8:22");
        InetAddress pub = ip("93.184.216.34");
        assertTrue(p.judge("example.com", false, pub, 80).allowed());
        assertTrue(p.judge("example.com", false, pub, 443).allowed());
        NetworkPolicy.Verdict v = p.judge("example.com", false, pub, 8080);
        assertFalse(v.allowed());
        assertTrue(v.reason().contains("80 and 443"), v.reason());
        assertTrue(p.judge("other.com", false, pub, 8443).allowed());
        assertFalse(p.judge("other.com", false, pub, 443).allowed());
        assertTrue(p.judge("2001:db8::1", true, ip("2001:db8::1"), 8080).allowed());
        assertFalse(p.judge("2001:db8::1", true, ip("2001:db8::1"), 443).allowed());
        assertTrue(p.judge("10.9.8.7", true, ip("10.9.8.7"), 22).allowed());
    }

    @Test
    void cidrsMatchV4V6AndMappedAddresses() {
        NetworkPolicy p = allow("203.0.113.0/24", "2001:db8::/32");
        assertTrue(p.judge("203.0.113.9", true, ip("203.0.113.9"), 443).allowed());
        assertFalse(p.judge("203.0.114.9", true, ip("203.0.114.9"), 443).allowed());
        assertTrue(p.judge("2001:db8:ffff::1", true, ip("2001:db8:ffff::1"), 443).allowed());
        assertFalse(p.judge("2001:db9::1", true, ip("2001:db9::1"), 443).allowed());
        // ::ffff:203.0.113.9 is the v4 address for every purpose
        assertTrue(p.judge("x", true, ip("::ffff:203.0.113.9"), 443).allowed());
        assertEquals("203.0.113.0/24", Cidr.parse("::ffff:203.0.113.0/120").toString());
    }

    @Test
    void modesAndPrecedence() {
        InetAddress pub = ip("93.184.216.34");
        NetworkPolicy none = NetworkPolicy.none();
        assertEquals("mode none", none.judge("example.com", false, pub, 443).rule());
        NetworkPolicy open = NetworkPolicy.of(Mode.OPEN, List.of("93.184.216.34"), List.of("0.0.0.0/0"), Map.of());
        assertTrue(open.judge("example.com", false, pub, 443).allowed(), "allow wins over deny");
        assertEquals("allow 93.184.216.34", open.judge("example.com", false, pub, 443).rule());
        NetworkPolicy.Verdict denied = open.judge("other.com", false, ip("1.1.1.1"), 443);
        assertFalse(denied.allowed());
        assertEquals("deny 0.0.0.0/0", denied.rule());
        NetworkPolicy openAll = NetworkPolicy.of(Mode.OPEN, List.of(), List.of("1.1.1.1:53"), Map.of());
        assertTrue(openAll.judge("x.com", false, ip("1.1.1.1"), 443).allowed());
        assertFalse(openAll.judge("x.com", false, ip("1.1.1.1"), 53).allowed());
        assertTrue(openAll.judge("x.com", false, ip("8.8.8.8"), 12345).allowed(), "open admits every port");
        NetworkPolicy list = allow("example.com");
        NetworkPolicy.Verdict v = list.judge("other.com", false, pub, 443);
        assertFalse(v.allowed());
        assertEquals("mode allowlist", v.rule());
        assertNull(list.nameAllow("other.com"));
    }

    @Test
    void nameEntriesNeverMatchIpLiteralsAndAddressEntriesMatchResolvedNames() {
        NetworkPolicy p = allow("93.184.216.34");
        assertTrue(p.judge("example.com", false, ip("93.184.216.34"), 443).allowed());
        NetworkPolicy byName = allow("example.com");
        assertFalse(byName.judge("93.184.216.34", true, ip("93.184.216.34"), 443).allowed());
    }

    @Test
    void aDowngradedPolicysRefusalsSayWhatWasAskedAndHowToAskForMore() {
        NetworkPolicy.Downgrade d = new NetworkPolicy.Downgrade(Mode.OPEN, "allow_internet_access",
                "the operator has not enabled open egress");
        String how = " (open internet access was asked for through allow_internet_access but this server does not permit"
                + " it: the operator has not enabled open egress); ask for the host in network.allowOut at create or"
                + " through updateNetwork";
        NetworkPolicy none = NetworkPolicy.none().downgradedFrom(d);
        assertEquals(d, none.downgrade());
        assertNull(NetworkPolicy.none().downgrade(), "the shared none policy carries no note");
        assertEquals("the sandbox's network policy is none (no network access)" + how,
                none.judge("example.com", false, ip("93.184.216.34"), 443).reason());
        NetworkPolicy list = allow("pypi.org").downgradedFrom(d);
        assertEquals("example.com is not in the sandbox's allow list" + how,
                list.judge("example.com", false, ip("93.184.216.34"), 443).reason());
        assertTrue(list.judge("pypi.org", false, ip("151.101.0.223"), 443).allowed());
        // Undowngraded policies keep their refusals as they were.
        assertEquals("example.com is not in the sandbox's allow list",
                allow("pypi.org").judge("example.com", false, ip("93.184.216.34"), 443).reason());
        assertThrows(IllegalArgumentException.class, () -> NetworkPolicy.of(Mode.OPEN, List.of(), List.of(), Map.of())
                .downgradedFrom(d), "open is no downgrade of open");
    }
}
