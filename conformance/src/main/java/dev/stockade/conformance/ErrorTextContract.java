package dev.stockade.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.runtime.Capabilities;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * What a client reads when something fails on the host side names the sandbox and the cause, never a
 * host detail (issue 15, item 4): no data-directory path, no runtime state path, no host uid, no raw
 * runc/runsc output, no Java class name — in HTTP error bodies and in Connect end-of-stream errors.
 * Each test provokes one of the failures that used to carry them (a sandbox killed under a call, its
 * agent socket gone or replaced, its container vanished under a snapshot, pause or kill, files the
 * agent cannot serve) and {@link #noHostDetails} greps every error it saw ({@link ErrorTexts}; every
 * other suite's errors are grepped when its server closes).
 */
public abstract class ErrorTextContract extends RuntimeContract {

    @BeforeAll
    void up() {
        startServer();
    }

    /** Every error of the test, as {@link RawClient} recorded it, names no host detail. */
    @AfterEach
    void noHostDetails() {
        ts.assertNoHostDetailsInErrors();
    }

    RawClient.Run root(RawClient.Box b, String cmd) {
        return c.run(b, cmd, "root");
    }

    /** The statuses of the calls a client makes on a sandbox that can no longer serve them (errors recorded as they come). */
    List<Integer> callsOn(RawClient.Box b) {
        List<Integer> statuses = new ArrayList<>();
        RawClient.Run run = c.run(b, "echo hi");
        statuses.add(run.error() == null ? 200 : 0);
        statuses.add(c.download(b, "/home/user/x").statusCode());
        statuses.add(c.upload(b, "/home/user/x", "x".getBytes(StandardCharsets.UTF_8)).status());
        statuses.add(c.rpc(b, "filesystem.Filesystem/ListDir", Map.of("path", "/home/user")).status());
        statuses.add(c.execute(b, "1 + 1").status());
        return statuses;
    }

    @Test
    void aSandboxKilledUnderACallEndsItsStreamNamingOnlyTheSandbox() throws Exception {
        RawClient.Box b = c.create();
        CompletableFuture<RawClient.Run> sleeping = CompletableFuture.supplyAsync(() -> c.run(b, "echo started; sleep 60"));
        for (int i = 0; i < 100 && !c.run(b, "pgrep -x sleep").stdout().contains("\n"); i++) Thread.sleep(100);
        assertEquals(204, c.call("DELETE", "/sandboxes/" + b.id(), null).status());
        RawClient.Run ended = sleeping.get(60, TimeUnit.SECONDS);
        assertTrue(ended.error() != null || ended.end() != null, "the stream of a killed sandbox ends");
        callsOn(b);
        assertEquals(404, c.call("POST", "/sandboxes/" + b.id() + "/snapshots", Map.of()).status());
    }

    @Test
    void aSandboxWhoseAgentSocketIsGoneAnswersWithoutHostPaths() {
        callsFailAfterRootRuns("rm -f /run/stockade/agent.sock && echo done");
    }

    @Test
    void aSandboxWhoseAgentSocketIsAnotherUsersAnswersWithoutHostUids() {
        // The sandbox's root puts a listener of its unprivileged user where the agent's socket was
        // (bound as root, listening as uid 1000: the kernel reports the listener's uid): the server
        // refuses to talk to it (wrong peer uid), and says so without the host's uids.
        callsFailAfterRootRuns("rm -f /run/stockade/agent.sock && (python3 -c 'import os,socket,time;"
                + " s=socket.socket(socket.AF_UNIX); s.bind(\"/run/stockade/agent.sock\"); os.chmod(\"/run/stockade/agent.sock\", 0o777);"
                + " os.setgid(1000); os.setuid(1000); s.listen(64); time.sleep(120)' > /dev/null 2>&1 &);"
                + " sleep 1; test -S /run/stockade/agent.sock && echo done");
    }

    /** In a new sandbox, root runs {@code cmd} (which prints "done"); then the usual calls must fail (their errors grepped after the test). */
    void callsFailAfterRootRuns(String cmd) {
        RawClient.Box b = c.create();
        try {
            RawClient.Run r = root(b, cmd);
            assertEquals("done\n", r.stdout(), r.toString());
            List<Integer> statuses = callsOn(b);
            assertTrue(statuses.stream().anyMatch(s -> s != 200 && s != 201), "calls on the sandbox fail: " + statuses);
        } finally {
            c.kill(b);
        }
    }

    @Test
    void aSandboxWhoseContainerVanishedAnswersWithoutRuntimeOutput() throws Exception {
        RawClient.Box b = c.create();
        try {
            // The container ends behind the server's back (an operator's runc kill, a crash of runsc).
            String cid = "stockade-" + b.id();
            List<String> kill = runtime().equals("runsc")
                    ? List.of("runsc", "--root", ts.dataDir.resolve("runtime/runsc/state").toString(), "kill", cid, "KILL")
                    : List.of("runc", "kill", cid, "KILL");
            Process p = new ProcessBuilder(kill).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(30, TimeUnit.SECONDS) && p.exitValue() == 0, "killing the container failed: " + out);
            Thread.sleep(500);
            callsOn(b);
            if (capabilities().contains(Capabilities.SNAPSHOT)) {
                RawClient.Response snap = c.call("POST", "/sandboxes/" + b.id() + "/snapshots", Map.of());
                assertNotEquals(201, snap.status(), snap.body());
            }
            if (capabilities().contains(Capabilities.PAUSE)) {
                c.call("POST", "/sandboxes/" + b.id() + "/pause", null);
                c.call("POST", "/sandboxes/" + b.id() + "/connect", Map.of("timeout", 60));
            }
        } finally {
            c.kill(b);
        }
    }

    @Test
    void filesTheAgentCannotServeAreRefusedWithoutHostDetails() {
        RawClient.Box b = c.create();
        try {
            for (int fd = 0; fd <= 9; fd++) {
                HttpResponse<byte[]> r = c.download(b, "/proc/self/fd/" + fd);
                // 4xx: the agent's sockets are no files, and its stdout/stderr (its log, written on the
                // host, carrying the runtime's output) is the operator's, never served.
                assertTrue(r.statusCode() >= 400 && r.statusCode() < 500, "/proc/self/fd/" + fd + ": " + r.statusCode() + " "
                        + new String(r.body(), StandardCharsets.UTF_8));
            }
            for (String path : List.of("/proc/1/root/etc/shadow", "/proc/self/root", "/etc/shadow", "/no/such/file", "/home/user",
                    "/dev/zero", "/proc/self/mem", "..\\..\\etc/shadow")) {
                c.download(b, path);
            }
            c.upload(b, "/proc/self/fd/1", "x".getBytes(StandardCharsets.UTF_8));
            c.upload(b, "/etc/passwd/x", "x".getBytes(StandardCharsets.UTF_8));
            c.rpc(b, "filesystem.Filesystem/ListDir", Map.of("path", "/proc/self/fd/3"));
            c.rpc(b, "filesystem.Filesystem/Stat", Map.of("path", "/proc/1/environ"));
            c.rpc(b, "filesystem.Filesystem/Move", Map.of("source", "/proc/self/fd/3", "destination", "/home/user/y"));
        } finally {
            c.kill(b);
        }
    }

    @Test
    void createsTheRuntimeCannotStartAreRefusedWithoutRuntimeOutput() {
        // Limits the server accepts but that leave the sandbox no room to start its agent, and bad templates.
        for (Map<String, Object> limits : List.of(Map.<String, Object>of("pids", 16), Map.<String, Object>of("memoryMB", 64, "diskMB", 16),
                Map.<String, Object>of("memoryMB", 64, "pids", 16, "cpus", 0.05))) {
            RawClient.Response r = c.call("POST", "/sandboxes", Map.of("templateID", "code-interpreter-v1", "timeout", 60, "limits", limits));
            if (r.status() == 201) c.kill(new RawClient.Box(r.json().path("sandboxID").asText(), ""));
        }
        c.call("POST", "/sandboxes", Map.of("templateID", "../../etc", "timeout", 60));
        c.call("POST", "/sandboxes", Map.of("templateID", "base", "runtime", "no-such-runtime"));
    }
}
