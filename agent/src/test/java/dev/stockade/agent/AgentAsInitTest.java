package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.stockade.protocol.AgentEvent;
import dev.stockade.protocol.ExecRequest;
import dev.stockade.protocol.Outcome;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * The agent in the roles it has in a sandbox, recreated without a container: init of its own pid
 * namespace (unshare), and inside a memory cgroup with a limit. Both need root; skipped otherwise.
 */
class AgentAsInitTest {
    private static final Path UNSHARE = Path.of("/usr/bin/unshare");
    private static final Path MEMORY_CGROUPS = Path.of("/sys/fs/cgroup/memory");

    @Test
    void asPidOneItReapsOrphansWithoutStealingExitCodes() throws Exception {
        assumeTrue(AgentProcess.ROOT && Files.isExecutable(UNSHARE) && canUnshare(),
                "needs root and unshare for a pid namespace");
        try (AgentProcess agent = AgentProcess.start(Map.of(),
                List.of(UNSHARE.toString(), "--pid", "--fork", "--kill-child", "--mount-proc"), List.of())) {
            assertEquals(1, agent.client.hello(Duration.ofSeconds(2)).pid());
            ProcessHandle init = agent.process.toHandle().children().findFirst().orElseThrow();

            for (int round = 0; round < 5; round++) {
                ExecRequest orphans = new ExecRequest(List.of("sh", "-c",
                        "(sleep 0.05 &); (sleep 0.05 &); (true &); exit 7"), Map.of(), null, "user", false, 0, 0, null);
                Events events = Events.collect(agent.client.exec(orphans), Duration.ofSeconds(5));
                assertEquals(7, events.ended().exitCode());
                assertEquals(Outcome.EXITED, events.ended().outcome());
            }
            Thread.sleep(300);
            long deadline = System.nanoTime() + 3_000_000_000L;
            List<String> zombies;
            do {
                zombies = init.children().filter(AgentAsInitTest::isZombie).map(p -> "pid " + p.pid()).toList();
            } while (!zombies.isEmpty() && System.nanoTime() < deadline);
            assertEquals(List.of(), zombies, "orphans reparented to the agent must be reaped");
        }
    }

    @Test
    void oomKillIsReportedAsSuch() throws Exception {
        assumeTrue(AgentProcess.ROOT && Files.isWritable(MEMORY_CGROUPS), "needs root and a writable cgroup v1 memory hierarchy");
        Path cgroup = MEMORY_CGROUPS.resolve("stockade-agent-test-" + UUID.randomUUID());
        try {
            Files.createDirectory(cgroup);
        } catch (IOException e) {
            assumeTrue(false, "cannot create a memory cgroup: " + e);
        }
        try {
            Files.writeString(cgroup.resolve("memory.limit_in_bytes"), String.valueOf(64 << 20));
            try (AgentProcess agent = AgentProcess.start(Map.of(),
                    List.of("/bin/sh", "-c", "echo $$ > " + cgroup.resolve("cgroup.procs") + " && exec \"$@\"", "sh"),
                    List.of("--oom-counter", cgroup.resolve("memory.oom_control").toString()))) {
                ExecRequest hog = new ExecRequest(List.of(AgentProcess.PYTHON, "-c",
                        "b = bytearray(b'x') * (512 << 20)"), Map.of(), null, "user", false, 0, 0, null);
                AgentEvent.Ended ended = Events.collect(agent.client.exec(hog), Duration.ofSeconds(20)).ended();
                assertEquals(Outcome.OOM_KILLED, ended.outcome(), ended.toString());
                assertEquals("SIGKILL", ended.signal());
                // The agent itself survived the OOM killer (user code got oom_score_adj 1000).
                assertEquals(agent.process.pid(), agent.client.hello(Duration.ofSeconds(2)).pid());
            }
        } finally {
            for (int i = 0; i < 50 && Files.exists(cgroup); i++) {
                try {
                    Files.delete(cgroup);
                } catch (IOException busy) {
                    Thread.sleep(100); // its last task is still exiting
                }
            }
        }
    }

    private static boolean canUnshare() throws IOException, InterruptedException {
        Process probe = new ProcessBuilder(UNSHARE.toString(), "--pid", "--fork", "--mount-proc", "/bin/true")
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        return probe.waitFor() == 0;
    }

    private static boolean isZombie(ProcessHandle process) {
        try {
            String stat = Files.readString(Path.of("/proc/" + process.pid() + "/stat"));
            return stat.substring(stat.lastIndexOf(')') + 2).startsWith("Z");
        } catch (IOException gone) {
            return false;
        }
    }
}
