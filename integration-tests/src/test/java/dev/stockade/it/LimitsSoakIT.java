package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.conformance.RawClient;
import dev.stockade.conformance.RuntimeContract;
import dev.stockade.conformance.TestServer;
import dev.stockade.server.config.ServerConfig;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.Test;

/**
 * Issue 15's soak, CI-sized (SPECIFICATION.md S3.10k–S3.12k; the full-size benchmark with the strict
 * 2× figure is bench/limits.sh): ten runc sandboxes, two at each limit — a full disk, a fork storm,
 * a memory bomb, endless output, a CPU spin — held there while a neighbour runs {@code echo} every
 * 100 ms. Then each of the ten, still at its limit, must run a command, serve its files and be
 * killed leaving nothing on the host; and the neighbour's p99 during the storm must stay within
 * bound of its idle p99. The soak runs once (the first test to ask for it) and the tests read its
 * record. Sizes: -Dstockade.limitsoak.samples=N (neighbour samples per window, default 150).
 *
 * <p>Why the latency assertion does not flake on a shared 2-core CI machine (where another job's
 * build can take both cores at any moment):
 * <ul>
 *   <li>the noisy sandboxes are capped at cpus=0.1 each, 1 core for all ten by the kernel's CFS
 *       quota, so the storm alone can never take the host's second core from the neighbour; the
 *       one storm whose cost falls outside every quota, relaying endless output, is paced by the
 *       server itself (its per-sandbox output rate, {@code OutputPace}: about four 1 MiB caps a
 *       second per sandbox instead of ~15 — asserted here too, with room);</li>
 *   <li>idle is measured twice, before the storm and after every noisy sandbox is killed, and the
 *       reference is the worse of the two windows' p99, so load that comes and goes around the
 *       storm raises the reference rather than failing the test;</li>
 *   <li>the bound is max(2 × idle p99, idle p99 + 50 ms): a millisecond-scale idle p99 cannot
 *       turn one scheduler hiccup into a failure, while the finding this guards against (a
 *       sandbox at a limit that stalls the server or the host: seconds, or a dead neighbour) is
 *       far above it;</li>
 *   <li>p99 of 150 samples is the second-worst sample: one stall of the JVM or the host is
 *       tolerated;</li>
 *   <li>every sample must succeed: a neighbour that fails is a failure whatever the timing.</li>
 * </ul>
 * The strict "p99 below 2× idle" of the issue is bench/limits.sh's figure, recorded in
 * docs/BENCHMARKS.md with the machine's load, not asserted here.
 */
class LimitsSoakIT extends OneServerPerClass {
    static final double CPUS = 0.1;

    /**
     * One noisy sandbox's assignment: its limits, the command that holds it at them, whether that
     * command is run once, and the pause before it is run again.
     */
    record Case(String name, Map<String, Object> limits, String command, boolean once, long pauseMs) {
        Case(String name, Map<String, Object> limits, String command, boolean once) {
            this(name, limits, command, once, 0);
        }
    }

    static final String DD = "dd if=/dev/zero of=/home/user/fill bs=1M 2>&1; echo dd-exit=$?";
    // The storm with children that stay (sleep 600, not 5): bash retries a refused fork with a
    // back-off of up to 16 s, so with short-lived children the sandbox would only touch its limit now and then.
    static final String FORK_STORM = "for i in $(seq 1 100000); do (sleep 600 &); done 2>/dev/null";
    static final String MEMORY_BOMB = "tail /dev/zero";   // one line that never ends: held in memory until the OOM killer ends it
    static final String SPIN = "for i in 1 2 3 4; do (while :; do :; done) & done; wait";

