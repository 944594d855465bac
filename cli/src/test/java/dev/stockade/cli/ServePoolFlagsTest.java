package dev.stockade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.server.config.PoolConfig;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

/** `serve`'s pool flags (issue 16): the ceiling, the floor, the start budget and the idle time. */
class ServePoolFlagsTest {
    private static PoolConfig pool(String... argv) throws UsageException {
        ServeCommand serve = new ServeCommand();
        return serve.pool(Args.parse(List.of(argv), serve.spec()));
    }

    @Test
    void byDefaultThePoolFollowsDemandBetweenTwoAndEight() throws UsageException {
        PoolConfig p = pool();
        assertEquals(8, p.size());
        assertEquals(2, p.min());
        assertTrue(p.demand().follow());
        assertEquals(PoolConfig.Demand.DEFAULT_MAX_STARTING, p.demand().maxStarting());
        assertEquals(Duration.ofSeconds(30), p.demand().idleAfter());
        assertEquals(1024, p.demand().reserveMb());
    }

    @Test
    void theFlagsSetCeilingFloorBudgetAndIdleTime() throws UsageException {
        PoolConfig p = pool("--pool-size", "12", "--pool-min", "3", "--pool-max-starting", "4", "--pool-idle", "90",
                "--pool-reserve-mb", "2048");
        assertEquals(2048, p.demand().reserveMb());
        assertEquals(12, p.size());
        assertEquals(3, p.min());
        assertEquals(4, p.demand().maxStarting());
        assertEquals(Duration.ofSeconds(90), p.demand().idleAfter());
        // A ceiling below the default floor brings the floor down with it.
        assertEquals(1, pool("--pool-size", "1").min());
        assertThrows(UsageException.class, () -> pool("--pool-max-starting", "0"));
        assertThrows(UsageException.class, () -> pool("--pool-idle", "0"));
        assertThrows(UsageException.class, () -> pool("--pool-size", "2", "--pool-min", "3"));
    }
}
