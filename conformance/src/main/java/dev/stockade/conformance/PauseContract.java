package dev.stockade.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.runtime.Capabilities;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Pause and resume (E2B's pause and connect): a paused sandbox is frozen in place — no CPU, its
 * files, its processes' memory and its interpreter's state kept — and goes on where it was when
 * resumed. Paused sandboxes do not expire; autoPause pauses at the timeout instead of ending.
 */
public abstract class PauseContract extends RuntimeContract {

    @BeforeAll
    void up() {
        startServer();
    }

    private static final String COUNTER = "nohup /usr/bin/python3 -c 'import time\nn = 0\nwhile True:\n    n += 1\n"
            + "    open(\"/tmp/n.tmp\", \"w\").write(str(n)); __import__(\"os\").replace(\"/tmp/n.tmp\", \"/tmp/n\")\n"
            + "    time.sleep(0.02)' > /dev/null 2>&1 &";

    @Test
    void aPausedSandboxKeepsFilesMemoryAndInterpreterStateAndUsesNoCpu() throws Exception {
        requires(Capabilities.PAUSE, "it pauses a sandbox (freezes it in place) and resumes it");
        RawClient.Box box = c.create();
        try {
            c.run(box, "echo kept > /home/user/f.txt");
            assertEquals("41", c.execute(box, "x = 41\nx").text());
            c.run(box, COUNTER);
            long before = waitForCount(box, 10);

            long t = System.nanoTime();
            RawClient.Response paused = c.call("POST", "/sandboxes/" + box.id() + "/pause", Map.of());
            double pauseMs = (System.nanoTime() - t) / 1e6;
            assertEquals(200, paused.status(), paused.body());
            assertEquals("paused", paused.json().path("state").asText());
            assertTrue(paused.json().path("preserved").path("memory").asBoolean(), paused.body());
            assertTrue(paused.json().path("preserved").path("filesystem").asBoolean(), paused.body());

            JsonNode detail = c.call("GET", "/sandboxes/" + box.id(), null).json();
            assertEquals("paused", detail.path("state").asText(), detail.toString());
            assertTrue(ids("?state=paused").contains(box.id()));
            assertFalse(ids("?state=running").contains(box.id()));
            assertTrue(ids("").contains(box.id()), "listed by default, as E2B does");

            // Frozen: no CPU time passes in its cgroup, and its routes answer as for a sandbox that is not running.
            long cpu0 = cpuNanos(box);
            Thread.sleep(500);
            if (checksWithout(Capabilities.USERSPACE_KERNEL, "a paused user-space kernel keeps a few timers of its own"
                    + " running (measured ~0.3 ms per 0.5 s); it must stay under 2% of a CPU, and the counter above stops")) {
                assertEquals(cpu0, cpuNanos(box), "a paused sandbox used CPU");
            } else {
                long used = cpuNanos(box) - cpu0;
                assertTrue(used < 10_000_000L, "a paused sandbox used " + used + " ns of CPU in 500 ms");
            }
            Map<String, String> envd = c.envd(box);
            assertEquals(502, c.call("POST", "/filesystem.Filesystem/Stat", Map.of("path", "/home/user"), envd).status());
            assertEquals(409, c.call("POST", "/sandboxes/" + box.id() + "/pause", Map.of()).status(), "already paused");

            t = System.nanoTime();
            RawClient.Response resumed = c.call("POST", "/v2/sandboxes/" + box.id() + "/connect", Map.of("timeout", 120));
            double resumeMs = (System.nanoTime() - t) / 1e6;
            assertEquals(200, resumed.status(), resumed.body());
            assertEquals(box.token(), resumed.json().path("envdAccessToken").asText(), "the same sandbox, the same token");
            System.out.printf("pause %.1f ms, resume %.1f ms%n", pauseMs, resumeMs);

            // The counter goes on from where it was (its memory was kept), not from zero.
            long after = count(box);
            assertTrue(after >= before && after < before + 25, "counter before the pause " + before + ", just after " + after);
            long later = waitForCount(box, after + 5);
            assertTrue(later > after);
            assertEquals("42", c.execute(box, "x + 1").text(), "the interpreter's state survived");
            assertEquals("kept\n", c.run(box, "cat /home/user/f.txt").stdout());
            assertEquals("running", c.call("GET", "/sandboxes/" + box.id(), null).json().path("state").asText());
        } finally {
            c.kill(box);
        }
    }

    @Test
    void aPausedSandboxCanBeKilledAndDoesNotExpire() throws Exception {
        requires(Capabilities.PAUSE, "it pauses a sandbox (freezes it in place) and resumes it");
        RawClient.Response cr = c.call("POST", "/v2/sandboxes", Map.of("templateID", "base", "timeout", 3));
        RawClient.Box box = new RawClient.Box(cr.json().get("sandboxID").asText(), cr.json().get("envdAccessToken").asText());
        try {
            c.run(box, COUNTER);
            assertEquals(200, c.call("POST", "/sandboxes/" + box.id() + "/pause", Map.of("memory", true)).status());
            Thread.sleep(4000);
            assertEquals("paused", c.call("GET", "/sandboxes/" + box.id(), null).json().path("state").asText(),
                    "its timeout stops while it is paused");
            assertEquals(400, c.call("POST", "/sandboxes/" + box.id() + "/pause", Map.of("memory", "yes")).status());
        } finally {
            assertEquals(204, c.call("DELETE", "/sandboxes/" + box.id(), null).status());
        }
        assertEquals(404, c.call("GET", "/sandboxes/" + box.id(), null).status());
        assertEquals(404, c.call("POST", "/sandboxes/" + box.id() + "/pause", Map.of()).status());
        assertEquals(404, c.call("POST", "/sandboxes/" + box.id() + "/connect", Map.of()).status());
        // The server's leak check (TestServer.close) proves the frozen processes, cgroups and mounts are gone.
    }

    @Test
    void autoPausePausesAtTheTimeoutInsteadOfEnding() throws Exception {
        requires(Capabilities.PAUSE, "it pauses a sandbox (freezes it in place) and resumes it");
        RawClient.Response cr = c.call("POST", "/v2/sandboxes", Map.of("templateID", "base", "timeout", 2, "autoPause", true));
        assertEquals(201, cr.status(), cr.body());
        RawClient.Box box = new RawClient.Box(cr.json().get("sandboxID").asText(), cr.json().get("envdAccessToken").asText());
        try {
            c.run(box, "echo survived > /home/user/s.txt");
            String state = "";
            for (int i = 0; i < 60 && !state.equals("paused"); i++) {
                Thread.sleep(100);
                state = c.call("GET", "/sandboxes/" + box.id(), null).json().path("state").asText();
            }
            assertEquals("paused", state);
            assertTrue(c.call("GET", "/sandboxes/" + box.id(), null).json().path("autoPause").asBoolean());
            assertEquals(200, c.call("POST", "/sandboxes/" + box.id() + "/connect", Map.of("timeout", 60)).status());
            assertEquals("survived\n", c.run(box, "cat /home/user/s.txt").stdout());
        } finally {
            c.kill(box);
        }
    }

    private List<String> ids(String query) {
        List<String> out = new ArrayList<>();
        c.call("GET", "/v2/sandboxes" + query, null).json().forEach(n -> out.add(n.path("sandboxID").asText()));
        return out;
    }

    private long count(RawClient.Box box) {
        String s = c.run(box, "cat /tmp/n 2>/dev/null || echo 0").stdout().strip();
        return s.isEmpty() ? 0 : Long.parseLong(s);
    }

    private long waitForCount(RawClient.Box box, long atLeast) throws InterruptedException {
        long n = 0;
        for (int i = 0; i < 100; i++) {
            n = count(box);
            if (n >= atLeast) return n;
            Thread.sleep(50);
        }
        throw new AssertionError("the counter stayed at " + n + " (wanted " + atLeast + ")");
    }

    /**
     * CPU time the sandbox's cgroup has used (cgroup v1 cpuacct, or v2 cpu.stat), read on the host.
     * The cgroup is found by the sandbox's id in its name (the server plans the OCI cgroupsPath), not
     * by any one runtime's layout.
     */
    private long cpuNanos(RawClient.Box box) throws Exception {
        for (Path root : List.of(Path.of("/sys/fs/cgroup/cpuacct"), Path.of("/sys/fs/cgroup/cpu,cpuacct"))) {
            Path usage = cgroupFile(root, box.id(), "cpuacct.usage");
            if (usage != null) return Long.parseLong(Files.readString(usage).strip());
        }
        Path v2 = cgroupFile(Path.of("/sys/fs/cgroup"), box.id(), "cpu.stat");
        if (v2 == null) throw new AssertionError("no cgroup of sandbox " + box.id() + " with CPU accounting under /sys/fs/cgroup");
        String usage = Arrays.stream(Files.readString(v2).split("\n")).filter(l -> l.startsWith("usage_usec ")).findFirst()
                .orElseThrow();
        return Long.parseLong(usage.substring("usage_usec ".length()).strip()) * 1000;
    }

    /** {@code file} in the cgroup directory under {@code root} (depth 3 at most) whose name holds {@code id}, or null. */
    private static Path cgroupFile(Path root, String id, String file) throws IOException {
        if (!Files.isDirectory(root)) return null;
        try (Stream<Path> s = Files.find(root, 3, (p, a) -> a.isDirectory() && p.getFileName().toString().contains(id))) {
            return s.map(d -> d.resolve(file)).filter(Files::exists).findFirst().orElse(null);
        }
    }
}
