package dev.stockade.server.core;

import dev.stockade.server.error.StockadeError;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.stockade.server.core.Lifecycle.Effect;
import dev.stockade.server.core.Lifecycle.Operation;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Per state, every operation: what an allowed one does, and how a refused one is answered (the model
 * is Firecracker's {@code test_preboot_disallowed}). A new state or operation fails here until it is
 * written into the table.
 */
class LifecycleTest {
    /** One cell: allowed with an effect, or refused with a code and message. */
    private record Cell(Effect effect, StockadeError.Code code, String message) {
        static Cell allowed(Effect e) {
            return new Cell(e, null, null);
        }

        static Cell refused(StockadeError.Code code, String message) {
            return new Cell(null, code, message);
        }
    }

    private static final Cell NOT_FOUND = Cell.refused(StockadeError.Code.NOT_FOUND, "sandbox sb1 not found");

    private static Map<Operation, Cell> row(Object... opsAndCells) {
        Map<Operation, Cell> m = new EnumMap<>(Operation.class);
        for (int i = 0; i < opsAndCells.length; i += 2) m.put((Operation) opsAndCells[i], (Cell) opsAndCells[i + 1]);
        return m;
    }

    private static Map<Operation, Cell> everything(Cell c) {
        Map<Operation, Cell> m = new EnumMap<>(Operation.class);
        for (Operation op : Operation.values()) m.put(op, c);
        return m;
    }

    private static final Map<Class<? extends SandboxState>, Map<Operation, Cell>> TABLE = Map.of(
            // Not yet its owner's: as if it did not exist.
            SandboxState.Starting.class, everything(NOT_FOUND),
            SandboxState.Running.class, row(
                    Operation.USE, Cell.allowed(Effect.STAYS),
                    Operation.PAUSE, Cell.allowed(Effect.PAUSES),
                    Operation.RESUME, Cell.allowed(Effect.STAYS), // only a new timeout
                    Operation.SET_TIMEOUT, Cell.allowed(Effect.STAYS),
                    Operation.SNAPSHOT, Cell.allowed(Effect.FREEZES_FOR_COPY),
                    Operation.SET_NETWORK, Cell.allowed(Effect.STAYS),
                    Operation.KILL, Cell.allowed(Effect.ENDS)),
            SandboxState.Paused.class, row(
                    Operation.USE, Cell.refused(StockadeError.Code.CONFLICT, "sandbox sb1 is paused: resume it first (connect)"),
                    Operation.PAUSE, Cell.refused(StockadeError.Code.CONFLICT, "sandbox sb1 is already paused"),
                    Operation.RESUME, Cell.allowed(Effect.RESUMES),
                    Operation.SET_TIMEOUT, Cell.allowed(Effect.STAYS),
                    Operation.SNAPSHOT, Cell.allowed(Effect.STAYS), // frozen already
                    Operation.SET_NETWORK, Cell.allowed(Effect.STAYS),
                    Operation.KILL, Cell.allowed(Effect.ENDS)),
            // Gone: the same answer as a sandbox that never existed.
            SandboxState.Ended.class, everything(NOT_FOUND));

    private static final List<SandboxState> STATES = List.of(new SandboxState.Starting(), new SandboxState.Running(),
            new SandboxState.Paused(Instant.EPOCH, Duration.ofSeconds(5)), new SandboxState.Ended(Instant.EPOCH, "killed"));

    @Test
    void everyStateAllowsAndRefusesExactlyWhatTheTableSays() {
        assertEquals(SandboxState.class.getPermittedSubclasses().length, TABLE.size(), "a state is missing from the table");
        for (SandboxState state : STATES) {
            Map<Operation, Cell> row = TABLE.get(state.getClass());
            assertEquals(Operation.values().length, row.size(), "an operation is missing for " + state);
            for (Operation op : Operation.values()) {
                Cell want = row.get(op);
                String where = state.getClass().getSimpleName() + " × " + op;
                if (want.effect() != null) {
                    assertEquals(want.effect(), Lifecycle.allow(state, op, "sb1"), where);
                } else {
                    StockadeError e = assertThrows(StockadeError.class, () -> Lifecycle.allow(state, op, "sb1"), where);
                    assertEquals(want.code(), e.code(), where);
                    assertEquals(want.message(), e.getMessage(), where);
                }
            }
        }
    }

    @Test
    void theTableCoversEveryState() {
        for (Class<?> c : SandboxState.class.getPermittedSubclasses()) {
            assertEquals(true, TABLE.containsKey(c), c.getSimpleName() + " has no row");
            assertEquals(true, STATES.stream().anyMatch(s -> s.getClass() == c), c.getSimpleName() + " is not exercised");
        }
    }
}
