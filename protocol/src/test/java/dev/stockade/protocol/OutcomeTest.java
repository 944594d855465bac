package dev.stockade.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.EnumSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The outcome names are wire names (agent, server and SDK read them): they must not drift. */
class OutcomeTest {
    @Test
    void wireNamesRoundTrip() {
        for (Outcome o : Outcome.values()) {
            assertEquals(o, Outcome.fromWire(o.wireName()));
        }
        assertEquals("oom_killed", Outcome.OOM_KILLED.wireName());
        assertEquals("output_truncated", Outcome.OUTPUT_TRUNCATED.wireName());
    }

    @Test
    void unknownAndMissingNames() {
        assertEquals(Outcome.UNKNOWN, Outcome.fromWire("party"));
        assertNull(Outcome.fromWire(null));
        assertNull(Outcome.fromWire(""));
    }

    @Test
    void whatProcessesAndCellsMayEndWith() {
        assertEquals(Set.of("exited", "timeout", "oom_killed", "output_truncated", "signal", "killed"),
                names(Outcome.PROCESS));
        assertEquals(Set.of("ok", "error", "timeout", "output_truncated", "killed"), names(Outcome.CELL));
        EnumSet<Outcome> all = EnumSet.copyOf(Outcome.PROCESS);
        all.addAll(Outcome.CELL);
        all.add(Outcome.UNKNOWN);
        assertEquals(EnumSet.allOf(Outcome.class), all, "every outcome but UNKNOWN is sent by the agent");
    }

    private static Set<String> names(Set<Outcome> outcomes) {
        return outcomes.stream().map(Outcome::wireName).collect(java.util.stream.Collectors.toSet());
    }
}
