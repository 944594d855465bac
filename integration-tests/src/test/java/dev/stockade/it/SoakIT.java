package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.stockade.conformance.RawClient;
import dev.stockade.conformance.TestServer;
import dev.stockade.server.store.Store;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Many lifecycles, nothing left: 1,000 sequential and 200 concurrent create → command → kill
 * cycles, with everything a sandbox can leave counted before and after — runc containers, mounts,
 * cgroups, sandbox-uid processes, state directories, egress directories and store rows. Sizes:
 * -Dstockade.soak.sequential=N, -Dstockade.soak.concurrent=N.
 */
class SoakIT extends OneServerPerClass {

    @Test
    void thousandsOfLifecyclesLeaveNothingBehind() throws Exception {
        int sequential = Integer.getInteger("stockade.soak.sequential", 1000);
        int concurrent = Integer.getInteger("stockade.soak.concurrent", 200);
        Map<String, Long> before = counts();
        long t = System.nanoTime();
        for (int i = 0; i < sequential; i++) {
            RawClient.Box b = c.create(Map.of("templateID", "base", "timeout", 60));
            assertEquals(i + "\n", c.run(b, "echo " + i).stdout());
            c.kill(b);
        }
        double seqS = (System.nanoTime() - t) / 1e9;
        assertSettles(before, "after " + sequential + " sequential cycles");

        ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();
        CountDownLatch go = new CountDownLatch(1);
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < concurrent; i++) {
            int n = i;
            threads.add(Thread.ofVirtual().start(() -> {
                try {
                    go.await();
                    RawClient.Box b = c.create(Map.of("templateID", "base", "timeout", 120));
                    try {
                        String out = c.run(b, "echo " + n).stdout();
                        if (!out.equals(n + "\n")) failures.add("cycle " + n + ": " + out);
                    } finally {
                        c.kill(b);
                    }
                } catch (Exception | AssertionError e) {
                    failures.add("cycle " + n + ": " + e);
                }
            }));
        }
        t = System.nanoTime();
        go.countDown();
        for (Thread th : threads) th.join();
        double concS = (System.nanoTime() - t) / 1e9;
        assertEquals(List.of(), List.copyOf(failures));
        assertSettles(before, "after " + concurrent + " concurrent cycles");
        System.out.printf("[SoakIT] %d sequential cycles in %.1f s (%.0f ms each); %d concurrent in %.1f s; nothing left: %s%n",
                sequential, seqS, seqS * 1000 / Math.max(1, sequential), concurrent, concS, before);
    }

    /** The counts come back to {@code before} (a killed pid namespace's processes take a moment to go). */
    private static void assertSettles(Map<String, Long> before, String when) throws Exception {
        Map<String, Long> now = counts();
        for (int i = 0; i < 50 && !now.equals(before); i++) {
            Thread.sleep(100);
            now = counts();
        }
        assertEquals(before, now, when);
    }

    /** Everything a sandbox can leave on the host or in the data directory, counted. */
    private static Map<String, Long> counts() throws Exception {
        Map<String, Long> m = new LinkedHashMap<>();
        String data = ts.dataDir.toString();
        m.put("mounts", Files.readAllLines(Path.of("/proc/self/mountinfo")).stream().filter(l -> l.contains(data)).count());
        Process p = new ProcessBuilder("runc", "list", "--format", "json").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes());
        p.waitFor();
        long containers = 0;
        if (out.strip().startsWith("[")) {
            for (var node : RawClient.JSON.readTree(out)) {
                if (node.path("bundle").asText("").startsWith(data)) containers++;
            }
        }
        m.put("containers", containers);
        long cgroups = 0;
        for (String ctl : List.of("memory", "pids", "cpu", "freezer")) {
            Path root = Path.of("/sys/fs/cgroup", ctl);
            if (!Files.isDirectory(root)) continue;
            try (Stream<Path> s = Files.list(root)) {
                cgroups += s.filter(d -> d.getFileName().toString().startsWith("stockade-")).count();
            }
        }
        m.put("cgroups", cgroups);
        m.put("processes", (long) TestServer.sandboxProcesses(List.of()).size());
        m.put("stateDirs", entries(ts.dataDir.resolve("runtime/runc/sandboxes")));
        m.put("egressDirs", entries(ts.dataDir.resolve("egress")));
        try (Store store = Store.open(ts.dataDir)) {
            m.put("storeRows", store.critical(conn -> {
                try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery("SELECT count(*) FROM sandboxes")) {
                    rs.next();
                    return rs.getLong(1);
                }
            }));
        }
        return m;
    }

    private static long entries(Path dir) throws Exception {
        if (!Files.isDirectory(dir)) return 0;
        try (Stream<Path> s = Files.list(dir)) {
            return s.count();
        }
    }
}
