package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.conformance.NetworkContract;
import dev.stockade.conformance.RawClient;
import dev.stockade.conformance.TestServer;
import dev.stockade.server.egress.EgressConfig;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * What the E2B SDKs' implied {@code allow_internet_access: true} gets on a server whose operator has not
 * enabled open egress (issue 14): by default the sandbox is created under the most the operator permits,
 * says so in the create and get answers and in the audit log, and a connection it refuses fails at once
 * naming the policy; with {@code --open-network-requests refuse} the same body is a 400. The server has
 * no {@code --allow-open-network}; a site on the host's loopback stands for what the sandbox tries to
 * reach, and the operator lists loopback ({@code --egress-private 127.0.0.1/32}) so that an allow entry
 * asked for later can reach it (a tenant's entry alone never opens loopback: OperatorAddressesIT).
 */
class OpenNetworkDowngradeIT {
    /** Exactly the body the E2B Python SDK sends for {@code Sandbox()}. */
    private static final Map<String, Object> PYTHON_SDK_CREATE = Map.of("templateID", "base", "allow_internet_access", true,
            "secure", true, "envVars", Map.of());
    private static final String NOTE = "open asked through allow_internet_access, downgraded to none (the operator has"
            + " not enabled open egress)";

    static TestServer ts;
    static RawClient c;
    static NetworkContract.Site site;

    @BeforeAll
    static void up() {
        site = NetworkContract.Site.start("127.0.0.1", "host-site");
        ts = new TestServer(cfg -> cfg.withEgress(EgressConfig.defaults().withPrivateAllow(List.of("127.0.0.1/32"))));
        c = ts.client;
    }

    @AfterAll
    static void down() {
        if (ts != null) ts.close();
        if (site != null) site.http().stop(0);
    }

    @Test
    void anSdksImpliedOpenRequestIsCreatedWithoutNetworkAndSaysSo() {
        RawClient.Response created = c.call("POST", "/sandboxes", PYTHON_SDK_CREATE);
        assertEquals(201, created.status(), created.body());
        RawClient.Box b = new RawClient.Box(created.json().get("sandboxID").asText(),
                created.json().get("envdAccessToken").asText());
        try {
            assertEffective(created.json(), "create");
            RawClient.Response got = c.call("GET", "/sandboxes/" + b.id(), null);
            assertEquals(200, got.status(), got.body());
            assertEffective(got.json(), "get");

            JsonNode entry = createEntry(b.id());
            assertEquals("network: " + NOTE, entry.path("detail").asText(), entry.toString());
            assertEquals(201, entry.path("status").asInt(), entry.toString());

            // Through the proxy (curl, and Python's urllib: both as the user's code would): refused at once,
            // with a reason that names the policy and how to ask for more; nothing reaches the site.
            int seen = site.seen().size();
            long t0 = System.nanoTime();
            RawClient.Run r = c.run(b, "curl -sS -m 20 --noproxy '' -w ' [%{http_code}]' http://127.0.0.1:" + site.port() + "/x"
                    + "; echo; python3 -c \"import os, urllib.request, urllib.error\n"
                    + "for k in ('NO_PROXY', 'no_proxy'): os.environ.pop(k, None)\n"
                    + "try:\n    urllib.request.urlopen('http://127.0.0.1:" + site.port() + "/y', timeout=20)\n"
                    + "except urllib.error.HTTPError as e:\n    print('urllib', e.code, e.read().decode())\"");
            double seconds = (System.nanoTime() - t0) / 1e9;
            String out = r.stdout();
            assertEquals(0, r.exitCode(), out + r.stderr());
            assertTrue(seconds < 10, "the refusals took " + seconds + " s: " + out);
            String reason = "the sandbox's network policy is none (no network access) (open internet access was asked for"
                    + " through allow_internet_access but this server does not permit it: the operator has not enabled"
                    + " open egress); ask for the host in network.allowOut at create or through updateNetwork";
            assertTrue(out.contains("stockade egress: refused 127.0.0.1:" + site.port() + ": " + reason), out);
            assertTrue(out.contains("[403]"), out);
            assertTrue(out.contains("urllib 403 stockade egress: refused 127.0.0.1:" + site.port() + ": " + reason), out);
            assertEquals(seen, site.seen().size(), "the site saw nothing: " + site.seen());

            // The sandbox works otherwise, and asking by name through updateNetwork gives access (and drops the note).
            assertEquals(204, c.call("PUT", "/sandboxes/" + b.id() + "/network",
                    Map.of("allowOut", List.of("127.0.0.1:" + site.port()))).status());
            RawClient.Run ok = c.run(b, "curl -sS -m 20 --noproxy '' http://127.0.0.1:" + site.port() + "/z");
            assertTrue(ok.stdout().contains("hello from host-site"), ok.stdout() + ok.stderr());
            JsonNode after = c.call("GET", "/sandboxes/" + b.id(), null).json().path("network");
            assertEquals("allowlist", after.path("mode").asText(), after.toString());
            assertFalse(after.has("downgraded"), after.toString());
            // updateNetwork keeps refusing open access, however it is asked.
            RawClient.Response open = c.call("PUT", "/sandboxes/" + b.id() + "/network", Map.of("allow_internet_access", true));
            assertEquals(400, open.status(), open.body());
            assertTrue(open.body().contains("allowOpen"), open.body());
        } finally {
            c.kill(b);
        }
    }

    @Test
    void openAskedByNameIsStillRefused() {
        RawClient.Response r = c.call("POST", "/sandboxes", Map.of("templateID", "base", "allow_internet_access", true,
                "network", Map.of("mode", "open")));
        assertEquals(400, r.status(), r.body());
        assertTrue(r.json().path("message").asText().startsWith("open internet access is not permitted on this server"),
                r.body());
    }

    @Test
    void anOperatorWhoChoseRefusalGetsTheOld400() {
        try (TestServer strict = new TestServer(cfg -> cfg.withEgress(EgressConfig.defaults()
                .withOpenRequests(EgressConfig.OpenRequests.REFUSE)))) {
            RawClient.Response r = strict.client.call("POST", "/sandboxes", PYTHON_SDK_CREATE);
            assertEquals(400, r.status(), r.body());
            assertTrue(r.json().path("message").asText().contains("egress.allowOpen is off"), r.body());
            assertEquals(0, strict.client.call("GET", "/sandboxes", null).json().size(), "nothing was created");
        }
    }

    /** The create or get answer shows the effective policy: none, no allow-list, what was asked and why not. */
    private static void assertEffective(JsonNode sandbox, String what) {
        assertFalse(sandbox.path("allowInternetAccess").asBoolean(true), what + ": " + sandbox);
        JsonNode n = sandbox.path("network");
        assertEquals("none", n.path("mode").asText(), what + ": " + n);
        assertEquals(0, n.path("allowOut").size(), what + ": " + n);
        assertEquals("open", n.path("requested").asText(), what + ": " + n);
        assertEquals(NOTE + "; ask for hosts in network.allowOut at create or through updateNetwork",
                n.path("downgraded").asText(), what + ": " + n);
    }

    /** The audit entry of the sandbox's create (entries are appended once the response is out: polled). */
    private static JsonNode createEntry(String sandboxId) {
        for (int i = 0; i < 100; i++) {
            RawClient.Response r = c.call("GET", "/admin/audit?action=sandbox.create&limit=1000", null);
            assertEquals(200, r.status(), r.body());
            for (JsonNode e : r.json().path("entries")) {
                if (sandboxId.equals(e.path("sandbox").asText(null))) return e;
            }
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
        throw new AssertionError("no audit entry for the create of " + sandboxId);
    }
}
