package dev.stockade.server.core;

import dev.stockade.server.error.StockadeError;

import dev.stockade.runtime.Capabilities;
import dev.stockade.runtime.Limits;
import dev.stockade.server.config.ServerConfig;
import dev.stockade.server.egress.EgressConfig;
import dev.stockade.server.egress.NetworkPolicy;
import dev.stockade.server.egress.SecretBinding;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.random.RandomGenerator;
import java.util.regex.Pattern;

/**
 * Decides whether a create may happen and with what: a {@link CreateRequest} in, a {@link CreatePlan}
 * out, or the {@link StockadeError} that tells the client what to change. It touches nothing on the
 * host: what it must know of the world (the runtimes offered, the owner's snapshots, how many
 * sandboxes run) is handed in, so it is tested without root ({@code CreatePolicyTest}). Checks run
 * in a fixed order, so a request with several faults always hears of the same one first.
 *
 * <p>Also the one place of the rules that later calls share: timeouts and network policies.
 * Stateless apart from its configuration; called concurrently from request threads.
 */
final class CreatePolicy {
    /** Template names the E2B SDKs send by default, all served by the host-Python template. */
    static final Set<String> DEFAULT_TEMPLATE_NAMES = Set.of("base", "code-interpreter-v1", "python");
    private static final Pattern METADATA_KEY = Pattern.compile("[A-Za-z0-9_.\\-:/]{1,128}");
    private static final Pattern RUNTIME_NAME = Pattern.compile("[a-z0-9-]{1,32}");
    private static final Pattern ENV_KEY = Pattern.compile("[A-Za-z_][A-Za-z0-9_]{0,255}");

    /** What the policy needs of the runtimes this server offers. */
    interface Catalog {
        String defaultName();

        /** The capabilities of the runtime of that name; INVALID_ARGUMENT when it is not offered, saying why. */
        Set<String> capabilities(String runtime);

        static Catalog of(Runtimes runtimes) {
            return new Catalog() {
                @Override
                public String defaultName() {
                    return runtimes.defaultName();
                }

                @Override
                public Set<String> capabilities(String runtime) {
                    return runtimes.require(runtime).runtime().capabilities();
                }
            };
        }
    }

    /** The owner's snapshot of that id or name, or null (a server without snapshots has none). */
    @FunctionalInterface
    interface Seeds {
        Snapshots.Snapshot find(String owner, String name);
    }

    private final ServerConfig config;
    private final Catalog runtimes;
    private final boolean egress;
    private final Seeds seeds;
    private final TemplateCatalog templates;
    private final RandomGenerator random;

    /**
     * @param egress whether the server runs an egress proxy (without one, sandboxes get no network and no secrets)
     * @param random makes the secrets' placeholders (a SecureRandom in the server)
     */
    CreatePolicy(ServerConfig config, Catalog runtimes, boolean egress, Seeds seeds, RandomGenerator random) {
        this(config, runtimes, egress, seeds, TemplateCatalog.NONE, random);
    }

    /** @param templates the tenants' built templates (issue 17): a name neither built in nor a snapshot's is looked up there */
    CreatePolicy(ServerConfig config, Catalog runtimes, boolean egress, Seeds seeds, TemplateCatalog templates,
                 RandomGenerator random) {
        this.config = config;
        this.runtimes = runtimes;
        this.egress = egress;
        this.seeds = seeds;
        this.templates = templates;
        this.random = random;
    }

