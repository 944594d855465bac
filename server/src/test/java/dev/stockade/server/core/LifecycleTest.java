package dev.stockade.server.core;

import dev.stockade.server.error.StockadeError;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.server.core.Lifecycle.Effect;
import dev.stockade.server.core.Lifecycle.Operation;
import dev.stockade.runtime.Capabilities;
import dev.stockade.runtime.Limits;
import dev.stockade.runtime.RuntimeFailure;
import dev.stockade.runtime.SandboxRuntime;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
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

    /**
     * A pause while a snapshot copies the sandbox (frozen for the copy) is a conflict the caller can
     * retry, never the runtime's refusal of a second freeze as a 503 (issue 15, finding 6). The
     * runtime here refuses every freeze, as runc does for a frozen container.
     */
    @Test
    void aPauseDuringASnapshotsCopyIsAConflict() {
        SandboxRuntime frozen = (SandboxRuntime) java.lang.reflect.Proxy.newProxyInstance(SandboxRuntime.class.getClassLoader(),
                new Class<?>[] {SandboxRuntime.class}, (proxy, method, args) -> switch (method.getName()) {
                    case "name" -> "runc";
                    case "capabilities" -> Set.of(Capabilities.PAUSE, Capabilities.SNAPSHOT);
                    case "pause" -> throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "the container is paused already");
                    default -> throw new UnsupportedOperationException(method.getName());
                });
        Runtimes runtimes = new Runtimes("runc", List.of(new Runtimes.Tier(frozen, null, null)), Map.of());
        SandboxTable table = new SandboxTable();
        var facts = new Sandbox.Facts(table.newId(), "base", "base", "runc", Map.of(), Map.of(), List.of(),
                new Limits(512, 1.0, 256, 1024, 16, 300), Instant.now(), table.newToken(), 65536L, false, 0, null, null);
        Sandbox sb = new Sandbox(facts, new Sandbox.Owner("acme", () -> {}), Instant.now().plusSeconds(60), null, 0, s -> Optional.empty(), OutputPace.UNPACED);
        sb.running(null);
        Transitions transitions = new Transitions(runtimes, null, table, null);
        assertTrue(sb.startCopy());
        StockadeError e = assertThrows(StockadeError.class, () -> transitions.pause(sb));
        assertEquals(StockadeError.Code.CONFLICT, e.code(), e.getMessage());
        assertTrue(e.getMessage().contains("being snapshotted"), e.getMessage());
        assertInstanceOf(SandboxState.Running.class, sb.state());
    }
}
