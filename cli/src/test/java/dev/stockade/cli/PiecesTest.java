package dev.stockade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.sdk.CommandResult;
import dev.stockade.protocol.Outcome;
import dev.stockade.sdk.SandboxInfo;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The small pieces the subcommands are made of. */
class PiecesTest {

    @Test
    void shellQuotingSurvivesARealShell() throws IOException, InterruptedException {
        List<String> words = List.of("plain", "two words", "it's", "$HOME", "`id`", "a\"b", "", "*", "x\ny", "--flag=1", "ü");
        List<String> cmd = new ArrayList<>(List.of("bash", "-c", "printf '%s\\0' " + Shell.join(words)));
        Process p = new ProcessBuilder(cmd).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor());
        assertEquals(words, List.of(out.split("\0", -1)).subList(0, words.size()));
        assertEquals("plain", Shell.quote("plain"));
        assertEquals("'it'\\''s'", Shell.quote("it's"));
    }

    @Test
    void execTakesOneWordAsAShellLineAndSeveralAsWords() {
        assertEquals("echo $HOME | wc -c", ExecCommand.commandLine(List.of("echo $HOME | wc -c")));
        assertEquals("ls -la 'my dir'", ExecCommand.commandLine(List.of("ls", "-la", "my dir")));
    }

    @Test
    void cpLocations() {
        assertEquals(new CpCommand.Location("sb1", "/tmp/a"), CpCommand.Location.parse("sb1:/tmp/a"));
        assertEquals(new CpCommand.Location("sb-1_x", ""), CpCommand.Location.parse("sb-1_x:"));
        assertFalse(CpCommand.Location.parse("./a:b").remote());
        assertFalse(CpCommand.Location.parse("/abs/a:b").remote());
        assertFalse(CpCommand.Location.parse("plain.txt").remote());
        assertFalse(CpCommand.Location.parse("-").remote());
        assertEquals("data/x.bin", CpCommand.remoteTarget("data/", "x.bin"));
        assertEquals("x.bin", CpCommand.remoteTarget("", "x.bin"));
        assertEquals("/tmp/y", CpCommand.remoteTarget("/tmp/y", "x.bin"));
    }

    @Test
    void exitCodes() {
        TestIo t = new TestIo(Map.of());
        assertEquals(3, Streaming.exitCode(new CommandResult(3, "", "", null, null, "exit status 3"), t.io, "run"));
        assertEquals("", t.err());
        assertEquals(137, Streaming.exitCode(new CommandResult(-1, "", "", Outcome.OOM_KILLED, "out of memory (64 MiB)", null), t.io, "run"));
        assertEquals("stockade run: oom_killed: out of memory (64 MiB)\n", t.err());
        assertEquals(124, Streaming.exitCode(new CommandResult(-1, "", "", Outcome.TIMEOUT, null, null), t.io, "run"));
        assertEquals(137, Streaming.exitCode(new CommandResult(-1, "", "", null, null, "signal: killed"), t.io, "exec"));
    }

    @Test
    void lsTable() {
        Instant now = Instant.parse("2026-11-27T10:00:00Z");
        SandboxInfo s = new SandboxInfo("abc", "base", null, Map.of(), now.minusSeconds(5), now.plusSeconds(300), "running",
                1, 512, "0.5.7", "runc", null);
        String[] lines = LsCommand.table(List.of(s), now).split("\n");
        assertTrue(lines[0].startsWith("SANDBOX ID  TEMPLATE  RUNTIME  STATE    STARTED"), lines[0]);
        assertTrue(lines[1].startsWith("abc         base      runc     running  "), lines[1]);
        assertTrue(lines[1].endsWith("5m"), lines[1]);
        assertEquals("90s", LsCommand.left(Duration.ofSeconds(90)));
        assertEquals("2h0m", LsCommand.left(Duration.ofHours(2)));
        assertEquals("ending", LsCommand.left(Duration.ofSeconds(-1)));
    }

    @Test
    void defaultDataDirAvoidsHomesOthersCannotTraverse(@TempDir Path tmp) throws IOException {
        Path open = tmp.resolve("open");
        Files.createDirectories(open);
        Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwx--x--x"));
        Files.setPosixFilePermissions(open, PosixFilePermissions.fromString("rwx--x--x"));
        assertEquals(open.resolve(".local/share/stockade"), DataDir.defaultDir(new TestIo(Map.of("HOME", open.toString())).io));
        Path closed = tmp.resolve("closed");
        Files.createDirectories(closed);
        Files.setPosixFilePermissions(closed, PosixFilePermissions.fromString("rwx------"));
        assertEquals(Path.of("/var/lib/stockade"), DataDir.defaultDir(new TestIo(Map.of("HOME", closed.toString())).io));
        assertEquals(Path.of("/srv/x"), DataDir.defaultDir(new TestIo(Map.of("STOCKADE_DATA_DIR", "/srv/x", "HOME", "/")).io));
        assertEquals(open.resolve("stockade"), DataDir.defaultDir(new TestIo(Map.of("XDG_DATA_HOME", open.toString())).io));
    }

    @Test
    void oneServerPerDataDirAndItsAdvert(@TempDir Path tmp) throws Exception {
        Path dir = tmp.resolve("data");
        assertTrue(DataDir.runningServer(dir).isEmpty());
        try (DataDir.Claim claim = DataDir.tryClaim(dir).orElseThrow()) {
            assertTrue(DataDir.tryClaim(dir).isEmpty(), "a second claim on the same directory must fail");
            claim.advertise(java.net.URI.create("http://127.0.0.1:4567"), "e2b_abc");
            assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve(DataDir.ADVERT))));
            // Within one JVM the lock cannot be probed; the advert is read all the same.
            DataDir.Advert a = DataDir.runningServer(dir).orElseThrow();
            assertEquals("http://127.0.0.1:4567", a.url().toString());
            assertEquals("e2b_abc", a.apiKey());
            assertEquals(ProcessHandle.current().pid(), a.pid());

            TestIo t = new TestIo(Map.of("STOCKADE_DATA_DIR", dir.toString()));
            Args args = Args.parse(List.of(), new LsCommand().spec());
            try (Target target = Target.resolve("ls", args, t.io, false)) {
                assertFalse(target.isEmbedded());
            }
        }
        assertFalse(Files.exists(dir.resolve(DataDir.ADVERT)), "closing the claim removes the advert");
        assertTrue(DataDir.runningServer(dir).isEmpty());
        try (DataDir.Claim again = DataDir.tryClaim(dir).orElseThrow()) {
            assertNull(null, again.dir().toString());
        }
    }
}