    static final List<Case> CASES = List.of(
            new Case("full disk within memory", Map.of("diskMB", 64, "memoryMB", 256, "cpus", CPUS), DD, true),
            new Case("full disk beyond memory", Map.of("diskMB", 256, "memoryMB", 128, "cpus", CPUS), DD, true),
            new Case("fork storm 1", Map.of("pids", 64, "cpus", CPUS), FORK_STORM, false),
            new Case("fork storm 2", Map.of("pids", 64, "cpus", CPUS), FORK_STORM, false),
            new Case("memory bomb 1", Map.of("memoryMB", 128, "cpus", CPUS), MEMORY_BOMB, false),
            new Case("memory bomb 2", Map.of("memoryMB", 128, "cpus", CPUS), MEMORY_BOMB, false),
            // Relaying output is the server's work, under no sandbox's quota: unpaced, two sandboxes
            // would push ~30 MiB/s through this JVM. The server paces each sandbox's output
            // (ServerConfig.DEFAULT_OUTPUT_BYTES_PER_SECOND), so `yes` runs back to back here.
            new Case("endless output 1", Map.of("outputMB", 1, "cpus", CPUS), "yes", false),
            new Case("endless output 2", Map.of("outputMB", 1, "cpus", CPUS), "yes", false),
            new Case("CPU spin 1", Map.of("cpus", CPUS), SPIN, false),
            new Case("CPU spin 2", Map.of("cpus", CPUS), SPIN, false));

    /** A noisy sandbox and what happened to it. */
    static final class Noisy {
        final Case kase;
        final RawClient.Box box;
        final long base;
        final boolean diskIsMemory;
        final List<String> outcomes = Collections.synchronizedList(new ArrayList<>());
        final List<String> failures = new ArrayList<>();
        final Map<String, String> seen = new LinkedHashMap<>();
        volatile boolean stop;
        volatile String onceOutput = "";
        volatile long drivenSince;
        Thread driver;

        Noisy(Case kase, RawClient.Box box, long base, boolean diskIsMemory) {
            this.kase = kase;
            this.box = box;
            this.base = base;
            this.diskIsMemory = diskIsMemory;
        }

        boolean isDisk() {
            return kase.command().equals(DD);
        }
    }

    record Soak(List<Double> idleBefore, List<Double> storm, List<Double> idleAfter, List<String> neighbourFailures,
                List<Noisy> noisy) {
        double idleP99() {
            return Math.max(p99(idleBefore), p99(idleAfter));
        }
    }

    private static Soak soak;
    private static Exception failed;

    /** The soak's record: run by the first test that asks, once (a soak that failed is not run again). */
    static synchronized Soak soak() throws Exception {
        if (soak == null && failed == null) {
            try {
                soak = runSoak();
            } catch (Exception | AssertionError e) {
                failed = new Exception("the soak did not complete", e);
            }
        }
        if (failed != null) throw failed;
        return soak;
    }

    @Test
    void theNeighbourKeepsItsLatencyWhileTenSandboxesAreAtTheirLimits() throws Exception {
        Soak s = soak();
        assertEquals(List.of(), s.neighbourFailures(), "every echo of the neighbour succeeds");
        double idle = s.idleP99();
        double bound = Math.max(2 * idle, idle + 50);
        assertTrue(p99(s.storm()) < bound, String.format(
                "the neighbour's echo p99 during the storm, %.1f ms, passed max(2 × idle p99, idle p99 + 50 ms) = %.1f ms"
                        + " (idle p99 before %.1f ms, after %.1f ms)", p99(s.storm()), bound, p99(s.idleBefore()), p99(s.idleAfter())));
    }

    @Test
    void eachSandboxAtItsLimitStillRunsServesAndIsKilledCleanly() throws Exception {
        Map<String, List<String>> failed = new TreeMap<>();
        for (Noisy n : soak().noisy()) {
            if (!n.failures.isEmpty()) failed.put(n.kase.name(), n.failures);
        }
        assertEquals(Map.of(), failed, "sandboxes at a limit that lost a command, their files or a clean kill");
    }

