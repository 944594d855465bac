package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.conformance.NetworkContract;
import dev.stockade.conformance.RawClient;
import dev.stockade.conformance.TestServer;
import dev.stockade.server.egress.EgressConfig;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Issue 15, probe findings 1 and 3: a tenant's own allow entries never open the host to its sandbox.
 * The server is a default one (no {@code --egress-private}) except for names the operator maps onto
 * loopback, in every IPv6 form that embeds 127.0.0.1, so that a name can lead there; a site on the host's
 * loopback and the server's own API stand for the host services a sandbox must not reach. An address
 * entry naming them is refused with a 400 that names the entry (at create and through updateNetwork);
 * a name leading there is refused at connect time with a 403 that says why, and the site sees nothing.
 */
class OperatorAddressesIT {
    static TestServer ts;
    static RawClient c;
    static NetworkContract.Site site;

    @BeforeAll
    static void up() {
        site = NetworkContract.Site.start("127.0.0.1", "host-site");
        ts = new TestServer(cfg -> cfg.withEgress(EgressConfig.defaults().withHosts(Map.of(
                "site.test", List.of("127.0.0.1"), "compat.test", List.of("::127.0.0.1"),
                "nat64.test", List.of("64:ff9b::7f00:1"), "sixtofour.test", List.of("2002:7f00:1::"),
                "api.test", List.of("127.0.0.1")))));
        c = ts.client;
    }

    @AfterAll
    static void down() {
        if (ts != null) ts.close();
        if (site != null) site.http().stop(0);
    }

    @Test
    void anAddressEntryForTheHostsLoopbackMetadataOrPrivateRangesIsRefusedNamingIt() {
        int p = site.port();
        Map<String, String> entries = Map.of(
                "127.0.0.1:" + p, "127.0.0.0/8", "127.0.0.0/8:" + p, "127.0.0.0/8",
                "[::127.0.0.1]:" + p, "127.0.0.0/8", "[::ffff:127.0.0.1]:" + p, "127.0.0.0/8",
                "[64:ff9b::7f00:1]:" + p, "127.0.0.0/8", "[2002:7f00:1::]:" + p, "127.0.0.0/8",
                "169.254.169.254", "169.254.0.0/16", "10.0.0.0/8", "10.0.0.0/8");
        entries.forEach((entry, range) -> {
            RawClient.Response r = c.call("POST", "/sandboxes", Map.of("templateID", "base",
                    "network", Map.of("allowOut", List.of("pypi.org", entry))));
            if (r.status() == 201) c.kill(new RawClient.Box(r.json().path("sandboxID").asText(), null));
            assertEquals(400, r.status(), entry + " → " + r.body());
            String message = r.json().path("message").asText();
            assertTrue(message.startsWith("network.allowOut entry '"), message);
            assertTrue(message.contains("' is inside " + range + ", a private/special range"), entry + ": " + message);
            assertTrue(message.contains("which only the operator can open (--egress-private)"), message);
        });
        assertEquals(0, c.call("GET", "/sandboxes", null).json().size(), "nothing was created");
    }

    @Test
    void aSandboxCannotReachTheHostsLoopbackThroughItsAllowList() {
        int p = site.port();
        int api = ts.server.url().getPort();
        String wildcard = "*.test:" + p;
        RawClient.Box b = c.create(Map.of("templateID", "base", "timeout", 120,
                "network", Map.of("allowOut", List.of(wildcard, "api.test:" + api))));
        try {
            // updateNetwork cannot widen it either, and a refused update changes nothing.
            RawClient.Response put = c.call("PUT", "/sandboxes/" + b.id() + "/network",
                    Map.of("allowOut", List.of("127.0.0.1:" + p, "127.0.0.1:" + api)));
            assertEquals(400, put.status(), put.body());
            assertTrue(put.json().path("message").asText().startsWith("network.allowOut entry '127.0.0.1:" + p
                    + "' is inside 127.0.0.0/8"), put.body());
            JsonNode shown = c.call("GET", "/sandboxes/" + b.id(), null).json().path("network");
            assertEquals(List.of(wildcard, "api.test:" + api), texts(shown.path("allowOut")), shown.toString());

            int seen = site.seen().size();
            List<String> urls = List.of("http://site.test:" + p + "/a", "http://compat.test:" + p + "/b",
                    "http://nat64.test:" + p + "/c", "http://sixtofour.test:" + p + "/d", "http://api.test:" + api + "/health",
                    "http://127.0.0.1:" + p + "/e");
            StringBuilder cmd = new StringBuilder();
            for (String u : urls) {
                // The refusal's body ends with a newline: one line per URL, its status after it.
                cmd.append("curl -sS -m 20 --noproxy '' -w ' [%{http_code}]' ").append(u).append(" | tr -d '\\n'; echo; ");
            }
            RawClient.Run r = c.run(b, cmd.toString());
            String out = r.stdout();
            assertEquals(0, r.exitCode(), out + r.stderr());
            String[] lines = out.strip().split("\n");
            assertEquals(urls.size(), lines.length, out);
            String why = ", which only the operator can open (--egress-private); the sandbox's ";
            assertEquals("stockade egress: refused site.test:" + p + ": 127.0.0.1 is in the private/special range 127.0.0.0/8"
                    + why + wildcard + " entry cannot [403]", lines[0].strip());
            assertEquals("stockade egress: refused compat.test:" + p + ": ::7f00:1 is in the private/special range"
                    + " 127.0.0.0/8" + why + wildcard + " entry cannot [403]", lines[1].strip());
            assertEquals("stockade egress: refused nat64.test:" + p + ": 64:ff9b::7f00:1 is in the private/special range"
                    + " 127.0.0.0/8" + why + wildcard + " entry cannot [403]", lines[2].strip());
            assertEquals("stockade egress: refused sixtofour.test:" + p + ": 2002:7f00:1:: is in the private/special range"
                    + " 127.0.0.0/8" + why + wildcard + " entry cannot [403]", lines[3].strip());
            assertEquals("stockade egress: refused api.test:" + api + ": 127.0.0.1 is in the private/special range 127.0.0.0/8"
                    + why + "api.test:" + api + " entry cannot [403]", lines[4].strip(), "the server's own API");
            assertEquals("stockade egress: refused 127.0.0.1:" + p + ": 127.0.0.1 is not in the sandbox's allow list [403]",
                    lines[5].strip());
            assertEquals(seen, site.seen().size(), "the site saw nothing: " + site.seen());

            // The decision log says which rule refused.
            RawClient.Response log = c.call("GET", "/sandboxes/" + b.id() + "/network/log?limit=100", null);
            assertEquals(200, log.status(), log.body());
            List<String> rules = new ArrayList<>();
            log.json().path("decisions").forEach(x -> rules.add(x.path("host").asText() + " " + x.path("allowed").asBoolean()
                    + " " + x.path("rule").asText()));
            assertTrue(rules.contains("site.test false private-range 127.0.0.0/8"), rules.toString());
            assertTrue(rules.contains("api.test false private-range 127.0.0.0/8"), rules.toString());
        } finally {
            c.kill(b);
        }
    }

    private static List<String> texts(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }
}
