package dev.stockade.server.core;

import dev.stockade.server.error.HostFailure;
import dev.stockade.server.error.StockadeError;

import dev.stockade.runtime.RuntimeFailure;
import dev.stockade.runtime.RuntimeProvider;
import dev.stockade.runtime.SandboxRuntime;
import dev.stockade.runtime.Template;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.logging.Logger;

/**
 * The isolation tiers this server offers: every runtime found through {@link RuntimeProvider} that
 * this host can run, each with its default template and its own state root
 * ({@code DATA/runtime/NAME}), and the ones it cannot run with the reason (shown by
 * {@code GET /runtimes}, and in the 400 of a create that asks for one). The default runtime must be
 * available, or the server does not start; the others are optional.
 *
 * <p>Immutable after construction; safe to share between threads.
 */
public final class Runtimes {
    private static final Logger LOG = Logger.getLogger(Runtimes.class.getName());

    /** The template-name suffix that selects the hardened tier (what E2B's SDKs can send). */
    public static final String HARDENED_SUFFIX = "-hardened";
    /** The runtime the hardened tier is. */
    public static final String HARDENED = "runsc";

    /** One runtime this server can start sandboxes on. */
    public record Tier(SandboxRuntime runtime, Template template, Path sandboxesRoot) {
        public String name() {
            return runtime.name();
        }
    }

    private final String defaultName;
    private final Map<String, Tier> tiers;
    private final Map<String, String> unavailable;

    public Runtimes(String defaultName, List<Tier> tiers, Map<String, String> unavailable) {
        this.defaultName = defaultName;
        Map<String, Tier> m = new LinkedHashMap<>();
        for (Tier t : tiers) m.put(t.name(), t);
        if (!m.containsKey(defaultName)) {
            throw new IllegalArgumentException("the default runtime " + defaultName + " is not among " + m.keySet());
        }
        this.tiers = java.util.Collections.unmodifiableMap(m);
        this.unavailable = Map.copyOf(unavailable);
    }

    /**
     * Every runtime installed (ServiceLoader) that this host can run, under {@code DATA/runtime/NAME}.
     * A runtime that fails its probe or its set-up is listed as unavailable with why, unless it is the
     * default: then the server cannot start, and the exception says why.
     */
    public static Runtimes load(String defaultName, Path runtimeRoot) {
        List<Tier> tiers = new ArrayList<>();
        Map<String, String> unavailable = new LinkedHashMap<>();
        boolean found = false;
        for (RuntimeProvider p : ServiceLoader.load(RuntimeProvider.class)) {
            String name = p.name();
            if (name.equals(defaultName)) found = true;
            RuntimeProvider.Availability a = p.probe();
            if (!a.available()) {
                if (name.equals(defaultName)) {
                    throw new IllegalStateException("runtime '" + name + "' is not available on this host: " + a.reason());
                }
                unavailable.put(name, a.reason());
                LOG.info("runtime " + name + " is not offered: " + a.reason());
                continue;
            }
            Path root = runtimeRoot.resolve(name);
            try {
                SandboxRuntime r = p.create(root);
                tiers.add(new Tier(r, r.defaultTemplate(), root.resolve("sandboxes")));
            } catch (RuntimeException e) {
                // An optional tier that cannot be set up (no compiler, a broken binary...) is not
                // offered; the server still starts with the others.
                if (name.equals(defaultName)) throw e;
                // Its words (a compiler's output, host paths) are the operator's: GET /runtimes shows the kind only.
                unavailable.put(name, e instanceof RuntimeFailure rf ? "setting it up failed: " + HostFailure.reason(rf)
                        : "setting it up failed (the server's log has the details)");
                LOG.warning("runtime " + name + " is not offered: setting it up failed: " + e.getMessage());
            }
        }
        if (!found) {
            throw new IllegalStateException("runtime '" + defaultName + "' is not available on this host"
                    + " (no provider of that name is installed)");
        }
        // The default first: lists and GET /runtimes show it first.
        tiers.sort(java.util.Comparator.comparing((Tier t) -> !t.name().equals(defaultName)).thenComparing(Tier::name));
        return new Runtimes(defaultName, tiers, unavailable);
    }

    public String defaultName() {
        return defaultName;
    }

    public Tier defaultTier() {
        return tiers.get(defaultName);
    }

    /** The tier of that name, or null when this server does not offer it. */
    public Tier find(String name) {
        return name == null ? null : tiers.get(name);
    }

    /** The tier a create asks for, or INVALID_ARGUMENT naming what is offered (and why not, if known). */
    public Tier require(String name) {
        Tier t = tiers.get(name);
        if (t != null) return t;
        String why = clientReason(name);
        if (why != null) {
            throw StockadeError.invalid("runtime '" + name + "' is not available on this server: " + why
                    + ". Offered: " + String.join(", ", tiers.keySet()) + ".");
        }
        throw StockadeError.invalid("runtime '" + name + "' does not exist; this server offers "
                + String.join(", ", tiers.keySet()) + " (GET /runtimes lists them with their capabilities).");
    }

    /** The runtime a sandbox runs on (it was offered when the sandbox started, so it is here). */
    SandboxRuntime of(Sandbox sb) {
        Tier t = tiers.get(sb.runtime());
        if (t == null) throw new IllegalStateException("sandbox " + sb.id() + " runs on unknown runtime " + sb.runtime());
        return t.runtime();
    }

    public Collection<Tier> all() {
        return tiers.values();
    }

    /** Runtimes installed but not usable on this host, with why. */
    /**
     * Why {@code name} is not offered, as a client reads it (GET /runtimes, a refused create): the
     * probe's own words name host paths and the runtime's output (issue 15, item 4), so clients get
     * that it is unavailable and where the reason is; {@link #unavailable} and the log have it. Null
     * when {@code name} is not an unavailable runtime.
     */
    public String clientReason(String name) {
        return unavailable.containsKey(name) ? "it cannot run on this host (the server's log at start says why)" : null;
    }

    /** Why each runtime the host cannot run is not offered, in the probe's own words: for the operator (start-up, logs). */
    public Map<String, String> unavailable() {
        return unavailable;
    }
}