    /**
     * The "a full disk kills the whole sandbox": a disk quota larger than the memory limit,
     * filled. The disk is a filesystem of its own (a loop-mounted image), so the writer gets ENOSPC
     * and the sandbox goes on. On a tmpfs charged to the sandbox's memory (the runtime's fallback on
     * a host without loop devices) this was an OOM kill; this host has them, so a fallback here is
     * a failure, not a skip.
     */
    @Test
    void aDiskFilledBeyondTheMemoryLimitIsEnospcNotADeadSandbox() throws Exception {
        for (Noisy n : soak().noisy()) {
            if (!n.isDisk() || (Integer) n.kase.limits().get("diskMB") <= (Integer) n.kase.limits().get("memoryMB")) continue;
            assertFalse(n.diskIsMemory, "the sandbox's disk is a tmpfs charged to memory (the loop-disk fallback): filling it past"
                    + " memoryMB gave " + n.seen + " failures " + n.failures);
            assertEquals(List.of(), n.failures, n.kase.name() + ": " + n.seen);
        }
    }

    // ---------------------------------------------------------------------------------------------

    private static Soak runSoak() throws Exception {
        int samples = Integer.getInteger("stockade.limitsoak.samples", 150);
        RawClient.Box neighbour = c.create(Map.of("templateID", "base", "timeout", 600));
        List<Noisy> noisy = new ArrayList<>();
        try {
            for (Case k : CASES) {
                RawClient.Box b = c.create(Map.of("templateID", "base", "timeout", 600, "limits", k.limits()));
                RawClient.Run map = c.run(b, "cat /proc/self/uid_map", "root");
                long base = Long.parseLong(map.stdout().trim().split("\\s+")[1]);
                Noisy n = new Noisy(k, b, base, diskIsMemory(b.id()));
                noisy.add(n);
                assertEquals(200, c.upload(b, "/home/user/before.txt", ("before " + k.name()).getBytes(StandardCharsets.UTF_8)).status());
            }
            List<String> neighbourFailures = new ArrayList<>();
            List<Double> idleBefore = sample(neighbour, samples, neighbourFailures);
            for (Noisy n : noisy) n.driver = Thread.ofVirtual().start(() -> drive(n));
            Thread.sleep(4000); // every storm reaches its limit (the slowest, a 256 MiB dd at cpus=0.1, in about 3 s)
            List<Double> storm = sample(neighbour, samples, neighbourFailures);
            for (Noisy n : noisy) {
                try {
                    check(n);
                } catch (RuntimeException e) {
                    n.failures.add("checking it: " + e);
                    n.stop = true;
                }
            }
            List<Double> idleAfter = sample(neighbour, samples, neighbourFailures);
            Soak s = new Soak(idleBefore, storm, idleAfter, neighbourFailures, noisy);
            System.out.printf("[LimitsSoakIT] neighbour echo, %d samples every 100 ms: idle before median %.1f p99 %.1f ms;"
                            + " storm median %.1f p99 %.1f ms; idle after median %.1f p99 %.1f ms; storm p99 / idle p99 = %.2f;"
                            + " load %s%n", samples, median(idleBefore), p99(idleBefore), median(storm), p99(storm),
                    median(idleAfter), p99(idleAfter), p99(storm) / s.idleP99(), Files.readString(Path.of("/proc/loadavg")).strip());
            for (Noisy n : noisy) {
                System.out.println("[LimitsSoakIT] " + n.kase.name() + " " + n.kase.limits() + ": " + n.seen
                        + (n.failures.isEmpty() ? "" : " FAILURES " + n.failures));
            }
            return s;
        } finally {
            for (Noisy n : noisy) {
                n.stop = true;
                c.kill(n.box);
            }
            c.kill(neighbour);
        }
    }

    /** Holds sandbox {@code n} at its limit: runs its command again whenever it ends, until told to stop. */
    private static void drive(Noisy n) {
        n.drivenSince = System.nanoTime();
        while (!n.stop) {
            try {
                RawClient.Run r = c.run(n.box, n.kase.command());
                n.outcomes.add(r.end() != null ? r.outcome() : "stream error " + r.error());
                if (n.kase.once()) {
                    n.onceOutput = r.stdout() + r.stderr();
                    return;
                }
                if (r.end() == null) Thread.sleep(100); // never a tight loop of refusals
                if (n.kase.pauseMs() > 0) Thread.sleep(n.kase.pauseMs());
            } catch (RuntimeException | InterruptedException e) {
                if (!n.stop) n.outcomes.add("error " + e);
                return;
            }
        }
    }

