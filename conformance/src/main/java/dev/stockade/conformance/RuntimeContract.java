package dev.stockade.conformance;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.server.config.ServerConfig;
import java.util.LinkedHashSet;
import java.util.Set;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.TestInstance;

/**
 * The base of every contract class of the conformance kit: one real server per test class whose
 * default runtime is {@link #runtime()}, the client to drive it, and the runtime's declared
 * capabilities (read from {@code GET /runtimes}) for {@link #requires}.
 *
 * <p>A runtime module runs the kit by extending each contract class and naming its runtime, e.g.
 * {@code class RuncCommandsIT extends CommandsContract { protected String runtime() { return "runc"; } }}.
 * A test that needs an optional feature calls {@link #requires} first: on a runtime that does not
 * declare it, the test is skipped (never edited) and the reason is printed. docs/conformance.md
 * lists the contracts and what each requires.
 *
 * <p>One instance per class ({@link TestInstance.Lifecycle#PER_CLASS}) so that {@code @BeforeAll}
 * methods are instance methods and may call {@link #runtime()}. Each contract's {@code @BeforeAll}
 * calls {@link #startServer} once (after any host fixture its configuration names); the server is
 * closed, and its leak check run, after the contract's own {@code @AfterAll} methods.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
public abstract class RuntimeContract {
    /** The server of this class's tests, started by {@link #startServer}. */
    protected TestServer ts;
    /** The raw client of {@link #ts}, with the default tenant's admin key. */
    protected RawClient c;
    private Set<String> capabilities = Set.of();

    /** The name of the runtime under test, as the server's runtime registry knows it ("runc", "runsc"). */
    protected abstract String runtime();

    /**
     * Starts this class's server: the default configuration with {@code tweak} applied, then the
     * runtime under test as the default runtime, so every create without a "runtime" field uses it.
     * Reads the runtime's capabilities from {@code GET /runtimes}.
     */
    protected final void startServer(UnaryOperator<ServerConfig> tweak) {
        if (ts != null) throw new IllegalStateException("the server of " + getClass().getSimpleName() + " is already started");
        ts = new TestServer(cfg -> tweak.apply(cfg).withRuntime(runtime()));
        c = ts.client;
        capabilities = capabilitiesOf(c, runtime());
        System.out.println("[conformance] " + getClass().getSimpleName() + ": runtime " + runtime()
                + " declares capabilities " + capabilities);
    }

    /** Starts this class's server with the default configuration. */
    protected final void startServer() {
        startServer(cfg -> cfg);
    }

    @AfterAll
    protected final void stopServer() {
        if (ts != null) {
            try {
                ts.close();
            } finally {
                ts = null;
                c = null;
            }
        }
    }

    /** What the runtime under test declares in {@code GET /runtimes} (see dev.stockade.runtime.Capabilities). */
    protected final Set<String> capabilities() {
        return capabilities;
    }

    /**
     * Skips the calling test unless the runtime under test declares {@code capability}, printing
     * (and reporting, as the skip's message) the runtime, the capability and {@code why} the test
     * needs it.
     */
    protected final void requires(String capability, String why) {
        if (capabilities.contains(capability)) return;
        String message = "skipped on runtime " + runtime() + ": it does not declare capability '" + capability
                + "', which this test needs because " + why;
        System.out.println("[conformance] " + getClass().getSimpleName() + ": " + message);
        Assumptions.assumeTrue(false, message);
    }

    /**
     * Whether the runtime under test declares {@code capability}; when it does not, prints that the
     * checks that need it are left out of the calling test and {@code why} — for a test whose other
     * checks still hold on every runtime.
     */
    protected final boolean checksNeeding(String capability, String why) {
        if (capabilities.contains(capability)) return true;
        System.out.println("[conformance] " + getClass().getSimpleName() + ": on runtime " + runtime() + ", which does"
                + " not declare capability '" + capability + "', part of this test is left out: " + why);
        return false;
    }

    /** As {@link #checksNeeding}, for checks that only apply when the runtime does NOT declare {@code capability}. */
    protected final boolean checksWithout(String capability, String why) {
        if (!capabilities.contains(capability)) return true;
        System.out.println("[conformance] " + getClass().getSimpleName() + ": on runtime " + runtime() + ", which declares"
                + " capability '" + capability + "', part of this test is left out: " + why);
        return false;
    }

    /**
     * The answers a check accepts: Linux's own, plus — only for a runtime with a kernel of its own
     * (userspace-kernel) — that kernel's equivalent ones (gVisor's netstack says EHOSTUNREACH where
     * Linux says ENETUNREACH), so a host-kernel runtime is held to the exact old answer.
     */
    @SafeVarargs
    protected final <T> Set<T> answers(T linux, T... ownKernel) {
        Set<T> out = new java.util.HashSet<>();
        out.add(linux);
        if (capabilities.contains(dev.stockade.runtime.Capabilities.USERSPACE_KERNEL)) out.addAll(java.util.List.of(ownKernel));
        return out;
    }

    /**
     * The content of a file of the sandbox's host cgroup ({@code /stockade-ID} in the controller
     * that has it, v1 or v2), read on the host: what the host enforces, whatever the sandbox's
     * kernel shows inside. Empty when absent.
     */
    public static String hostCgroupFile(String sandboxId, String file) {
        for (String controller : java.util.List.of("cpu,cpuacct", "cpu", "cpuacct", "memory", "pids", "")) {
            java.nio.file.Path p = java.nio.file.Path.of("/sys/fs/cgroup", controller, "stockade-" + sandboxId, file);
            try {
                if (java.nio.file.Files.isRegularFile(p)) return java.nio.file.Files.readString(p).strip();
            } catch (java.io.IOException e) {
                return "";
            }
        }
        return "";
    }

    /**
     * Skips the calling test when the runtime under test declares {@code capability}: for checks
     * that only mean something without it (a host-side view of a sandbox's processes means nothing
     * under a runtime with a kernel of its own). Prints the reason as {@link #requires} does.
     */
    protected final void requiresAbsent(String capability, String why) {
        if (!capabilities.contains(capability)) return;
        String message = "skipped on runtime " + runtime() + ": it declares capability '" + capability
                + "', and this test only applies without it because " + why;
        System.out.println("[conformance] " + getClass().getSimpleName() + ": " + message);
        Assumptions.assumeTrue(false, message);
    }

    /**
     * The capabilities {@code GET /runtimes} lists for {@code runtime}. Accepts the list form
     * ({@code [{"name", "capabilities": [...]}, ...]}) and the object form
     * ({@code {"runtimes": [...], "default": ...}}); a runtime the server does not list fails the
     * class, since its tests would prove nothing.
     */
    static Set<String> capabilitiesOf(RawClient client, String runtime) {
        RawClient.Response r = client.call("GET", "/runtimes", null);
        if (r.status() != 200 || r.json() == null) {
            throw new IllegalStateException("GET /runtimes answered " + r.status() + ": " + r.body()
                    + ". The conformance kit reads the runtime's capabilities there; check the server's /runtimes route.");
        }
        JsonNode list = r.json().isArray() ? r.json() : r.json().path("runtimes");
        if (!list.isArray() && r.json().has("name")) list = RawClient.JSON.createArrayNode().add(r.json());
        for (JsonNode rt : list) {
            if (!runtime.equals(rt.path("name").asText())) continue;
            Set<String> caps = new LinkedHashSet<>();
            rt.path("capabilities").forEach(cap -> caps.add(cap.asText()));
            return Set.copyOf(caps);
        }
        throw new IllegalStateException("GET /runtimes does not list runtime '" + runtime + "': " + r.body()
                + ". Check that the runtime's module is on the test class path and that it is available on this host.");
    }
}
