package dev.stockade.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.runtime.Capabilities;
import dev.stockade.server.packages.FakeUpstream;
import dev.stockade.server.packages.PackageConfig;
import dev.stockade.server.packages.TestWheels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The package policy (issue 4) with the real pip inside real sandboxes: pip installs only from the
 * index the server serves at {@code http://pypi.stockade/} — the operator's wheelhouse, and an upstream
 * index (a second local index on 127.0.0.1) filtered by an allow-list — whatever the sandbox's network
 * policy. Wheels are built by the test. A refused package fails with a message naming the policy and
 * the package, through {@code pip install}, the install API and {@code %pip} alike.
 */
public abstract class PackagesContract extends RuntimeContract {
    FakeUpstream upstream;
    /** A second service on the host's loopback, which a hostile upstream page points at. */
    FakeUpstream hostService;
    Path dir;

    @BeforeAll
    void up() throws Exception {
        dir = Files.createTempDirectory("stockade-packages-it");
        Path wheelhouse = Files.createDirectory(dir.resolve("wheelhouse"));
        TestWheels.write(wheelhouse, "tinypkg", "1.0", null);
        upstream = new FakeUpstream();
        upstream.add("uppkg", TestWheels.filename("uppkg", "1.0"), TestWheels.bytes("uppkg", "1.0", null));
        upstream.add("uppkg", TestWheels.filename("uppkg", "2.0"), TestWheels.bytes("uppkg", "2.0", null));
        upstream.add("notlisted", TestWheels.filename("notlisted", "1.0"), TestWheels.bytes("notlisted", "1.0", null));
        // A mirror gone bad: a file whose bytes do not match the page's sha256, and one whose link points
        // at another service on the host's loopback (holding a perfectly valid file).
        byte[] real = TestWheels.bytes("tampered", "1.0", null);
        byte[] served = real.clone();
        served[served.length / 2] ^= 1;
        upstream.add(new FakeUpstream.Served(TestWheels.filename("tampered", "1.0"), served, TestWheels.sha256(real), null, false),
                "tampered");
        hostService = new FakeUpstream();
        byte[] lured = TestWheels.bytes("lured", "1.0", null);
        String luredName = TestWheels.filename("lured", "1.0");
        hostService.add("lured", luredName, lured);
        upstream.add("lured", luredName, lured);
        upstream.hrefs.put(luredName, hostService.fileUrl(luredName));
        Path allow = dir.resolve("allowlist.txt");
        Files.writeString(allow, "# projects sandboxes may take from the mirror\nuppkg==1.0\ntampered\nlured\n");
        PackageConfig packages = new PackageConfig(wheelhouse, upstream.simpleUrl(), allow, null);
        startServer(cfg -> cfg.withPackages(packages));
    }

    @AfterAll
    void down() {
        try {
            stopServer();
        } finally {
            if (upstream != null) upstream.close();
            if (hostService != null) hostService.close();
            if (dir != null) TestServer.deleteTree(dir);
        }
    }

    RawClient.Box create() {
        // The default network policy: none. Packages come from the server's own index regardless.
        return c.create(Map.of("templateID", "code-interpreter-v1", "timeout", 180));
    }

    @Test
    void pipInstallsApprovedPackagesAndRefusesOthersByName() {
        requires(Capabilities.NETWORK_ALLOWLIST, "pip reaches the package index (http://pypi.stockade/) through the host's egress proxy");
        RawClient.Box b = create();
        try {
            RawClient.Run ok = c.run(b, "pip install tinypkg && python3 -c 'import tinypkg; print(\"v\" + tinypkg.VERSION)'");
            assertEquals(0, ok.exitCode(), ok.stdout() + ok.stderr());
            assertTrue(ok.stdout().strip().endsWith("v1.0"), ok.stdout());

            // From the upstream, only the pinned version on the allow-list.
            RawClient.Run up = c.run(b, "pip install uppkg && python3 -c 'import uppkg; print(\"v\" + uppkg.VERSION)'");
            assertEquals(0, up.exitCode(), up.stdout() + up.stderr());
            assertTrue(up.stdout().strip().endsWith("v1.0"), up.stdout());
            assertTrue(upstream.requests.stream().noneMatch(r -> r.contains("uppkg-2.0")), upstream.requests.toString());

            for (String refused : List.of("evilpkg", "notlisted")) {
                RawClient.Run no = c.run(b, "pip install " + refused);
                String all = no.stdout() + no.stderr();
                assertNotEquals(0, no.exitCode(), all);
                assertTrue(all.contains(refused) && all.contains("package policy"), all);
            }
            assertTrue(upstream.requests.stream().noneMatch(r -> r.contains("notlisted-1.0")),
                    "a refused file is never fetched: " + upstream.requests);

            JsonNode log = c.call("GET", "/sandboxes/" + b.id() + "/network/log?limit=1000", null).json();
            boolean allowed = false;
            boolean refused = false;
            for (JsonNode d : log.get("decisions")) {
                if (!d.get("kind").asText().equals("package")) continue;
                if (d.get("host").asText().equals("tinypkg") && d.get("allowed").asBoolean()) allowed = true;
                if (d.get("host").asText().equals("evilpkg") && !d.get("allowed").asBoolean()) refused = true;
            }
            assertTrue(allowed && refused, log.toString());
        } finally {
            c.kill(b);
        }
    }

    @Test
    void upstreamFilesArriveVerifiedAndOnlyFromTheConfiguredUpstream() {
        requires(Capabilities.NETWORK_ALLOWLIST, "pip reaches the package index (http://pypi.stockade/) through the host's egress proxy");
        RawClient.Box b = create();
        try {
            for (String project : List.of("tampered", "lured")) {
                RawClient.Run r = c.run(b, "pip install " + project + "; python3 -c 'import " + project + "'");
                String all = r.stdout() + r.stderr();
                assertNotEquals(0, r.exitCode(), all);
                assertTrue(all.contains("502"), all);
                assertFalse(all.contains("Successfully installed"), all);
            }
            RawClient.Run left = c.run(b, "ls /home/user/.local/lib/python3*/site-packages 2>/dev/null | grep -ci -e tampered -e lured || true");
            assertEquals("0", left.stdout().strip(), "nothing of either file was installed");
            assertTrue(hostService.requests.isEmpty(), "the server never fetched from the host's loopback: " + hostService.requests);
        } finally {
            c.kill(b);
        }
    }

    @Test
    void theInstallApiChecksThePolicyFirstThenRunsPipAsTheUser() {
        requires(Capabilities.NETWORK_ALLOWLIST, "pip reaches the package index (http://pypi.stockade/) through the host's egress proxy");
        RawClient.Box b = create();
        try {
            RawClient.Response ok = c.call("POST", "/sandboxes/" + b.id() + "/packages", Map.of("packages", List.of("tinypkg==1.0")));
            assertEquals(200, ok.status(), ok.body());
            assertTrue(ok.json().get("installed").asBoolean(), ok.body());
            assertEquals("exited", ok.json().get("outcome").asText());
            RawClient.Run owner = c.run(b, "stat -c %U /home/user/.local/lib/python3*/site-packages/tinypkg/__init__.py");
            assertEquals("user", owner.stdout().strip(), owner.stderr());

            RawClient.Response no = c.call("POST", "/sandboxes/" + b.id() + "/packages",
                    Map.of("packages", List.of("tinypkg", "evilpkg>=1")));
            assertEquals(403, no.status(), no.body());
            String message = no.json().get("message").asText();
            assertTrue(message.contains("evilpkg") && message.contains("package policy"), message);

            for (Object bad : List.of(List.of("-e git+https://example.com/x.git"), List.of("http://example.com/x.whl"),
                    List.of("--index-url=http://evil/simple tinypkg"), List.of(), "tinypkg", List.of(42))) {
                RawClient.Response r = c.call("POST", "/sandboxes/" + b.id() + "/packages", Map.of("packages", bad));
                assertEquals(400, r.status(), bad + " → " + r.body());
            }
            assertEquals(404, c.call("POST", "/sandboxes/nosuchsandbox/packages",
                    Map.of("packages", List.of("tinypkg"))).status());
        } finally {
            c.kill(b);
        }
    }

    @Test
    void percentPipInTheInterpreterGoesThroughTheSamePolicy() {
        requires(Capabilities.NETWORK_ALLOWLIST, "pip reaches the package index (http://pypi.stockade/) through the host's egress proxy");
        RawClient.Box b = create();
        try {
            RawClient.Cell cell = c.execute(b, "%pip install -q tinypkg\nimport tinypkg\nprint('got', tinypkg.VERSION)");
            assertTrue(cell.stdout().contains("got 1.0"), cell.toString());
            RawClient.Cell no = c.execute(b, "%pip install evilpkg");
            String all = no.stdout() + no.stderr();
            assertTrue(all.contains("evilpkg") && all.contains("package policy"), all);
            assertFalse(all.contains("Successfully installed"), all);
        } finally {
            c.kill(b);
        }
    }
}