    /** While it is still at its limit: what shows it got there, a command, the files API both ways, then the kill. */
    private static void check(Noisy n) throws Exception {
        String id = n.box.id();
        switch (n.kase.command()) {
            case DD -> {
                n.seen.put("dd", n.onceOutput.lines().filter(l -> l.contains("dd") || l.contains("space")).toList() + " " + n.outcomes);
                if (!n.onceOutput.contains("No space left on device")) n.failures.add("the full disk was not ENOSPC: " + n.onceOutput.strip());
            }
            case FORK_STORM -> {
                String procs = c.run(n.box, "grep -l '^Uid:[[:space:]]1000[[:space:]]' /proc/[0-9]*/status 2>/dev/null | wc -l", "root")
                        .stdout().strip();
                n.seen.put("user processes", procs);
                if (!procs.matches("\\d+") || Integer.parseInt(procs) < 32) n.failures.add("the storm did not reach its process limit: " + procs);
            }
            case SPIN -> {
                String stat = RuntimeContract.hostCgroupFile(id, "cpu.stat");
                n.seen.put("cpu.stat", stat.replace('\n', ' '));
                if (!stat.matches("(?s).*nr_throttled [1-9].*")) n.failures.add("the spin was never throttled: " + stat);
            }
            default -> {
                String wanted = n.kase.command().equals("yes") ? "output_truncated" : "oom_killed";
                List<String> outcomes;
                synchronized (n.outcomes) {
                    outcomes = List.copyOf(n.outcomes);
                }
                double driven = (System.nanoTime() - n.drivenSince) / 1e9;
                n.seen.put("outcomes", summary(outcomes) + String.format(" in %.1f s", driven));
                if (!outcomes.contains(wanted)) n.failures.add("never reached its limit (" + wanted + "): " + summary(outcomes));
                if (wanted.equals("output_truncated")) {
                    // The server's pace: after a burst of one cap, caps come about rate / cap a second
                    // (4 a second; unpaced, ~15). Half as many again is allowed: a run cut at its
                    // limit may have forwarded a little less than the whole MiB.
                    double mibPerSecond = ServerConfig.DEFAULT_OUTPUT_BYTES_PER_SECOND / (1024.0 * 1024.0);
                    long caps = outcomes.stream().filter(wanted::equals).count();
                    if (caps > Math.ceil(1.5 * driven * mibPerSecond) + 2) {
                        n.failures.add(caps + " runs reached their 1 MiB cap in " + driven + " s: the output was not paced at "
                                + mibPerSecond + " MiB/s");
                    }
                }
            }
        }
        RawClient.Response alive = c.call("GET", "/sandboxes/" + id, null);
        if (alive.status() != 200) {
            n.failures.add("the sandbox is gone: GET /sandboxes/" + id + " answers " + alive.status() + " " + alive.body());
        } else {
            stillServes(n);
        }
        n.stop = true;
        RawClient.Response kill = c.call("DELETE", "/sandboxes/" + id, null);
        n.seen.put("kill", Integer.toString(kill.status()));
        if (kill.status() != 204 && alive.status() == 200) n.failures.add("kill: " + kill.status() + " " + kill.body());
        List<String> left = TestServer.leftoversOf(ts.dataDir, id, n.base);
        for (int i = 0; i < 100 && !left.isEmpty(); i++) {
            Thread.sleep(100);
            left = TestServer.leftoversOf(ts.dataDir, id, n.base);
        }
        if (!left.isEmpty()) n.failures.add("left on the host 10 s after the kill: " + left);
        n.driver.join(10_000);
    }

