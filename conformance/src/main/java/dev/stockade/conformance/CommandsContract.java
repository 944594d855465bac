package dev.stockade.conformance;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.runtime.Capabilities;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Commands over process.Process as the E2B SDK drives it: exit codes, stdout/stderr separation and
 * order, large output, real-time streaming, environment and working directory, background processes
 * with stdin, attaching, signals, users; terminals as {@code sandbox.pty} drives them (Start with
 * {@code pty}, output as {@code data.pty}, SendInput and StreamInput, Update, ^C). One shared
 * sandbox for the read-only checks, fresh ones where a test changes state.
 */
public abstract class CommandsContract extends RuntimeContract {
    RawClient.Box box;

    @BeforeAll
    void up() {
        startServer();
        box = c.create(Map.of("templateID", "base", "timeout", 300,
                "envVars", Map.of("FROM_CREATE", "created value", "OVERRIDDEN", "by create")));
    }

    @AfterAll
    void down() {
        try {
            if (box != null) c.kill(box);
        } finally {
            stopServer();
        }
    }

    void assertEnded(RawClient.Streamed s) {
        assertEquals(200, s.status(), () -> "stream status; body " + s.errorBody());
        assertTrue(s.contentType().startsWith("application/connect+json"), s.contentType());
        assertTrue(s.endedCleanly(), "the stream must finish with an end-stream frame");
        assertNull(s.error(), () -> "end-stream error " + s.error());
        assertEquals("start", s.frames().getFirst().kind(), "start is the first event");
        assertNotNull(s.end(), "an end event");
    }

    RawClient.Streamed bash(String cmd) {
        RawClient.Streamed s = c.startLive(box, RawClient.bash(cmd, Map.of()), null, null);
        assertEnded(s);
        return s;
    }

    @Test
    void exitCodesAreReportedAsEnvdDoes() {
        RawClient.Streamed ok = bash("exit 0");
        assertEquals(0, ok.end().path("exitCode").asInt(0));
        assertTrue(ok.end().path("exited").asBoolean());
        assertEquals("exit status 0", ok.end().path("status").asText());
        assertEquals("exited", ok.end().path("outcome").asText());
        assertFalse(ok.end().hasNonNull("error"), ok.end().toString());
        assertTrue(ok.pid() > 0);

        for (int code : new int[] {1, 42}) {
            RawClient.Streamed r = bash("echo before; exit " + code);
            assertEquals(code, r.end().path("exitCode").asInt(), r.end().toString());
            assertTrue(r.end().path("exited").asBoolean());
            assertEquals("exit status " + code, r.end().path("status").asText());
            // The SDK raises CommandExitError with `error` as its message: envd sends "exit status N".
            assertEquals("exit status " + code, r.end().path("error").asText(), r.end().toString());
            assertEquals("exited", r.end().path("outcome").asText());
            assertEquals("before\n", r.out());
        }
    }

    @Test
    void aMissingCommandExits127ThroughBash() {
        RawClient.Streamed r = bash("definitely-not-a-command-xyz --flag");
        assertEquals(127, r.end().path("exitCode").asInt());
        assertTrue(r.err().contains("definitely-not-a-command-xyz") && r.err().contains("not found"), r.err());
        assertEquals("", r.out());
        // A missing executable without bash in between is an error of the stream, not a hang.
        RawClient.Streamed direct = c.startLive(box, Map.of("process", Map.of("cmd", "/no/such/binary")), null, null);
        assertEquals(200, direct.status());
        assertTrue(direct.endedCleanly());
        assertNotNull(direct.error(), "end-stream error for a missing executable");
        assertEquals("not_found", direct.error().path("code").asText(), direct.error().toString());
    }