    /**
     * The plan for {@code req} of {@code owner}, while {@code running} sandboxes run on this server;
     * the first rule it breaks otherwise.
     */
    CreatePlan plan(CreateRequest req, String owner, int running) {
        String templateName = req.template() == null || req.template().isBlank() ? "base" : req.template();
        if (req.runtime() != null && !RUNTIME_NAME.matcher(req.runtime()).matches()) {
            throw StockadeError.invalid("runtime must be a runtime's name (1 to 32 of a-z, 0-9 and -), e.g. runc or runsc;"
                    + " GET /runtimes lists them");
        }
        String runtimeName = req.runtime() == null ? runtimes.defaultName() : req.runtime();
        // A built template runs on its built-in base with its build's environment; a snapshot of the
        // same name was there first and keeps the name.
        TemplateCatalog.Resolved built = null;
        if (!TemplateCatalog.isBuiltIn(templateName) && seeds.find(owner, templateName) == null) {
            built = templates.resolve(owner, templateName);
            if (built != null) templateName = built.base();
        }
        if (templateName.endsWith(Runtimes.HARDENED_SUFFIX)) {
            templateName = templateName.substring(0, templateName.length() - Runtimes.HARDENED_SUFFIX.length());
            if (req.runtime() != null && !req.runtime().equals(Runtimes.HARDENED)) {
                throw StockadeError.invalid("template '" + req.template() + "' asks for the hardened tier ("
                        + Runtimes.HARDENED + ")" + (built == null ? "" : " (it was built on " + built.base() + ")")
                        + " but the request names runtime '" + req.runtime() + "': ask for one of them");
            }
            runtimeName = Runtimes.HARDENED;
        }
        Snapshots.Snapshot seed = null;
        if (!DEFAULT_TEMPLATE_NAMES.contains(templateName)) {
            seed = seeds.find(owner, templateName);
            if (seed == null) {
                throw StockadeError.invalid("template '" + req.template() + "' does not exist on this server: the templates are "
                        + String.join(", ", DEFAULT_TEMPLATE_NAMES.stream().sorted().toList())
                        + " (each may carry -hardened), the id or name of one of your snapshots, or the alias[:tag] or id"
                        + " of one of your ready templates.");
            }
        }
        Set<String> capabilities = runtimes.capabilities(runtimeName);
        if (req.autoPause()) requireCapability(runtimeName, capabilities, Capabilities.PAUSE, "pause sandboxes (autoPause)");
        if (seed != null) requireCapability(runtimeName, capabilities, Capabilities.SNAPSHOT, "start sandboxes from snapshots");
        int timeout = req.timeoutSeconds() == null ? config.defaultTimeoutSeconds() : req.timeoutSeconds();
        checkTimeout(timeout);
        if (req.idleTimeoutSeconds() != null && (req.idleTimeoutSeconds() < 1 || req.idleTimeoutSeconds() > config.maxTimeoutSeconds())) {
            throw StockadeError.invalid("idleTimeout must be between 1 and " + config.maxTimeoutSeconds() + " seconds, got "
                    + req.idleTimeoutSeconds());
        }
        Limits limits = limits(req.limits() == null ? CreateRequest.LimitsRequest.NONE : req.limits());
        checkMap("metadata", req.metadata(), METADATA_KEY, 64, 1024);
        checkMap("envVars", req.envVars(), ENV_KEY, 256, 32 * 1024);
        NetworkPolicy network = granted(req.network() == null ? CreateRequest.NetworkRequest.of(NetworkPolicy.none())
                : req.network());
        checkNetwork(network);
        if (network.mode() != NetworkPolicy.Mode.NONE) {
            requireCapability(runtimeName, capabilities, Capabilities.NETWORK_ALLOWLIST, "give sandboxes network access");
        }
        List<SecretBinding> secrets = secrets(req);
        if (!secrets.isEmpty()) {
            requireCapability(runtimeName, capabilities, Capabilities.NETWORK_ALLOWLIST, "hold secrets (they need its egress path)");
        }
        if (running >= config.maxSandboxes()) {
            throw new StockadeError(StockadeError.Code.RESOURCE_EXHAUSTED, "this server already runs " + running
                    + " sandboxes, its maximum (maxSandboxes). Kill some or raise the limit.");
        }
        if (seed != null && seed.bytes() > (long) limits.diskMB() * 1024 * 1024 * 9 / 10) {
            throw StockadeError.invalid("snapshot " + seed.id() + " holds " + (seed.bytes() >> 20) + " MiB of files, more"
                    + " than 90% of limits.diskMB " + limits.diskMB() + ": ask for a larger disk");
        }
        Map<String, String> processEnv = new LinkedHashMap<>(built == null ? Map.of() : built.env());
        processEnv.putAll(req.envVars());
        for (SecretBinding s : secrets) processEnv.put(s.name(), s.placeholder());
        if (processEnv.size() > 512) throw StockadeError.invalid("the template's env and envVars hold " + processEnv.size()
                + " variables together; at most 512");
        String alias = built != null ? built.alias() : seed == null ? templateName : (seed.name() != null ? seed.name() : seed.id());
        String templateId = built != null ? built.templateId() : req.template() == null ? "base" : req.template();
        return new CreatePlan(templateId, alias, runtimeName, seed, timeout,
                req.idleTimeoutSeconds() == null ? 0 : req.idleTimeoutSeconds(), limits, req.metadata(), processEnv,
                network, secrets, req.autoPause(),
                built == null ? null : built.user());
    }