    /** A command as root, a file written before the storm read back, an upload and download (after freeing a full disk). */
    private static void stillServes(Noisy n) {
        long t0 = System.nanoTime();
        RawClient.Run ok = c.run(n.box, "echo ok", "root");
        double secs = (System.nanoTime() - t0) / 1e9;
        n.seen.put("echo ok", String.format("%s in %.2f s", ok.stdout().strip(), secs));
        if (!"ok\n".equals(ok.stdout()) || secs > 10) n.failures.add("echo ok: " + ok.stdout() + " " + ok.error() + " in " + secs + " s");

        var before = c.download(n.box, "/home/user/before.txt");
        if (before.statusCode() != 200 || !new String(before.body(), StandardCharsets.UTF_8).equals("before " + n.kase.name())) {
            n.failures.add("reading a file written before the storm: " + before.statusCode() + " " + new String(before.body(), StandardCharsets.UTF_8));
        }
        if (n.isDisk()) {
            // The disk is full: an upload is refused cleanly, and once the filler is removed it is accepted.
            RawClient.Response full = c.upload(n.box, "/home/user/during.txt", new byte[1 << 20]);
            n.seen.put("upload to the full disk", Integer.toString(full.status()));
            if (full.status() != 413 && full.status() != 507) {
                n.failures.add("an upload to a full disk: " + full.status() + " " + full.body());
            }
            c.run(n.box, "rm -f /home/user/fill /home/user/during.txt", "root");
        }
        byte[] data = ("during the storm of " + n.kase.name()).getBytes(StandardCharsets.UTF_8);
        RawClient.Response up = c.upload(n.box, "/home/user/during.txt", data);
        var down = c.download(n.box, "/home/user/during.txt");
        if (up.status() != 200 || down.statusCode() != 200 || !java.util.Arrays.equals(data, down.body())) {
            n.failures.add("files during the storm: upload " + up.status() + " " + up.body() + ", download " + down.statusCode());
        }
    }

    /** {@code count} echo round trips on {@code b}, one every 100 ms (fixed rate), in milliseconds. */
    private static List<Double> sample(RawClient.Box b, int count, List<String> failures) throws InterruptedException {
        List<Double> ms = new ArrayList<>();
        long start = System.nanoTime();
        for (int i = 0; i < count; i++) {
            long due = start + i * 100_000_000L;
            long wait = due - System.nanoTime();
            if (wait > 0) Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
            long t0 = System.nanoTime();
            RawClient.Run r = c.run(b, "echo " + i);
            ms.add((System.nanoTime() - t0) / 1e6);
            if (!(i + "\n").equals(r.stdout())) failures.add("echo " + i + ": " + r.stdout() + " " + r.error());
        }
        return ms;
    }

    /**
     * Whether sandbox {@code id}'s writable layer (its overlay's upper directory on the host) lies
     * on a tmpfs, charged to its memory. A layout without that directory counts as not memory, so
     * the full-disk case is asserted, never skipped by mistake.
     */
    private static boolean diskIsMemory(String id) throws Exception {
        try (var runtimes = Files.list(ts.dataDir.resolve("runtime"))) {
            for (Path rt : runtimes.toList()) {
                Path upper = rt.resolve("sandboxes").resolve(id).resolve("disk/upper");
                if (Files.isDirectory(upper)) return Files.getFileStore(upper).type().equals("tmpfs");
            }
        }
        return false;
    }

    private static String summary(List<String> outcomes) {
        Map<String, Integer> m = new TreeMap<>();
        for (String o : outcomes) m.merge(String.valueOf(o), 1, Integer::sum);
        return m.toString();
    }

    static double median(List<Double> xs) {
        List<Double> s = xs.stream().sorted().toList();
        return s.get(s.size() / 2);
    }

    static double p99(List<Double> xs) {
        List<Double> s = xs.stream().sorted().toList();
        return s.get((int) Math.round(0.99 * (s.size() - 1)));
    }
}