    @Test
    void stdoutAndStderrAreSeparateAndInOrder() {
        RawClient.Streamed r = bash("for i in $(seq 1 50); do echo out $i; echo err $i >&2; done");
        StringBuilder out = new StringBuilder(), err = new StringBuilder();
        for (int i = 1; i <= 50; i++) {
            out.append("out ").append(i).append('\n');
            err.append("err ").append(i).append('\n');
        }
        assertEquals(out.toString(), r.out());
        assertEquals(err.toString(), r.err());
        assertEquals(0, r.end().path("exitCode").asInt(0));
        // No data frame after the end event; the end event is followed only by end-of-stream.
        List<String> kinds = r.frames().stream().map(f -> f.isEnd() ? "END_STREAM" : f.kind()).toList();
        assertEquals("end", kinds.get(kinds.size() - 2), kinds.toString());
        assertEquals("END_STREAM", kinds.getLast());
    }

    @Test
    void fiveMegabytesOfOutputArriveIntact() throws Exception {
        // Text: every line numbered, so a lost, doubled or reordered chunk shows.
        RawClient.Streamed text = bash("seq 1 800000");
        StringBuilder expect = new StringBuilder();
        for (int i = 1; i <= 800000; i++) expect.append(i).append('\n');
        assertTrue(expect.length() > 5_000_000);
        assertEquals(expect.length(), text.stdout().length);
        assertEquals(expect.toString(), text.out());
        assertTrue(text.frames().size() > 3, "large output is streamed in several frames, not one: " + text.frames().size());

        // Binary: 5 MiB of random bytes, compared with the file's hash inside the sandbox.
        RawClient.Streamed bin = bash("head -c 5242880 /dev/urandom > /tmp/rand.bin && cat /tmp/rand.bin");
        assertEquals(5 * 1024 * 1024, bin.stdout().length);
        String local = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bin.stdout()));
        assertEquals(local + "\n", bash("sha256sum /tmp/rand.bin | cut -d' ' -f1").out());
        // And on stderr too.
        RawClient.Streamed onErr = bash("cat /tmp/rand.bin >&2");
        assertArrayEquals(bin.stdout(), onErr.stderr());
        assertEquals(0, onErr.stdout().length);
    }

    @Test
    void outputIsStreamedAsItIsProduced() {
        RawClient.Streamed r = bash("echo a; sleep 1; echo b");
        assertEquals("a\nb\n", r.out());
        long firstData = -1, end = -1, start = -1;
        for (RawClient.Frame f : r.frames()) {
            if ("start".equals(f.kind()) && start < 0) start = f.nanos();
            if ("data".equals(f.kind()) && firstData < 0) firstData = f.nanos();
            if ("end".equals(f.kind())) end = f.nanos();
        }
        assertTrue(firstData > 0 && end > 0);
        long gapMs = TimeUnit.NANOSECONDS.toMillis(end - firstData);
        assertTrue(gapMs >= 700, "the first output must arrive as it is written, " + gapMs + " ms before the end");
        // The first data frame carries "a" alone.
        String first = null;
        for (RawClient.Frame f : r.frames()) {
            if ("data".equals(f.kind())) {
                first = new String(Base64.getDecoder().decode(f.message().path("event").path("data").path("stdout").asText()));
                break;
            }
        }
        assertEquals("a\n", first);
        assertTrue(TimeUnit.NANOSECONDS.toMillis(start - r.sentNanos()) < 5000, "start is sent at once");
    }

    @Test
    void aCommandSilentForSecondsStillEndsAtOnce() {
        // The agent checks idle streams for a departed client every 2 s; that check must not stall
        // the stream (it once blocked for the 60 s send timeout and then dropped the end event).
        long t0 = System.nanoTime();
        RawClient.Streamed r = bash("sleep 3.5; echo done");
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertEquals("done\n", r.out());
        assertEquals(0, r.end().path("exitCode").asInt(0));
        assertTrue(ms < 8000, "a 3.5 s command took " + ms + " ms to end");
    }

    @Test
    void envsAndCwdFromTheRequestAndEnvVarsFromCreate() {
        RawClient.Streamed r = c.startLive(box, RawClient.bash(
                "printf '%s|%s|%s|%s|%s\\n' \"$FOO\" \"$FROM_CREATE\" \"$OVERRIDDEN\" \"$HOME\" \"$(pwd)\"",
                Map.of("envs", Map.of("FOO", "bar baz=1", "OVERRIDDEN", "by request"), "cwd", "/tmp")), null, null);
        assertEnded(r);
        assertEquals("bar baz=1|created value|by request|/home/user|/tmp\n", r.out());

        // Without cwd: the user's home; a relative cwd resolves against it.
        assertEquals("/home/user\n", bash("pwd").out());
        assertEquals(0, bash("mkdir -p /home/user/sub/dir").end().path("exitCode").asInt(0));
        RawClient.Streamed rel = c.startLive(box, RawClient.bash("pwd", Map.of("cwd", "sub/dir")), null, null);
        assertEnded(rel);
        assertEquals("/home/user/sub/dir\n", rel.out());

        // The server's own environment never reaches the sandbox: only what was built for it.
        RawClient.Streamed env = bash("env | cut -d= -f1 | sort");
        List<String> names = env.out().lines().toList();
        assertTrue(names.containsAll(List.of("FROM_CREATE", "HOME", "OVERRIDDEN", "PATH")), names.toString());
        for (String hostOnly : List.of("JAVA_HOME", "MAVEN_HOME", "MAVEN_CMD_LINE_ARGS", "SUDO_USER", "SSH_AUTH_SOCK")) {
            if (System.getenv(hostOnly) != null) assertFalse(names.contains(hostOnly), hostOnly + " leaked into the sandbox");
        }

        // A cwd that does not exist is refused in the stream, as envd does.
        RawClient.Streamed bad = c.startLive(box, RawClient.bash("pwd", Map.of("cwd", "/no/such/dir")), null, null);
        assertEquals(200, bad.status());
        assertTrue(bad.endedCleanly());
        assertEquals("invalid_argument", bad.error().path("code").asText(), String.valueOf(bad.error()));
    }

    @Test
    void usersRootAndDefault() {
        assertEquals("1000 1000 user /home/user\n", bash("echo $(id -u) $(id -g) $(id -un) $HOME").out());
        RawClient.Streamed root = c.startLive(box, RawClient.bash("echo $(id -u) $(id -un)", Map.of()), "root", null);
        assertEnded(root);
        assertEquals("0 root\n", root.out());
        RawClient.Streamed user = c.startLive(box, RawClient.bash("id -u", Map.of()), "user", null);
        assertEnded(user);
        assertEquals("1000\n", user.out());
        // Root in the sandbox is not root on the host: what it creates lands on the host owned by an
        // unprivileged uid of the sandbox's range (seen from the host, so it holds for a runtime
        // with a kernel of its own, whose /proc/self/uid_map inside says nothing of the host).
        RawClient.Streamed touch = c.startLive(box, RawClient.bash("touch /tmp/made-by-root", Map.of()), "root", null);
        assertEnded(touch);
        long owner = TestServer.hostOwnerOf(ts.dataDir, box.id(), "tmp/made-by-root");
        assertTrue(owner >= TestServer.FIRST_SANDBOX_UID, "a file of the sandbox's root is owned by host uid " + owner);
    }

    @Test
    void backgroundCatWithStdinListInputCloseStdin() throws Exception {
        CompletableFuture<Integer> pid = new CompletableFuture<>();
        CompletableFuture<RawClient.Streamed> done = CompletableFuture.supplyAsync(() -> c.startLive(box,
                Map.of("process", Map.of("cmd", "/bin/cat", "args", List.of()), "stdin", true, "tag", "my-cat"), null, f -> {
                    if ("start".equals(f.kind())) pid.complete(f.message().path("event").path("start").path("pid").asInt());
                }));
        try {
            int p = pid.get(30, TimeUnit.SECONDS);
            assertTrue(p > 0);

            // List finds it, by pid and by tag, with the config as requested.
            RawClient.Response list = c.rpc(box, "process.Process/List", Map.of());
            assertEquals(200, list.status(), list.body());
            JsonNode mine = null;
            for (JsonNode n : list.json().path("processes")) if (n.path("pid").asInt() == p) mine = n;
            assertNotNull(mine, "cat in " + list.body());
            assertEquals("my-cat", mine.path("tag").asText());
            assertEquals("/bin/cat", mine.path("config").path("cmd").asText());
            assertTrue(mine.path("config").path("args").isArray());
            int byTag = 0;
            for (JsonNode n : list.json().path("processes")) if ("my-cat".equals(n.path("tag").asText())) byTag++;
            assertEquals(1, byTag);

            // Input by pid, then by tag; both arrive, in order.
            RawClient.Response in1 = c.rpc(box, "process.Process/SendInput", Map.of("process", Map.of("pid", p),
                    "input", Map.of("stdin", Base64.getEncoder().encodeToString("hello\n".getBytes()))));
            assertEquals(200, in1.status(), in1.body());
            assertTrue(in1.json().isObject());
            RawClient.Response in2 = c.rpc(box, "process.Process/SendInput", Map.of("process", Map.of("tag", "my-cat"),
                    "input", Map.of("stdin", Base64.getEncoder().encodeToString("wörld\n".getBytes(StandardCharsets.UTF_8)))));
            assertEquals(200, in2.status(), in2.body());
            assertFalse(done.isDone(), "cat keeps running until its stdin is closed");

            RawClient.Response close = c.rpc(box, "process.Process/CloseStdin", Map.of("process", Map.of("pid", p)));
            assertEquals(200, close.status(), close.body());
            RawClient.Streamed s = done.get(30, TimeUnit.SECONDS);
            assertEnded(s);
            assertEquals("hello\nwörld\n", s.out());
            assertEquals(0, s.end().path("exitCode").asInt(0));
            assertEquals(p, s.pid());

            // Gone from the list once it ended; input to it is now not_found.
            RawClient.Response after = c.rpc(box, "process.Process/List", Map.of());
            for (JsonNode n : after.json().path("processes")) assertTrue(n.path("pid").asInt() != p, after.body());
            RawClient.Response late = c.rpc(box, "process.Process/SendInput", Map.of("process", Map.of("pid", p),
                    "input", Map.of("stdin", "eA==")));
            assertEquals(404, late.status(), late.body());
            assertEquals("not_found", late.json().path("code").asText());
        } finally {
            if (!done.isDone()) {
                pid.thenAccept(p -> c.rpc(box, "process.Process/SendSignal", Map.of("process", Map.of("pid", p), "signal", "SIGNAL_SIGKILL")));
            }
        }
    }

    @Test
    void connectAttachesToARunningProcessAndGetsItsLaterOutput() throws Exception {
        CompletableFuture<Integer> pid = new CompletableFuture<>();
        CountDownLatch firstTick = new CountDownLatch(1);
        CompletableFuture<RawClient.Streamed> owner = CompletableFuture.supplyAsync(() -> c.startLive(box,
                RawClient.bash("for i in $(seq 1 10); do echo tick $i; sleep 0.3; done", Map.of()), null, f -> {
                    if ("start".equals(f.kind())) pid.complete(f.message().path("event").path("start").path("pid").asInt());
                    if ("data".equals(f.kind())) firstTick.countDown();
                }));
        int p = pid.get(30, TimeUnit.SECONDS);
        assertTrue(firstTick.await(30, TimeUnit.SECONDS));
        AtomicInteger seen = new AtomicInteger();
        RawClient.Streamed attached = c.streamLive(box, "process.Process/Connect", Map.of("process", Map.of("pid", p)),
                f -> seen.incrementAndGet());
        assertEnded(attached);
        assertEquals(p, attached.pid(), "Connect's start names the attached pid");
        assertTrue(attached.out().contains("tick 10\n"), attached.out());
        assertFalse(attached.out().contains("tick 1\n"), "no replay of output from before the attach: " + attached.out());
        assertEquals(0, attached.end().path("exitCode").asInt(0));
        RawClient.Streamed first = owner.get(30, TimeUnit.SECONDS);
        assertEnded(first);
        StringBuilder all = new StringBuilder();
        for (int i = 1; i <= 10; i++) all.append("tick ").append(i).append('\n');
        assertEquals(all.toString(), first.out(), "the original stream still gets everything");
    }

    @Test
    void connectToAnUnknownPidIsNotFound() {
        RawClient.Streamed s = c.streamLive(box, "process.Process/Connect", Map.of("process", Map.of("pid", 3999999)), null);
        assertEquals(200, s.status(), "Connect stream errors travel in the end-stream frame");
        assertTrue(s.endedCleanly());
        assertNotNull(s.error());
        assertEquals("not_found", s.error().path("code").asText(), s.error().toString());
        assertTrue(s.error().path("message").asText().length() > 0);
        for (String m : List.of("SendSignal", "SendInput", "CloseStdin")) {
            Map<String, Object> body = switch (m) {
                case "SendSignal" -> Map.of("process", Map.of("pid", 3999999), "signal", "SIGNAL_SIGKILL");
                case "SendInput" -> Map.of("process", Map.of("pid", 3999999), "input", Map.of("stdin", "eA=="));
                default -> Map.of("process", Map.of("pid", 3999999));
            };
            RawClient.Response r = c.rpc(box, "process.Process/" + m, body);
            assertEquals(404, r.status(), m + ": " + r.body());
            assertEquals("not_found", r.json().path("code").asText(), m);
        }
        RawClient.Response byTag = c.rpc(box, "process.Process/SendInput", Map.of("process", Map.of("tag", "no-such-tag"),
                "input", Map.of("stdin", "eA==")));
        assertEquals(404, byTag.status(), byTag.body());
        assertEquals("not_found", byTag.json().path("code").asText());
    }

    @Test
    void sigkillEndsTheProcessAndItsGroup() throws Exception {
        RawClient.Box b = c.create();
        try {
            CompletableFuture<Integer> pid = new CompletableFuture<>();
            CompletableFuture<RawClient.Streamed> done = CompletableFuture.supplyAsync(() -> c.startLive(b,
                    RawClient.bash("sleep 300 & sleep 300; echo never", Map.of()), null, f -> {
                        if ("start".equals(f.kind())) pid.complete(f.message().path("event").path("start").path("pid").asInt());
                    }));
            int p = pid.get(30, TimeUnit.SECONDS);
            // Wait until both sleeps exist.
            for (int i = 0; i < 50 && !c.run(b, "pgrep -c -x sleep").stdout().trim().equals("2"); i++) Thread.sleep(100);
            RawClient.Response k = c.rpc(b, "process.Process/SendSignal", Map.of("process", Map.of("pid", p), "signal", "SIGNAL_SIGKILL"));
            assertEquals(200, k.status(), k.body());
            RawClient.Streamed s = done.get(30, TimeUnit.SECONDS);
            assertEnded(s);
            JsonNode end = s.end();
            assertEquals(-1, end.path("exitCode").asInt(), end.toString());
            assertFalse(end.path("exited").asBoolean(), end.toString());
            assertEquals("signal: killed", end.path("status").asText(), end.toString());
            assertTrue(end.hasNonNull("error"), "a killed command has an error for CommandExitError: " + end);
            assertEquals("killed", end.path("outcome").asText(), end.toString());
            assertFalse(end.path("reason").asText("").isBlank());
            assertEquals("", s.out());
            // The whole group went: no sleep survives.
            String left = "";
            for (int i = 0; i < 30; i++) {
                left = c.run(b, "pgrep -x sleep | wc -l").stdout().trim();
                if (left.equals("0")) break;
                Thread.sleep(100);
            }
            assertEquals("0", left, "sleep children survived the kill");
            // Killing it again: it is gone.
            RawClient.Response again = c.rpc(b, "process.Process/SendSignal", Map.of("process", Map.of("pid", p), "signal", "SIGNAL_SIGKILL"));
            assertEquals(404, again.status(), again.body());
            assertEquals("not_found", again.json().path("code").asText());
        } finally {
            c.kill(b);
        }
    }

    @Test
    void manyCommandsInParallelDoNotMixTheirOutput() throws Exception {
        List<CompletableFuture<RawClient.Streamed>> runs = new ArrayList<>();
        for (int i = 0; i < 8; i++) {
            int k = i;
            runs.add(CompletableFuture.supplyAsync(() -> c.startLive(box,
                    RawClient.bash("for j in $(seq 1 200); do echo " + k + "-$j; done; exit " + k, Map.of()), null, null)));
        }
        for (int i = 0; i < 8; i++) {
            RawClient.Streamed s = runs.get(i).get(60, TimeUnit.SECONDS);
            assertEnded(s);
            StringBuilder e = new StringBuilder();
            for (int j = 1; j <= 200; j++) e.append(i).append('-').append(j).append('\n');
            assertEquals(e.toString(), s.out());
            assertEquals(i, s.end().path("exitCode").asInt(0));
        }
    }

    // ---- terminals (sandbox.pty): Start with pty, data.pty, SendInput/StreamInput, Update ----

    /** A terminal's stream read on another thread: its pid, its output so far, its end. */
    private final class Terminal {
        final CompletableFuture<Integer> pid = new CompletableFuture<>();
        final StringBuffer output = new StringBuffer();
        final CompletableFuture<RawClient.Streamed> done;

        Terminal(String script) {
            Map<String, Object> request = Map.of("process", Map.of("cmd", "/bin/sh", "args", List.of("-c", script)),
                    "pty", Map.of("size", Map.of("cols", 80, "rows", 24)));
            done = CompletableFuture.supplyAsync(() -> c.startLive(box, request, null, f -> {
                JsonNode ev = f.message().path("event");
                if (ev.has("start")) pid.complete(ev.get("start").path("pid").asInt());
                JsonNode data = ev.path("data");
                assertFalse(data.has("stdout") || data.has("stderr"), "a terminal's output is data.pty: " + f.message());
                if (data.has("pty")) output.append(new String(Base64.getDecoder().decode(data.get("pty").asText()), StandardCharsets.UTF_8));
            }));
        }

        int pid() throws Exception {
            return pid.get(30, TimeUnit.SECONDS);
        }

        void awaitOutput(String wanted) throws InterruptedException {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(15);
            while (!output.toString().contains(wanted)) {
                assertTrue(System.nanoTime() < deadline, "no '" + wanted + "' in the terminal's output: " + output);
                Thread.sleep(20);
            }
        }

        JsonNode end() throws Exception {
            RawClient.Streamed s = done.get(30, TimeUnit.SECONDS);
            assertTrue(s.endedCleanly(), "the stream ends with an end-stream frame");
            assertNull(s.error(), () -> "end-stream error " + s.error());
            return s.end();
        }
    }

    private static String b64(String text) {
        return Base64.getEncoder().encodeToString(text.getBytes(StandardCharsets.UTF_8));
    }

    @Test
    void aTerminalTakesInputResizesAndEnds() throws Exception {
        Terminal t = new Terminal("stty size; tty; read a; stty size; read b; echo \"got:$b\"; exit 3");
        int pid = t.pid();
        t.awaitOutput("24 80");
        t.awaitOutput("/dev/pts/");

        RawClient.Response resized = c.rpc(box, "process.Process/Update",
                Map.of("process", Map.of("pid", pid), "pty", Map.of("size", Map.of("cols", 132, "rows", 40))));
        assertEquals(200, resized.status(), resized.body());
        RawClient.Response typed = c.rpc(box, "process.Process/SendInput",
                Map.of("process", Map.of("pid", pid), "input", Map.of("pty", b64("go\n"))));
        assertEquals(200, typed.status(), typed.body());
        t.awaitOutput("40 132");

        // StreamInput: a client stream of a start and data messages, with the terminal's bytes.
        byte[] start = RawClient.envelope(0, ("{\"start\":{\"process\":{\"pid\":" + pid + "}}}").getBytes(StandardCharsets.UTF_8));
        byte[] keepalive = RawClient.envelope(0, "{\"keepalive\":{}}".getBytes(StandardCharsets.UTF_8));
        byte[] data = RawClient.envelope(0, ("{\"data\":{\"input\":{\"pty\":\"" + b64("streamed\n") + "\"}}}").getBytes(StandardCharsets.UTF_8));
        byte[] body = ByteBuffer.allocate(start.length + keepalive.length + data.length).put(start).put(keepalive).put(data).array();
        RawClient.Streamed streamed = c.streamRaw(box, "process.Process/StreamInput", body, Map.of(), null);
        assertEquals(200, streamed.status(), () -> "StreamInput: " + streamed.errorBody());
        assertTrue(streamed.endedCleanly() && streamed.error() == null, () -> "StreamInput: " + streamed.frames());

        JsonNode end = t.end();
        assertEquals(3, end.path("exitCode").asInt());
        assertTrue(t.output.toString().contains("got:streamed\r\n"), t.output.toString());

        // The terminal has ended: resizing it now is not_found, bad sizes are invalid_argument.
        RawClient.Response late = c.rpc(box, "process.Process/Update",
                Map.of("process", Map.of("pid", pid), "pty", Map.of("size", Map.of("cols", 100, "rows", 30))));
        assertEquals("not_found", late.json().path("code").asText(), late.body());
        for (Object size : List.of(Map.of("cols", 0, "rows", 24), Map.of("cols", 80), Map.of("cols", 10_000, "rows", 24), "big")) {
            RawClient.Response bad = c.rpc(box, "process.Process/Update", Map.of("process", Map.of("pid", pid), "pty", Map.of("size", size)));
            assertEquals("invalid_argument", bad.json().path("code").asText(), bad.body());
        }
    }

    @Test
    void controlCInterruptsTheForegroundJob() throws Exception {
        Terminal t = new Terminal("echo ready; sleep 60; echo not-interrupted");
        int pid = t.pid();
        t.awaitOutput("ready");
        if (!checksWithout(Capabilities.USERSPACE_KERNEL, "gVisor's line discipline (runsc"
                + " 2022-12) does not turn ^C into SIGINT: the byte reaches the program as input (docs/runtime-runsc.md)")) {
            c.rpc(box, "process.Process/SendSignal", Map.of("process", Map.of("pid", pid), "signal", "SIGNAL_SIGKILL"));
            assertEquals("signal: killed", t.end().path("status").asText());
            return;
        }
        long sent = System.nanoTime();
        RawClient.Response ctrlC = c.rpc(box, "process.Process/SendInput",
                Map.of("process", Map.of("pid", pid), "input", Map.of("pty", b64("\u0003"))));
        assertEquals(200, ctrlC.status(), ctrlC.body());
        JsonNode end = t.end();
        assertTrue(System.nanoTime() - sent < TimeUnit.SECONDS.toNanos(20), "^C did not interrupt the sleep");
        assertEquals("signal: interrupt", end.path("status").asText(), end.toString());
        assertFalse(t.output.toString().contains("not-interrupted"), t.output.toString());
    }
}