    /** INVALID_ARGUMENT unless the runtime has {@code capability}; the message says what cannot be done. */
    static void requireCapability(String runtime, Set<String> capabilities, String capability, String what) {
        if (!capabilities.contains(capability)) {
            throw StockadeError.invalid("runtime " + runtime + " cannot " + what + " (it lacks the '" + capability
                    + "' capability; GET /runtimes lists what each runtime supports)");
        }
    }

    /** A sandbox's timeout (at create, resume and set-timeout). */
    void checkTimeout(int seconds) {
        if (seconds < 1 || seconds > config.maxTimeoutSeconds()) {
            throw StockadeError.invalid("timeout must be between 1 and " + config.maxTimeoutSeconds() + " seconds, got " + seconds);
        }
    }

    /**
     * The policy a create gets for what it asked. Open access implied by E2B's fields (the SDKs send
     * {@code allow_internet_access: true} on every create) on a server that does not permit it becomes
     * the most the server permits of the request, noted as a downgrade: an allow-list of its allowOut
     * entries if it has any, else none. Everything else, open access asked by name included, is
     * returned as asked, for {@link #checkNetwork} to accept or refuse; so is all of it when the
     * operator chose {@link EgressConfig.OpenRequests#REFUSE}.
     */
    NetworkPolicy granted(CreateRequest.NetworkRequest asked) {
        NetworkPolicy p = asked.policy();
        if (p.mode() != NetworkPolicy.Mode.OPEN || asked.openAskedThrough() == CreateRequest.OpenVia.MODE
                || config.egress().openRequests() == EgressConfig.OpenRequests.REFUSE
                || (egress && config.egress().allowOpen())) {
            return p;
        }
        String why = egress ? "the operator has not enabled open egress" : "this server runs without an egress proxy";
        NetworkPolicy.Downgrade d = new NetworkPolicy.Downgrade(NetworkPolicy.Mode.OPEN,
                asked.openAskedThrough().field(), why);
        if (!egress || p.allow().isEmpty()) return NetworkPolicy.none().downgradedFrom(d);
        return NetworkPolicy.of(NetworkPolicy.Mode.ALLOWLIST, p.allow(), p.deny(), p.headerRules()).downgradedFrom(d);
    }

    /** A network policy the operator permits (at create and when a sandbox's policy is replaced). */
    void checkNetwork(NetworkPolicy p) {
        if (p.mode() == NetworkPolicy.Mode.NONE) return;
        if (!egress) {
            throw StockadeError.invalid("this server runs without an egress proxy: sandboxes have no network"
                    + " (loopback only); ask for network mode none");
        }
        if (p.mode() == NetworkPolicy.Mode.OPEN && !config.egress().allowOpen()) {
            throw StockadeError.invalid("open internet access is not permitted on this server (the operator's"
                    + " egress.allowOpen is off): list the destinations instead (network.allowOut), and they"
                    + " become an allow-list");
        }
        config.egress().closedEntry(p).ifPresent(why -> {
            throw StockadeError.invalid(why);
        });
        if (!config.egress().allowOpen()) {
            for (String entry : p.allow()) {
                if (tooBroad(entry)) {
                    throw StockadeError.invalid("network.allowOut entry '" + entry + "' covers so much of the internet"
                            + " that it amounts to open access, which the operator does not permit (egress.allowOpen"
                            + " is off): list narrower ranges (IPv4 /8 or longer, IPv6 /16 or longer) or host names");
                }
            }
        }
    }

