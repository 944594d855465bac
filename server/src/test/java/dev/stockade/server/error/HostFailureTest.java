package dev.stockade.server.error;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.stockade.runtime.RuntimeFailure;
import org.junit.jupiter.api.Test;

class HostFailureTest {
    @Test
    void aRuntimesFailureReachesTheClientAsTheSandboxAndTheKindOfCauseOnly() {
        RuntimeFailure cause = new RuntimeFailure(RuntimeFailure.Code.START_FAILED, "runc could not start sandbox abc (exit 1):"
                + " time=\"2026-12-07T18:06:08Z\" level=error msg=\"mkdir /var/lib/stockade/runtime/runc/sandboxes/abc/disk/run:"
                + " permission denied\" (host uid 2097152)");
        StockadeError e = HostFailure.of(StockadeError.Code.UNAVAILABLE, "starting sandbox abc failed", cause);
        assertEquals(StockadeError.Code.UNAVAILABLE, e.code());
        assertEquals("starting sandbox abc failed: the runtime could not start it (the server's log has the details)", e.getMessage());
        assertSame(cause, e.getCause(), "the runtime's words stay with the error, for the log");
        for (RuntimeFailure.Code code : RuntimeFailure.Code.values()) {
            String why = HostFailure.reason(new RuntimeFailure(code, "/var/lib/stockade level=error 2097152"));
            assertFalse(why.contains("/") || why.contains("level=") || why.contains("2097152"), code + ": " + why);
        }
    }

    @Test
    void aFullDiskIsNamedAsSuchWithoutItsPath() {
        RuntimeFailure cause = new RuntimeFailure(RuntimeFailure.Code.START_FAILED, "preparing sandbox abc failed: "
                + "/var/lib/stockade/runtime/runc/sandboxes/abc/disk/agent.log: No space left on device");
        String message = HostFailure.of(StockadeError.Code.UNAVAILABLE, "starting sandbox abc failed", cause).getMessage();
        assertEquals("starting sandbox abc failed: the host's disk for sandboxes is full (no space left) (the server's log has the details)",
                message);
    }
}
