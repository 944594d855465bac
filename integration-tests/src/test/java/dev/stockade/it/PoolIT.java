package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.conformance.RawClient;
import dev.stockade.conformance.TestServer;
import dev.stockade.server.config.PoolConfig;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Warm pools (issue 5): a create takes a ready sandbox, and what it gets is indistinguishable from a
 * fresh one — its own limits, environment, secrets, network policy, timeout, metadata and token —
 * with nothing of the pool's preparation or of another claim in it; only the preloaded interpreter
 * shows (its modules are already imported).
 */
class PoolIT {
    static TestServer ts;
    static RawClient c;

    @BeforeAll
    static void up() {
        ts = new TestServer(cfg -> cfg.withPool(new PoolConfig(2, 1, List.of("numpy", "pandas", "matplotlib.pyplot"))));
        c = ts.client;
        awaitReady(2);
    }

    @AfterAll
    static void down() {
        if (ts != null) ts.close();
    }

    static int ready() {
        Matcher m = Pattern.compile("(?m)^stockade_pool_ready (\\d+)$").matcher(c.call("GET", "/metrics", null).body());
        assertTrue(m.find());
        return Integer.parseInt(m.group(1));
    }

    static void awaitReady(int n) {
        long deadline = System.nanoTime() + 120_000_000_000L;
        while (ready() < n) {
            assertTrue(System.nanoTime() < deadline, "the pool did not fill to " + n + " within 120 s");
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    @Test
    void aPooledSandboxIsIndistinguishableFromAFreshOne() {
        awaitReady(2);
        RawClient.Response r = c.call("POST", "/v2/sandboxes", Map.of("templateID", "code-interpreter-v1", "timeout", 77,
                "metadata", Map.of("who", "pool-it"), "envVars", Map.of("MY_VAR", "mine"),
                "limits", Map.of("memoryMB", 384, "pids", 96, "cpus", 0.5, "diskMB", 200),
                "secrets", Map.of("TOKEN", Map.of("value", "v-secret-123", "hosts", List.of("api.example.com")))));
        assertEquals(201, r.status(), r.body());
        RawClient.Box b = new RawClient.Box(r.json().get("sandboxID").asText(), r.json().get("envdAccessToken").asText());
        try {
            // Its own limits (applied at hand-over: the pool's were the defaults).
            RawClient.Run lim = c.run(b, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
                    + "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us; "
                    + "df -m --output=avail / | tail -1; ulimit -Hu");
            List<String> v = lim.stdout().lines().map(String::strip).toList();
            assertEquals(String.valueOf(384L * 1024 * 1024), v.get(0), lim.stdout());
            assertEquals(String.valueOf(2 * 96 + 64), v.get(1), "pids for both users and the agent's reserve: " + lim.stdout());
            assertEquals("96", v.get(4), "each user's process limit, changed on every process at hand-over: " + lim.stdout());
            assertEquals("50000", v.get(2), lim.stdout());
            // The disk quota: the pool's disk (the default 1 GiB) cannot shrink while mounted, so a
            // ballast takes the difference (LoopDisk.resize): df's size stays the pool's, what is
            // free is the 200 MiB less the few files the warm-up wrote.
            long avail = Long.parseLong(v.get(3));
            assertTrue(avail <= 200 && avail > 180, "200 MiB may be written: " + lim.stdout());
            // Its own environment and secret placeholder.
            RawClient.Run env = c.run(b, "echo \"$MY_VAR ${TOKEN:0:16}\"");
            assertEquals("mine stockade-secret-", env.stdout().strip());
            // Its own identity, deadline, metadata, network policy and an empty decision log.
            JsonNode d = c.call("GET", "/sandboxes/" + b.id(), null).json();
            assertEquals("pool-it", d.at("/metadata/who").asText());
            long left = Instant.parse(d.get("endAt").asText()).getEpochSecond() - Instant.now().getEpochSecond();
            assertTrue(left > 60 && left <= 77, "endAt is 77 s after the create: " + left);
            assertEquals("none", d.at("/network/mode").asText());
            assertEquals(0, c.call("GET", "/sandboxes/" + b.id() + "/network/log", null).json().get("decisions").size());

            // Nothing of the preparation: no processes, /tmp empty, no files in the home but the state
            // IPython and matplotlib keep there (the profile directory and the font cache), which
            // any sandbox's first cell creates the same way.
            assertEquals(0, c.rpc(b, "process.Process/List", Map.of()).json().path("processes").size(),
                    "no process of the preparation is listed");
            RawClient.Run files = c.run(b, "find /tmp /home/user -type f ! -path '/home/user/.cache/*' ! -path '/home/user/.ipython/*' | sort");
            assertEquals("", files.stdout().strip(), files.stdout());
            // The interpreter is warm: pandas is already imported; the user's namespace is empty; cell 1 is [1].
            RawClient.Cell first = c.execute(b, "import sys\nprint('pandas' in sys.modules, 'numpy' in sys.modules)\n"
                    + "print(sorted(n for n in dir() if not n.startswith('_') and n not in ('In', 'Out', 'exit', 'quit', 'get_ipython', 'sys')))");
            assertEquals("True True\n[]\n", first.stdout(), first.toString());
            assertEquals(1, first.executionCount());
            RawClient.Cell envCell = c.execute(b, "import os\nos.environ['MY_VAR'], os.environ['TOKEN'][:16]");
            assertEquals("('mine', 'stockade-secret-')", envCell.text(), envCell.toString());
            RawClient.Cell plot = c.execute(b, "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()");
            assertEquals(1, plot.results().stream().filter(x -> x.has("png")).count(), plot.toString());
        } finally {
            c.kill(b);
        }
    }

    @Test
    void eachPooledSandboxServesOneCreateAndThePoolRefills() {
        awaitReady(2);
        RawClient.Box a = c.create(Map.of("templateID", "base", "timeout", 60));
        c.run(a, "echo left-by-a > /home/user/a.txt; echo tmp > /tmp/a");
        c.kill(a);
        RawClient.Box b = c.create(Map.of("templateID", "base", "timeout", 60));
        try {
            assertNotEquals(a.id(), b.id());
            RawClient.Run r = c.run(b, "test -e /home/user/a.txt || test -e /tmp/a && echo found || echo clean");
            assertEquals("clean", r.stdout().strip(), "nothing of the earlier claim: " + r.stdout());
            // A token of the earlier claim opens nothing.
            RawClient.Response old = c.call("POST", "/process.Process/List", Map.of(),
                    Map.of("E2b-Sandbox-Id", b.id(), "E2b-Sandbox-Port", "49983", "X-Access-Token", a.token(),
                            "Content-Type", "application/json"));
            assertEquals(401, old.status(), old.body());
        } finally {
            c.kill(b);
        }
        awaitReady(2);
        // A request the pool cannot serve (another runtime: the hardened tier) starts a fresh sandbox of
        // its own runtime, the pool untouched; an unknown runtime is a 400, the pool untouched too.
        assertEquals(400, c.call("POST", "/sandboxes", Map.of("templateID", "base", "runtime", "no-such")).status());
        RawClient.Response hardened = c.call("POST", "/sandboxes", Map.of("templateID", "base-hardened", "timeout", 60));
        assertEquals(201, hardened.status(), hardened.body());
        try {
            assertEquals(2, ready());
            JsonNode detail = c.call("GET", "/sandboxes/" + hardened.json().path("sandboxID").asText(), null).json();
            assertEquals("runsc", detail.path("runtime").asText(), detail.toString());
        } finally {
            assertEquals(204, c.call("DELETE", "/sandboxes/" + hardened.json().path("sandboxID").asText(), null).status());
        }
    }
}
