package dev.stockade.server.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.runtime.SandboxRuntime;
import dev.stockade.runtime.SandboxSpec;
import dev.stockade.server.config.PoolConfig;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/**
 * Pools per template (issue 16): with a preload, a runtime has a plain pool that base creates take
 * and a preloaded one for code-interpreter-v1 creates; without one, a single plain pool serves
 * every template. Against a starter that starts nothing but records what each start was asked for.
 */
class PoolsTest {
    /** The preload each started sandbox was asked for, by id. */
    private final Map<String, List<String>> preloads = new ConcurrentHashMap<>();

    private final SandboxPool.Starter starter = new SandboxPool.Starter() {
        private int n;

        @Override
        public synchronized SandboxAssembler.Prepared startForPool(Runtimes.Tier t, SandboxSpec.Warmup warmup, Consumer<String> onId) {
            String id = "pooled-" + (++n);
            onId.accept(id);
            preloads.put(id, warmup.defaultContext() ? warmup.preload() : List.of());
            return new SandboxAssembler.Prepared(id, t, 0, 0, null, null, null, 0);
        }

        @Override
        public void abandon(Runtimes.Tier t, String id) {}

        @Override
        public void discard(SandboxAssembler.Prepared p) {}
    };

    private final Runtimes runtimes = new Runtimes("runc", List.of(new Runtimes.Tier((SandboxRuntime) java.lang.reflect.Proxy.newProxyInstance(
            SandboxRuntime.class.getClassLoader(), new Class<?>[] {SandboxRuntime.class}, (proxy, method, args) -> {
                if (method.getName().equals("name")) return "runc";
                throw new UnsupportedOperationException(method.getName());
            }), null, null)), Map.of());

    private static PoolConfig config(List<String> preload) {
        return new PoolConfig(2, 2, preload, 0, new PoolConfig.Demand(true, 2, Duration.ofSeconds(10), Duration.ofSeconds(30), 0));
    }

    private static void await(String what, java.util.function.BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "not reached within 30 s: " + what);
            Thread.sleep(5);
        }
    }

    @Test
    void withAPreloadBaseCreatesTakePlainSandboxesAndCodeInterpreterCreatesPreloadedOnes() throws Exception {
        List<String> preload = List.of("numpy", "pandas");
        try (Pools pools = new Pools(config(preload), runtimes, starter)) {
            await("both pools full", () -> pools.ready("runc") == 4);
            assertEquals(List.of(Pools.PLAIN, Pools.INTERPRETER), List.copyOf(pools.statuses("runc").keySet()));
            assertEquals(2, pools.statuses("runc").get(Pools.PLAIN).ready());
            assertEquals(2, pools.status("runc").ready(), "pool is the base pool's");

            var plain = pools.take("runc", "base");
            assertNotNull(plain);
            assertEquals(List.of(), preloads.get(plain.id()), "a base create gets a sandbox with no interpreter ahead");
            var python = pools.take("runc", "python");
            assertEquals(List.of(), preloads.get(python.id()));
            var interpreter = pools.take("runc", "code-interpreter-v1");
            assertEquals(preload, preloads.get(interpreter.id()), "a code-interpreter create gets the preloaded interpreter");
            assertEquals(1, pools.statuses("runc").get(Pools.INTERPRETER).hits());
            assertEquals(2, pools.statuses("runc").get(Pools.PLAIN).hits());
            assertNull(pools.take("runsc", "base"), "no pool on a runtime without one");
        }
    }

    @Test
    void withoutAPreloadOnePlainPoolServesEveryTemplate() throws Exception {
        try (Pools pools = new Pools(config(List.of()), runtimes, starter)) {
            await("the pool full", () -> pools.ready("runc") == 2);
            assertEquals(List.of(Pools.PLAIN), List.copyOf(pools.statuses("runc").keySet()));
            var taken = pools.take("runc", "code-interpreter-v1");
            assertNotNull(taken, "the code interpreter takes the plain pool's sandbox");
            assertEquals(List.of(), preloads.get(taken.id()));
        }
    }
}
