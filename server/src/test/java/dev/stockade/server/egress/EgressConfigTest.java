package dev.stockade.server.egress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.server.egress.NetworkPolicy.Mode;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** The operator's side of a tenant's policy: entries that could only name the operator's addresses (issue 15). */
class EgressConfigTest {
    private static final HostAddresses HOST = new HostAddresses(
            () -> List.of(Cidr.parseAddress("127.0.0.1"), Cidr.parseAddress("203.0.113.9")), () -> 0L);

    private static Optional<String> closed(EgressConfig config, String entry) {
        return config.closedEntry(NetworkPolicy.of(Mode.ALLOWLIST, List.of("pypi.org", entry), List.of(), Map.of()), HOST);
    }

    private static EgressConfig opening(String... cidrs) {
        return EgressConfig.defaults().withPrivateAllow(List.of(cidrs));
    }

    @Test
    void anEntryInsideTheOperatorsRangesIsRefusedNamingTheEntryAndTheRange() {
        Map<String, String> cases = Map.ofEntries(
                Map.entry("127.0.0.1:3000", "127.0.0.0/8"), Map.entry("127.0.0.0/8:3000", "127.0.0.0/8"),
                Map.entry("169.254.169.254", "169.254.0.0/16"), Map.entry("10.0.0.0/8", "10.0.0.0/8"),
                Map.entry("10.1.0.0/16:5432", "10.0.0.0/8"), Map.entry("[::1]:8080", "::1/128"),
                Map.entry("[::127.0.0.1]:3000", "127.0.0.0/8"), Map.entry("[::ffff:127.0.0.1]:3000", "127.0.0.0/8"),
                Map.entry("64:ff9b::7f00:1", "127.0.0.0/8"), Map.entry("2002:7f00:1::", "127.0.0.0/8"),
                Map.entry("[2002:7f00::/24]:80", "127.0.0.0/8"), Map.entry("[64:ff9b::a9fe:0/112]:80", "169.254.0.0/16"),
                Map.entry("fd00:ec2::254", "fd00:ec2::254/128"), Map.entry("fe80::/10", "fe80::/10"));
        cases.forEach((entry, range) -> {
            String why = closed(EgressConfig.defaults(), entry).orElseThrow(() -> new AssertionError(entry + " was accepted"));
            String shown = NetworkPolicy.of(Mode.ALLOWLIST, List.of(entry), List.of(), Map.of()).allow().getFirst();
            assertEquals("network.allowOut entry '" + shown + "' is inside " + range + ", a private/special range (loopback,"
                    + " private networks, link-local and cloud metadata), which only the operator can open"
                    + " (--egress-private) and has not opened for it: a sandbox's allow entries narrow what the operator"
                    + " permits and cannot open the operator's addresses; remove the entry or ask the operator", why);
        });
    }

    @Test
    void publicAndWideEntriesAreTheTenantsToName() {
        for (String entry : List.of("0.0.0.0/0", "8.0.0.0/6", "93.184.216.34", "example.com:8443", "2002::/16",
                "[2606:4700::/32]:443", "203.0.113.0/24", "::/0")) {
            assertEquals(Optional.empty(), closed(EgressConfig.defaults(), entry), entry);
        }
    }

    @Test
    void theHostsOwnAddressIsRefusedAsAnEntry() {
        String why = closed(EgressConfig.defaults(), "203.0.113.9:22").orElseThrow();
        assertTrue(why.startsWith("network.allowOut entry '203.0.113.9:22' is an address of this server's host, which only"
                + " the operator can open (--egress-private)"), why);
        assertEquals(Optional.empty(), closed(opening("203.0.113.9/32"), "203.0.113.9:22"));
    }

    @Test
    void theSandboxMayNarrowWhatTheOperatorOpenedButNotWidenIt() {
        EgressConfig operator = opening("127.0.0.1/32", "10.1.2.0/24");
        for (String entry : List.of("127.0.0.1:3000", "[::127.0.0.1]:3000", "[::ffff:127.0.0.1]:3000", "10.1.2.3",
                "10.1.2.0/25:443")) {
            assertEquals(Optional.empty(), closed(operator, entry), entry);
        }
        for (String entry : List.of("127.0.0.0/8:3000", "127.0.0.2:3000", "10.1.0.0/16", "169.254.169.254")) {
            assertTrue(closed(operator, entry).isPresent(), entry);
        }
    }
}
