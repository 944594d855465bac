package dev.stockade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

class ArgsTest {
    private static final Args.Spec SPEC = new Args.Spec("t", Set.of("port", "env", "server"), Set.of("env"),
            Set.of("quiet"), Map.of("q", "quiet"), -1);

    private static Args parse(Args.Spec spec, String... argv) throws UsageException {
        return Args.parse(List.of(argv), spec);
    }

    @Test
    void optionsInEveryForm() throws UsageException {
        Args a = parse(SPEC, "--port", "80", "-q", "x", "--env=A=1", "--env", "B=2", "y");
        assertEquals("80", a.value("port"));
        assertTrue(a.flag("quiet"));
        assertEquals(List.of("x", "y"), a.positionals());
        assertEquals(Map.of("A", "1", "B", "2"), a.pairs("t", "env"));
        assertEquals(80, a.intValue("t", "port", 0, 1, 65535));
    }

    @Test
    void dashDashEndsOptions() throws UsageException {
        Args a = parse(SPEC, "id", "--", "ls", "--port", "-q");
        assertEquals(List.of("id"), a.positionals());
        assertEquals(List.of("ls", "--port", "-q"), a.rest());
        assertTrue(a.hasDashDash());
        assertFalse(a.flag("quiet"));
    }

    @Test
    void afterTheStopPositionalEverythingBelongsToTheCommand() throws UsageException {
        Args.Spec run = new Args.Spec("run", Set.of("server"), Set.of(), Set.of("stdin"), Map.of("i", "stdin"), 1);
        Args a = parse(run, "-i", "--server", "http://x", "script.py", "--server", "-i", "--", "z");
        assertTrue(a.flag("stdin"));
        assertEquals("http://x", a.value("server"));
        assertEquals(List.of("script.py", "--server", "-i", "--", "z"), a.positionals());
    }

    @Test
    void negativeNumbersArePositionals() throws UsageException {
        assertEquals(List.of("-5"), parse(SPEC, "-5").positionals());
    }

    @Test
    void mistakesAreUsageErrorsThatNameTheOption() {
        assertEquals("unknown option --bogus", assertThrows(UsageException.class, () -> parse(SPEC, "--bogus")).getMessage());
        assertEquals("unknown option -z", assertThrows(UsageException.class, () -> parse(SPEC, "-z")).getMessage());
        assertEquals("option --port needs a value", assertThrows(UsageException.class, () -> parse(SPEC, "--port")).getMessage());
        assertEquals("option --quiet takes no value",
                assertThrows(UsageException.class, () -> parse(SPEC, "--quiet=yes")).getMessage());
        assertEquals("option --port given twice",
                assertThrows(UsageException.class, () -> parse(SPEC, "--port", "1", "--port", "2")).getMessage());
        UsageException e = assertThrows(UsageException.class, () -> parse(SPEC, "--port", "x").intValue("t", "port", 0, 0, 9));
        assertEquals("--port must be a whole number, got 'x'", e.getMessage());
        e = assertThrows(UsageException.class, () -> parse(SPEC, "--port", "99").intValue("t", "port", 0, 0, 9));
        assertEquals("--port must be between 0 and 9, got 99", e.getMessage());
        e = assertThrows(UsageException.class, () -> parse(SPEC, "--env", "novalue").pairs("t", "env"));
        assertEquals("--env takes KEY=VALUE, got 'novalue'", e.getMessage());
    }

    @Test
    void helpIsAlwaysAccepted() throws UsageException {
        assertTrue(parse(SPEC, "--help").flag("help"));
    }
}
