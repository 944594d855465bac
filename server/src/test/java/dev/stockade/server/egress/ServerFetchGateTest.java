package dev.stockade.server.egress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The gate the server's own fetches pass (the package index's upstream): the proxy's address checks, nothing else. */
class ServerFetchGateTest {
    private static ServerFetchGate gate(List<String> privateAllow) {
        return ServerFetchGate.from(new EgressConfig(false, privateAllow, Map.of(
                "rebind.test", List.of("10.0.0.5"),
                "metadata.test", List.of("169.254.169.254"),
                "mixed.test", List.of("127.0.0.1", "93.184.216.34"),
                "public.test", List.of("93.184.216.34")), Duration.ofSeconds(2), Duration.ofSeconds(5), 64, 100, null));
    }

    @Test
    void loopbackMetadataAndPrivateAddressesAreRefused() {
        ServerFetchGate g = gate(List.of());
        for (String host : List.of("127.0.0.1", "[::1]", "::1", "169.254.169.254", "10.1.2.3", "192.168.0.1", "[::ffff:127.0.0.1]",
                "rebind.test", "metadata.test", "localhost")) {
            ServerFetchGate.Refused e = assertThrows(ServerFetchGate.Refused.class, () -> g.admit(host, 80), host);
            assertTrue(e.getMessage().contains("refused") || e.getMessage().contains("resolve"), e.getMessage());
        }
        assertThrows(ServerFetchGate.Refused.class, () -> g.admit("bad host", 80));
        assertThrows(ServerFetchGate.Refused.class, () -> g.admit("public.test", 0));
    }

    @Test
    void publicAddressesAreAdmittedAndPinned() throws Exception {
        ServerFetchGate g = gate(List.of());
        assertEquals(new InetSocketAddress(Cidr.parseAddress("93.184.216.34"), 443), g.admit("public.test", 443));
        assertEquals(new InetSocketAddress(Cidr.parseAddress("93.184.216.34"), 80), g.admit("mixed.test", 80),
                "the first admitted address is the one to connect to");
        assertEquals(new InetSocketAddress(Cidr.parseAddress("93.184.216.34"), 8080), g.admit("93.184.216.34", 8080));
    }

    @Test
    void theOperatorsPrivateAllowOpensARange() throws Exception {
        assertEquals(new InetSocketAddress(Cidr.parseAddress("10.0.0.5"), 3141), gate(List.of("10.0.0.0/24")).admit("rebind.test", 3141));
    }
}
