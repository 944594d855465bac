package dev.stockade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** The command line's contract with people and scripts: help, usage errors (exit 2), messages. */
class MainTest {
    /** No server configured anywhere: STOCKADE_DATA_DIR points at an empty directory. */
    private static final Map<String, String> NO_SERVER = Map.of("STOCKADE_DATA_DIR", "/nonexistent/stockade-test");

    private static TestIo run(String... argv) {
        TestIo t = new TestIo(NO_SERVER);
        t.exit = Main.run(argv, t.io);
        return t;
    }

    @Test
    void topLevelHelp() {
        TestIo t = run("--help");
        assertEquals(0, t.exit);
        for (Subcommand c : Main.COMMANDS) assertTrue(t.out().contains("  " + c.name() + " "), t.out());
        assertEquals(2, run().exit);
    }

    @ParameterizedTest
    @ValueSource(strings = {"serve", "run", "exec", "create", "ls", "kill", "cp", "keys", "tenants"})
    void everyCommandHasHelp(String name) {
        TestIo t = run(name, "--help");
        assertEquals(0, t.exit, t.err());
        assertTrue(t.out().startsWith("Usage: stockade " + name), t.out());
        assertEquals(t.out(), run("help", name).out());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "bogus                     | stockade: unknown command 'bogus'",
        "run                       | stockade run: which script?",
        "run /nonexistent/x.py     | stockade run: no such file: /nonexistent/x.py",
        "run --timeout abc x.py    | stockade run: --timeout must be a whole number, got 'abc'",
        "exec                      | stockade exec: which sandbox?",
        "exec sb1                  | stockade exec: which command?",
        "exec sb1 --               | stockade exec: which command?",
        "kill                      | stockade kill: which sandbox?",
        "ls --bogus                | stockade ls: unknown option --bogus",
        "ls extra                  | stockade ls: unexpected argument 'extra'",
        "cp a                      | stockade cp: need a source and a destination",
        "cp ./a ./b                | stockade cp: neither side names a sandbox",
        "cp sb1:/a sb2:/b          | stockade cp: both sides are in a sandbox",
        "serve --port 70000        | stockade serve: --port must be between 0 and 65535, got 70000",
        "serve extra               | stockade serve: unexpected argument 'extra'",
        "serve --open-network-requests maybe | stockade serve: --open-network-requests wants downgrade or refuse, got 'maybe'",
        "serve --output-rate fast  | stockade serve: --output-rate wants MiB a second, like 4 or 0.5 (0: unpaced), got 'fast'",
        "serve --output-rate -1    | stockade serve: --output-rate wants MiB a second, like 4 or 0.5 (0: unpaced), got '-1'",
        "serve --output-rate 1e9   | stockade serve: --output-rate wants MiB a second, like 4 or 0.5 (0: unpaced), got '1e9'",
        "serve --concurrent-starts 0 | stockade serve: --concurrent-starts must be between 1 and 1024, got 0",
        "serve --concurrent-starts x | stockade serve: --concurrent-starts must be a whole number, got 'x'",
        "create --cpus -1          | stockade create: --cpus must be a positive number, got '-1'",
        "ls                        | stockade ls: no Stockade server: pass --server URL or set STOCKADE_URL",
        "ls --server http://x:1    | stockade ls: no API key for http://x:1",
    })
    void usageErrorsExitTwoWithAClearMessage(String argv, String message) {
        TestIo t = run(argv.split(" "));
        assertEquals(2, t.exit, t.err());
        assertTrue(t.err().startsWith(message), t.err());
        assertTrue(t.out().isEmpty(), t.out());
    }

    @Test
    void version() {
        TestIo t = run("--version");
        assertEquals(0, t.exit);
        assertEquals("stockade " + Main.VERSION + "\n", t.out());
    }

    @Test
    void unreachableServerIsAFailureNotAUsageError() {
        TestIo t = new TestIo(Map.of("STOCKADE_URL", "http://127.0.0.1:1", "STOCKADE_API_KEY", "e2b_00"));
        assertEquals(1, Main.run(new String[] {"ls"}, t.io));
        assertTrue(t.err().contains("cannot connect to http://127.0.0.1:1"), t.err());
    }
}
