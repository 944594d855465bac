package dev.stockade.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.runtime.Capabilities;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Snapshots and forks (E2B's createSnapshot, Sandbox.create(snapshotId), deleteSnapshot): a
 * snapshot holds a sandbox's files and says it holds nothing else; sandboxes created from it start
 * with those files (content, modes, owners mapped into their own uid range, links) and are
 * independent of each other and of their origin, which goes on running. Snapshots belong to a tenant.
 */
public abstract class SnapshotContract extends RuntimeContract {

    @BeforeAll
    void up() {
        startServer();
    }

    @Test
    void aSnapshotCarriesFilesNotProcessesAndForksAreIndependent() {
        requires(Capabilities.SNAPSHOT, "it snapshots a sandbox's files and starts sandboxes from the snapshot");
        RawClient.Box origin = c.create();
        List<RawClient.Box> forks = new ArrayList<>();
        String snapId = null;
        try {
            byte[] blob = new byte[1 << 20];
            new Random(3).nextBytes(blob);
            assertEquals(200, c.upload(origin, "/home/user/blob.bin", blob).status());
            c.run(origin, "echo origin > /home/user/data.txt && mkdir -p /home/user/proj/src && echo 'print(1)' > /home/user/proj/src/m.py"
                    + " && chmod 600 /home/user/data.txt && ln -s proj/src/m.py /home/user/link.py"
                    + " && echo tmpfile > /tmp/t.txt && (sleep 300 > /dev/null 2>&1 &)");
            assertEquals("1", c.execute(origin, "x = 1\nx").text());
            String blobSum = c.run(origin, "sha256sum /home/user/blob.bin | cut -d' ' -f1").stdout();

            RawClient.Response made = c.call("POST", "/sandboxes/" + origin.id() + "/snapshots", Map.of("name", "base-1"));
            assertEquals(201, made.status(), made.body());
            snapId = made.json().path("snapshotID").asText();
            assertTrue(snapId.startsWith("snap-"), made.body());
            assertEquals("base-1", made.json().path("names").path(0).asText());
            assertTrue(made.json().path("preserved").path("filesystem").asBoolean());
            assertFalse(made.json().path("preserved").path("memory").asBoolean(), "a snapshot says it holds no memory");
            assertFalse(made.json().path("preserved").path("processes").asBoolean());
            assertTrue(made.json().path("bytes").asLong() >= blob.length, made.body());

            // The origin goes on as it was: its process, its interpreter.
            assertEquals("1\n", c.run(origin, "pgrep -c -x sleep").stdout());
            assertEquals("2", c.execute(origin, "x + 1").text());
            assertEquals(409, c.call("POST", "/sandboxes/" + origin.id() + "/snapshots", Map.of("name", "base-1")).status());
            assertEquals(400, c.call("POST", "/sandboxes/" + origin.id() + "/snapshots", Map.of("name", "../x")).status());

            List<String> listed = ids(c.call("GET", "/snapshots", null).json());
            assertTrue(listed.contains(snapId), listed.toString());
            assertEquals(List.of(snapId), ids(c.call("GET", "/snapshots?sandboxID=" + origin.id(), null).json()));

            for (String ref : List.of(snapId, snapId, "base-1")) {
                RawClient.Response cr = c.call("POST", "/v2/sandboxes", Map.of("templateID", ref, "timeout", 120));
                assertEquals(201, cr.status(), cr.body());
                assertEquals(snapId, cr.json().path("restoredFrom").path("snapshotID").asText(), cr.body());
                assertFalse(cr.json().path("restoredFrom").path("memory").asBoolean());
                forks.add(new RawClient.Box(cr.json().get("sandboxID").asText(), cr.json().get("envdAccessToken").asText()));
            }
            for (RawClient.Box f : forks) {
                assertEquals("origin\n", c.run(f, "cat /home/user/data.txt").stdout());
                assertEquals(blobSum, c.run(f, "sha256sum /home/user/blob.bin | cut -d' ' -f1").stdout());
                assertEquals("user:user 600\n", c.run(f, "stat -c '%U:%G %a' /home/user/data.txt").stdout(),
                        "owners are mapped into the fork's own range, modes kept");
                assertEquals("proj/src/m.py\n", c.run(f, "readlink /home/user/link.py").stdout());
                assertEquals("tmpfile\n", c.run(f, "cat /tmp/t.txt").stdout());
                assertEquals("0\n", c.run(f, "pgrep -c -x sleep || true").stdout(), "processes are not in a snapshot");
                RawClient.Cell noVar = c.execute(f, "x");
                assertTrue(noVar.toString().contains("NameError"), "interpreter state is not in a snapshot: " + noVar);
                assertEquals(0, c.run(f, "echo more >> /home/user/data.txt && echo ok > /home/user/proj/new.txt").exitCode(),
                        "the fork's user owns its files");
            }
            // Independent: a fork's writes are its own, and the origin's later writes are not in the forks.
            c.run(forks.get(0), "echo only-in-fork-0 > /home/user/mine.txt");
            c.run(origin, "echo after-snapshot > /home/user/later.txt");
            assertEquals("none\n", c.run(forks.get(1), "cat /home/user/mine.txt /home/user/later.txt 2>/dev/null || echo none").stdout());
            assertEquals("none\n", c.run(origin, "cat /home/user/mine.txt 2>/dev/null || echo none").stdout());
            assertEquals("origin\n", c.run(origin, "cat /home/user/data.txt").stdout());

            // Another tenant sees none of it.
            assertEquals(201, c.call("POST", "/admin/tenants", Map.of("name", "other")).status());
            RawClient other = new RawClient(ts.server.url(), c.call("POST", "/admin/keys", Map.of("tenant", "other")).json().get("key").asText());
            assertEquals(400, other.call("POST", "/v2/sandboxes", Map.of("templateID", snapId)).status());
            assertEquals(400, other.call("POST", "/v2/sandboxes", Map.of("templateID", "base-1")).status());
            assertEquals("[]", other.call("GET", "/snapshots", null).body().strip());
            assertEquals(404, other.call("DELETE", "/templates/" + snapId, null).status());

            assertEquals(204, c.call("DELETE", "/templates/" + snapId, null).status());
            assertEquals(404, c.call("DELETE", "/templates/" + snapId, null).status());
            assertEquals(400, c.call("POST", "/v2/sandboxes", Map.of("templateID", snapId)).status());
            snapId = null;
            assertEquals("origin\n", c.run(forks.get(2), "head -1 /home/user/data.txt").stdout(), "forks outlive their snapshot");
        } finally {
            for (RawClient.Box f : forks) c.kill(f);
            c.kill(origin);
            if (snapId != null) c.call("DELETE", "/templates/" + snapId, null);
        }
    }

    @Test
    void snapshotAndForkOfAHundredMebibytes() {
        requires(Capabilities.SNAPSHOT, "it snapshots a sandbox's files and starts sandboxes from the snapshot");
        RawClient.Box origin = c.create();
        RawClient.Box fork = null;
        String snapId = null;
        try {
            c.run(origin, "for i in 0 1 2 3 4 5 6 7 8 9; do head -c 10485760 /dev/urandom > /home/user/f$i.bin; done");
            String sums = c.run(origin, "cd /home/user && sha256sum f*.bin").stdout();
            long t = System.nanoTime();
            RawClient.Response made = c.call("POST", "/sandboxes/" + origin.id() + "/snapshots", Map.of());
            double snapMs = (System.nanoTime() - t) / 1e6;
            assertEquals(201, made.status(), made.body());
            snapId = made.json().path("snapshotID").asText();
            t = System.nanoTime();
            RawClient.Response cr = c.call("POST", "/v2/sandboxes", Map.of("templateID", snapId));
            double forkMs = (System.nanoTime() - t) / 1e6;
            assertEquals(201, cr.status(), cr.body());
            fork = new RawClient.Box(cr.json().get("sandboxID").asText(), cr.json().get("envdAccessToken").asText());
            assertEquals(sums, c.run(fork, "cd /home/user && sha256sum f*.bin").stdout());
            System.out.printf("[SnapshotIT] 100 MiB: snapshot %.0f ms (%d bytes), fork (create from it) %.0f ms%n",
                    snapMs, made.json().path("bytes").asLong(), forkMs);
        } finally {
            if (fork != null) c.kill(fork);
            c.kill(origin);
            if (snapId != null) c.call("DELETE", "/templates/" + snapId, null);
        }
    }

    private List<String> ids(JsonNode list) {
        List<String> out = new ArrayList<>();
        list.forEach(n -> out.add(n.path("snapshotID").asText()));
        return out;
    }

    /**
     * Issue 15 (finding 7): a fork owns what its origin owned, nothing more. Directories of the
     * template that the origin's writes copied up (/var, /var/tmp) keep the template's owner in the
     * fork; before, they became the fork's root's (SPECIFICATION.md S11.9g).
     */
    @Test
    void aForkDoesNotOwnTheTemplatesDirectories() {
        requires(Capabilities.SNAPSHOT, "it compares a fork's owners with its origin's");
        RawClient.Box origin = c.create();
        RawClient.Box fork = null;
        String snapId = null;
        try {
            String probe = "stat -c '%n %u:%g %a' /var /var/tmp /usr; touch /var/probe 2>/dev/null && echo root-wrote-var || echo no-write";
            assertEquals("", c.run(origin, "echo x > /var/tmp/copied-up").stderr());
            String before = c.run(origin, probe, "root").stdout();
            snapId = snapshotOf(origin);
            fork = c.create(Map.of("templateID", snapId, "timeout", 120));
            String after = c.run(fork, probe, "root").stdout();
            assertEquals(before, after, "the fork's owners and rights are its origin's");
            assertEquals("x\n", c.run(fork, "cat /var/tmp/copied-up").stdout());
        } finally {
            if (fork != null) c.kill(fork);
            c.kill(origin);
            if (snapId != null) c.call("DELETE", "/templates/" + snapId, null);
        }
    }

    /** A new snapshot of {@code origin}: its id. */
    String snapshotOf(RawClient.Box origin) {
        RawClient.Response made = c.call("POST", "/sandboxes/" + origin.id() + "/snapshots", Map.of());
        assertEquals(201, made.status(), made.body());
        return made.json().path("snapshotID").asText();
    }
}