    /** An address range wider than an IPv4 /8 or an IPv6 /16 (e.g. E2B's 0.0.0.0/0, "all traffic"). */
    static boolean tooBroad(String entry) {
        String s = entry.startsWith("[") && entry.indexOf(']') > 0 ? entry.substring(1, entry.indexOf(']')) : entry;
        int slash = s.lastIndexOf('/');
        if (slash < 0) return false;
        String bits = s.substring(slash + 1);
        int colon = bits.indexOf(':');
        if (colon >= 0) bits = bits.substring(0, colon);
        try {
            int prefix = Integer.parseInt(bits);
            return prefix < (s.substring(0, slash).contains(":") ? 16 : 8);
        } catch (NumberFormatException e) {
            return false; // the policy parser has already refused malformed entries
        }
    }

    /** Secrets become placeholders bound to their hosts; their names must not clash with envVars. */
    private List<SecretBinding> secrets(CreateRequest req) {
        if (req.secrets().isEmpty()) return List.of();
        if (!egress) {
            throw StockadeError.invalid("secrets need the egress proxy, which this server runs without");
        }
        List<SecretBinding> out = new ArrayList<>();
        for (var e : req.secrets().entrySet()) {
            String name = e.getKey();
            if (!ENV_KEY.matcher(name).matches()) {
                throw StockadeError.invalid("secret name '" + name + "' is invalid: it must match " + ENV_KEY.pattern());
            }
            if (req.envVars().containsKey(name)) {
                throw StockadeError.invalid("secret " + name + " has the name of an envVars entry: give one of them another name");
            }
            String value = e.getValue().value();
            if (value.isEmpty() || value.length() > 32 * 1024 || value.indexOf('\0') >= 0 || value.indexOf('\r') >= 0
                    || value.indexOf('\n') >= 0) {
                throw StockadeError.invalid("secret " + name + " must be 1 to 32768 characters without NUL or line breaks");
            }
            byte[] t = new byte[16];
            random.nextBytes(t);
            try {
                out.add(new SecretBinding(name, SecretBinding.PREFIX + HexFormat.of().formatHex(t), value,
                        e.getValue().hosts()));
            } catch (IllegalArgumentException bad) {
                throw StockadeError.invalid("secret " + name + ": " + bad.getMessage());
            }
        }
        return out;
    }

    private Limits limits(CreateRequest.LimitsRequest r) {
        Limits d = config.defaultLimits();
        Limits max = config.maxLimits();
        int memory = pick("memoryMB", r.memoryMB(), d.memoryMB(), 64, max.memoryMB());
        double cpus = r.cpus() == null ? d.cpus() : r.cpus();
        if (!(cpus >= 0.05 && cpus <= max.cpus())) {
            throw StockadeError.invalid("limits.cpus must be between 0.05 and " + max.cpus() + ", got " + cpus);
        }
        int pids = pick("pids", r.pids(), d.pids(), 16, max.pids());
        int disk = pick("diskMB", r.diskMB(), d.diskMB(), 16, max.diskMB());
        int output = pick("outputMB", r.outputMB(), d.outputMB(), 1, max.outputMB());
        int cmd = pick("commandTimeoutSeconds", r.commandTimeoutSeconds(), d.commandTimeoutSeconds(), 1,
                max.commandTimeoutSeconds());
        return new Limits(memory, cpus, pids, disk, output, cmd);
    }

    private static int pick(String name, Integer asked, int dflt, int min, int max) {
        int v = asked == null ? dflt : asked;
        if (v < min || v > max) {
            throw StockadeError.invalid("limits." + name + " must be between " + min + " and " + max
                    + " on this server, got " + v + " (limits above the server's maxima are refused, not lowered)");
        }
        return v;
    }

    private static void checkMap(String what, Map<String, String> m, Pattern key, int maxEntries, int maxValue) {
        if (m.size() > maxEntries) throw StockadeError.invalid(what + " has " + m.size() + " entries; at most " + maxEntries);
        for (var e : m.entrySet()) {
            if (!key.matcher(e.getKey()).matches()) {
                throw StockadeError.invalid(what + " key '" + e.getKey() + "' is invalid: it must match " + key.pattern());
            }
            if (e.getValue() == null || e.getValue().length() > maxValue || e.getValue().indexOf('\0') >= 0) {
                throw StockadeError.invalid(what + " value of '" + e.getKey() + "' must be a string of at most " + maxValue
                        + " characters without NUL");
            }
        }
    }
}
