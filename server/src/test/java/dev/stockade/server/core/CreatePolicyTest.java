package dev.stockade.server.core;

import dev.stockade.server.error.StockadeError;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.runtime.Capabilities;
import dev.stockade.runtime.Limits;
import dev.stockade.server.config.PoolConfig;
import dev.stockade.server.config.ServerConfig;
import dev.stockade.server.egress.EgressConfig;
import dev.stockade.server.egress.NetworkPolicy;
import dev.stockade.server.packages.PackageConfig;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The create policy without a host: every rule a create must pass, with the exact message and code a
 * client gets, and the plan it yields when it passes. runc can do everything here but snapshots;
 * "wasm" is installed but not offered.
 */
class CreatePolicyTest {
    private static final Limits DEFAULTS = new Limits(512, 1.0, 256, 1024, 16, 300);
    private static final Limits MAXIMA = new Limits(8192, 2.0, 4096, 16384, 1024, 86_400);
    private static final Snapshots.Snapshot SNAP =
            new Snapshots.Snapshot("snap-aaaaaaaaaaaaaaaaaaaa", "acme", "mine", "sb1", Instant.EPOCH, 15L << 20);

    private static final CreatePolicy.Catalog CATALOG = new CreatePolicy.Catalog() {
        @Override
        public String defaultName() {
            return "runc";
        }

        @Override
        public Set<String> capabilities(String runtime) {
            return switch (runtime) {
                case "runc" -> Set.of(Capabilities.PAUSE, Capabilities.NETWORK_ALLOWLIST);
                case "runsc" -> Set.of(Capabilities.PAUSE, Capabilities.SNAPSHOT, Capabilities.NETWORK_ALLOWLIST);
                case "bare" -> Set.of();
                case "wasm" -> throw StockadeError.invalid("runtime 'wasm' is not available on this server: no node. Offered: runc, runsc, bare.");
                default -> throw StockadeError.invalid("runtime '" + runtime + "' does not exist; this server offers runc, runsc, bare.");
            };
        }
    };

    private static ServerConfig config(boolean allowOpen, int maxSandboxes) {
        EgressConfig e = EgressConfig.defaults();
        EgressConfig egress = new EgressConfig(allowOpen, e.privateAllow(), e.hosts(), e.connectTimeout(), e.idleTimeout(),
                e.maxConnectionsPerSandbox(), e.logCapacity(), null);
        return new ServerConfig("127.0.0.1", 0, Path.of("/nonexistent"), null, "runc", DEFAULTS, MAXIMA, 300, 86_400,
                maxSandboxes, egress, PackageConfig.none(), PoolConfig.off(), ServerConfig.DEFAULT_OUTPUT_BYTES_PER_SECOND,
                ServerConfig.DEFAULT_CONCURRENT_STARTS);
    }

    private static CreatePolicy policy(boolean egress) {
        return policy(config(false, 200), egress);
    }

    private static CreatePolicy policy(ServerConfig config, boolean egress) {
        return new CreatePolicy(config, CATALOG, egress,
                (owner, name) -> owner.equals("acme") && (name.equals("mine") || name.equals(SNAP.id())) ? SNAP : null, new Random(1));
    }

    private static Req req() {
        return new Req();
    }

    /** A create request, field by field (null: not given). */
    private static final class Req {
        private String template;
        private Integer timeout;
        private Map<String, String> metadata;
        private Map<String, String> env;
        private String runtime;
        private CreateRequest.LimitsRequest limits;
        private CreateRequest.NetworkRequest network;
        private Map<String, CreateRequest.SecretRequest> secrets;
        private boolean autoPause;
        private Integer idle;

        Req template(String t) { template = t; return this; }
        Req timeout(int s) { timeout = s; return this; }
        Req metadata(Map<String, String> m) { metadata = m; return this; }
        Req env(Map<String, String> e) { env = e; return this; }
        Req runtime(String r) { runtime = r; return this; }
        Req limits(CreateRequest.LimitsRequest l) { limits = l; return this; }
        Req network(NetworkPolicy n) { network = CreateRequest.NetworkRequest.of(n); return this; }
        Req network(NetworkPolicy n, CreateRequest.OpenVia via) { network = new CreateRequest.NetworkRequest(n, via); return this; }
        Req secrets(Map<String, CreateRequest.SecretRequest> s) { secrets = s; return this; }
        Req autoPause() { autoPause = true; return this; }
        Req idle(int s) { idle = s; return this; }

        CreateRequest build() {
            return new CreateRequest(template, timeout, metadata, env, runtime, limits, network, secrets, autoPause, idle);
        }
    }

    /** The message of the error a plan is refused with, its code checked. */
    private static String refused(StockadeError.Code code, CreatePolicy p, CreateRequest r) {
        return refused(code, p, r, 0);
    }

    private static String refused(StockadeError.Code code, CreatePolicy p, CreateRequest r, int running) {
        StockadeError e = assertThrows(StockadeError.class, () -> p.plan(r, "acme", running));
        assertEquals(code, e.code(), e.getMessage());
        return e.getMessage();
    }

    private static String invalid(CreateRequest r) {
        return refused(StockadeError.Code.INVALID_ARGUMENT, policy(true), r);
    }

    @Test
    void anEmptyRequestGetsTheServersDefaults() {
        CreatePlan plan = policy(true).plan(req().build(), "acme", 0);
        assertEquals("base", plan.templateId());
        assertEquals("base", plan.alias());
        assertEquals("runc", plan.runtime());
        assertNull(plan.seed());
        assertTrue(plan.poolable());
        assertEquals(300, plan.timeoutSeconds());
        assertEquals(0, plan.idleTimeoutSeconds());
        assertEquals(DEFAULTS, plan.limits());
        assertEquals(NetworkPolicy.none(), plan.network());
        assertEquals(List.of(), plan.secrets());
        assertEquals(Map.of(), plan.processEnv());
        assertFalse(plan.autoPause());
    }

    @Test
    void whatWasAskedForIsKept() {
        CreateRequest r = req().template("code-interpreter-v1").timeout(60).idle(30).autoPause()
                .limits(new CreateRequest.LimitsRequest(1024, 0.5, null, null, null, 10))
                .metadata(Map.of("team", "a")).env(Map.of("A", "1")).build();
        CreatePlan plan = policy(true).plan(r, "acme", 0);
        assertEquals("code-interpreter-v1", plan.templateId());
        assertEquals("code-interpreter-v1", plan.alias());
        assertEquals(60, plan.timeoutSeconds());
        assertEquals(30, plan.idleTimeoutSeconds());
        assertTrue(plan.autoPause());
        assertEquals(new Limits(1024, 0.5, 256, 1024, 16, 10), plan.limits());
        assertEquals(Map.of("team", "a"), plan.metadata());
        assertEquals(Map.of("A", "1"), plan.processEnv());
    }

    @Test
    void theHardenedSuffixSelectsRunscAndIsNotPartOfTheTemplate() {
        CreatePlan plan = policy(true).plan(req().template("base-hardened").build(), "acme", 0);
        assertEquals("runsc", plan.runtime());
        assertEquals("base-hardened", plan.templateId());
        assertEquals("base", plan.alias());
        assertTrue(plan.poolable());
        assertEquals("runsc", policy(true).plan(req().template("python-hardened").runtime("runsc").build(), "acme", 0).runtime());
        assertEquals("template 'base-hardened' asks for the hardened tier (runsc) but the request names runtime 'runc':"
                + " ask for one of them", invalid(req().template("base-hardened").runtime("runc").build()));
    }

    @Test
    void aSnapshotOfTheOwnerIsATemplateThatIsNeverPooled() {
        CreatePlan plan = policy(true).plan(req().template("mine-hardened").build(), "acme", 0);
        assertEquals(SNAP, plan.seed());
        assertEquals("mine", plan.alias());
        assertEquals("mine-hardened", plan.templateId());
        assertFalse(plan.poolable());
        // Another tenant's snapshot is as unknown as a missing one.
        StockadeError e = assertThrows(StockadeError.class,
                () -> policy(true).plan(req().template("mine-hardened").build(), "other", 0));
        assertEquals("template 'mine-hardened' does not exist on this server: the templates are base, code-interpreter-v1,"
                + " python (each may carry -hardened), the id or name of one of your snapshots, or the alias[:tag] or id of one"
                + " of your ready templates.", e.getMessage());
        assertEquals("runtime runc cannot start sandboxes from snapshots (it lacks the 'snapshot' capability; GET /runtimes"
                + " lists what each runtime supports)", invalid(req().template("mine").build()));
        assertEquals("snapshot snap-aaaaaaaaaaaaaaaaaaaa holds 15 MiB of files, more than 90% of limits.diskMB 16: ask for a"
                + " larger disk", invalid(req().template("mine-hardened").limits(
                        new CreateRequest.LimitsRequest(null, null, null, 16, null, null)).build()));
    }

    @Test
    void runtimesAreNamedAndMustBeOffered() {
        assertEquals("runtime must be a runtime's name (1 to 32 of a-z, 0-9 and -), e.g. runc or runsc; GET /runtimes lists them",
                invalid(req().runtime("RunC").build()));
        assertEquals("runtime 'nope' does not exist; this server offers runc, runsc, bare.", invalid(req().runtime("nope").build()));
        assertEquals("runtime 'wasm' is not available on this server: no node. Offered: runc, runsc, bare.",
                invalid(req().runtime("wasm").build()));
        assertEquals("runtime bare cannot pause sandboxes (autoPause) (it lacks the 'pause' capability; GET /runtimes lists"
                + " what each runtime supports)", invalid(req().runtime("bare").autoPause().build()));
    }

    @Test
    void timeoutsAreBounded() {
        assertEquals("timeout must be between 1 and 86400 seconds, got 0", invalid(req().timeout(0).build()));
        assertEquals("timeout must be between 1 and 86400 seconds, got 86401", invalid(req().timeout(86_401).build()));
        assertEquals("idleTimeout must be between 1 and 86400 seconds, got 0", invalid(req().idle(0).build()));
    }

    @Test
    void limitsAboveTheMaximaAreRefusedNotLowered() {
        assertEquals("limits.memoryMB must be between 64 and 8192 on this server, got 9000 (limits above the server's maxima"
                + " are refused, not lowered)", invalid(req().limits(new CreateRequest.LimitsRequest(9000, null, null, null, null, null)).build()));
        assertEquals("limits.cpus must be between 0.05 and 2.0, got 0.01",
                invalid(req().limits(new CreateRequest.LimitsRequest(null, 0.01, null, null, null, null)).build()));
        assertEquals("limits.commandTimeoutSeconds must be between 1 and 86400 on this server, got 0 (limits above the"
                + " server's maxima are refused, not lowered)",
                invalid(req().limits(new CreateRequest.LimitsRequest(null, null, null, null, null, 0)).build()));
    }

    @Test
    void metadataAndEnvironmentAreChecked() {
        assertEquals("metadata key 'a b' is invalid: it must match [A-Za-z0-9_.\\-:/]{1,128}",
                invalid(req().metadata(Map.of("a b", "x")).build()));
        assertEquals("metadata value of 'k' must be a string of at most 1024 characters without NUL",
                invalid(req().metadata(Map.of("k", "x".repeat(1025))).build()));
        assertEquals("envVars key '1A' is invalid: it must match [A-Za-z_][A-Za-z0-9_]{0,255}",
                invalid(req().env(Map.of("1A", "x")).build()));
        Map<String, String> many = new java.util.HashMap<>();
        for (int i = 0; i < 257; i++) many.put("V" + i, "x");
        assertEquals("envVars has 257 entries; at most 256", invalid(req().env(many).build()));
    }

    @Test
    void networkNeedsTheProxyAndTheOperatorsPermission() {
        NetworkPolicy allow = NetworkPolicy.of(NetworkPolicy.Mode.ALLOWLIST, List.of("pypi.org"), List.of(), Map.of());
        assertEquals(allow, policy(true).plan(req().network(allow).build(), "acme", 0).network());
        assertEquals("this server runs without an egress proxy: sandboxes have no network (loopback only); ask for network"
                + " mode none", refused(StockadeError.Code.INVALID_ARGUMENT, policy(false), req().network(allow).build()));
        assertEquals("open internet access is not permitted on this server (the operator's egress.allowOpen is off): list the"
                + " destinations instead (network.allowOut), and they become an allow-list",
                invalid(req().network(NetworkPolicy.of(NetworkPolicy.Mode.OPEN, List.of(), List.of(), Map.of())).build()));
        assertEquals("network.allowOut entry '0.0.0.0/0' covers so much of the internet that it amounts to open access, which"
                + " the operator does not permit (egress.allowOpen is off): list narrower ranges (IPv4 /8 or longer, IPv6 /16"
                + " or longer) or host names",
                invalid(req().network(NetworkPolicy.of(NetworkPolicy.Mode.ALLOWLIST, List.of("0.0.0.0/0"), List.of(), Map.of())).build()));
        assertEquals("runtime bare cannot give sandboxes network access (it lacks the 'network-allowlist' capability;"
                + " GET /runtimes lists what each runtime supports)", invalid(req().runtime("bare").network(allow).build()));
        // With the operator's permission, open access and wide ranges pass.
        CreatePolicy open = new CreatePolicy(config(true, 200), CATALOG, true, (o, n) -> null, new Random(1));
        open.checkNetwork(NetworkPolicy.of(NetworkPolicy.Mode.OPEN, List.of(), List.of(), Map.of()));
        open.checkNetwork(NetworkPolicy.of(NetworkPolicy.Mode.ALLOWLIST, List.of("0.0.0.0/0"), List.of(), Map.of()));
    }

    /** Issue 15: a tenant's address entry never opens the operator's addresses; a 400 names the entry and why. */
    @Test
    void anAllowEntryForTheOperatorsAddressesIsRefusedNamingIt() {
        for (String entry : List.of("127.0.0.1:3000", "127.0.0.0/8:3000", "169.254.169.254", "10.0.0.0/8",
                "[::ffff:127.0.0.1]:3000", "[::127.0.0.1]:3000")) {
            NetworkPolicy p = NetworkPolicy.of(NetworkPolicy.Mode.ALLOWLIST, List.of("pypi.org", entry), List.of(), Map.of());
            String why = invalid(req().network(p).build());
            assertTrue(why.startsWith("network.allowOut entry '"), why);
            assertTrue(why.contains("which only the operator can open (--egress-private)"), why);
            StockadeError e = org.junit.jupiter.api.Assertions.assertThrows(StockadeError.class, () -> policy(true).checkNetwork(p),
                    "updateNetwork refuses it too: " + entry);
            assertEquals(StockadeError.Code.INVALID_ARGUMENT, e.code());
        }
        // Where the operator opened the address, the sandbox may name it (narrowing).
        CreatePolicy operator = policy(config(false, 200).withEgress(EgressConfig.defaults()
                .withPrivateAllow(List.of("127.0.0.1/32"))), true);
        operator.checkNetwork(NetworkPolicy.of(NetworkPolicy.Mode.ALLOWLIST, List.of("127.0.0.1:3000"), List.of(), Map.of()));
    }

    private static NetworkPolicy open(List<String> allow, List<String> deny) {
        return NetworkPolicy.of(NetworkPolicy.Mode.OPEN, allow, deny, Map.of());
    }

    @Test
    void openImpliedByE2bsFieldsIsDowngradedToNoneWithANote() {
        // What the E2B Python SDK sends on every create: allow_internet_access true and nothing else.
        CreatePlan plan = policy(true).plan(req().network(open(List.of(), List.of()),
                CreateRequest.OpenVia.ALLOW_INTERNET_ACCESS).build(), "acme", 0);
        assertEquals(NetworkPolicy.Mode.NONE, plan.network().mode());
        assertEquals(List.of(), plan.network().allow());
        assertEquals(new NetworkPolicy.Downgrade(NetworkPolicy.Mode.OPEN, "allow_internet_access",
                "the operator has not enabled open egress"), plan.networkDowngrade());
        // A denyOut alone (E2B: open minus those) is implied open too.
        plan = policy(true).plan(req().network(open(List.of(), List.of("203.0.113.0/24")),
                CreateRequest.OpenVia.DENY_OUT).build(), "acme", 0);
        assertEquals(NetworkPolicy.Mode.NONE, plan.network().mode());
        assertEquals("network.denyOut", plan.networkDowngrade().askedThrough());
        // Without a proxy the most the server permits is none as well.
        plan = policy(false).plan(req().network(open(List.of("pypi.org"), List.of()),
                CreateRequest.OpenVia.ALLOW_INTERNET_ACCESS).build(), "acme", 0);
        assertEquals(NetworkPolicy.Mode.NONE, plan.network().mode());
        assertEquals("this server runs without an egress proxy", plan.networkDowngrade().reason());
        // Nothing to note when nothing was downgraded.
        assertNull(policy(true).plan(req().build(), "acme", 0).networkDowngrade());
    }

    @Test
    void openImpliedWithAllowOutBecomesAnAllowListOfThem() {
        CreatePlan plan = policy(true).plan(req().network(open(List.of("pypi.org", "198.51.100.0/24:443"), List.of("203.0.113.7")),
                CreateRequest.OpenVia.ALLOW_INTERNET_ACCESS).build(), "acme", 0);
        assertEquals(NetworkPolicy.Mode.ALLOWLIST, plan.network().mode());
        assertEquals(List.of("pypi.org", "198.51.100.0/24:443"), plan.network().allow());
        assertEquals(List.of("203.0.113.7"), plan.network().deny());
        assertEquals("allow_internet_access", plan.networkDowngrade().askedThrough());
        // Still subject to the too-broad check: "all traffic" in the list is open access in disguise.
        assertTrue(invalid(req().network(open(List.of("0.0.0.0/0"), List.of()), CreateRequest.OpenVia.ALLOW_INTERNET_ACCESS)
                .build()).startsWith("network.allowOut entry '0.0.0.0/0' covers so much of the internet"));
        // And the runtime must still be able to give network access at all.
        assertTrue(invalid(req().runtime("bare").network(open(List.of("pypi.org"), List.of()),
                CreateRequest.OpenVia.ALLOW_INTERNET_ACCESS).build()).startsWith("runtime bare cannot give sandboxes network access"));
    }

    @Test
    void openAskedByNameOrUnderTheRefuseSettingIsRefused() {
        String refusal = "open internet access is not permitted on this server (the operator's egress.allowOpen is off): list"
                + " the destinations instead (network.allowOut), and they become an allow-list";
        assertEquals(refusal, invalid(req().network(open(List.of(), List.of()), CreateRequest.OpenVia.MODE).build()));
        ServerConfig strict = config(false, 200);
        strict = strict.withEgress(strict.egress().withOpenRequests(EgressConfig.OpenRequests.REFUSE));
        assertEquals(refusal, refused(StockadeError.Code.INVALID_ARGUMENT, policy(strict, true),
                req().network(open(List.of(), List.of()), CreateRequest.OpenVia.ALLOW_INTERNET_ACCESS).build()));
        // With the operator's permission, implied open is open, undowngraded.
        CreatePlan plan = policy(config(true, 200), true).plan(req().network(open(List.of(), List.of()),
                CreateRequest.OpenVia.ALLOW_INTERNET_ACCESS).build(), "acme", 0);
        assertEquals(NetworkPolicy.Mode.OPEN, plan.network().mode());
        assertNull(plan.networkDowngrade());
    }

    @Test
    void tooBroadIsWiderThanASlash8OrASlash16() {
        assertTrue(CreatePolicy.tooBroad("0.0.0.0/0"));
        assertTrue(CreatePolicy.tooBroad("10.0.0.0/7:443"));
        assertFalse(CreatePolicy.tooBroad("10.0.0.0/8"));
        assertTrue(CreatePolicy.tooBroad("::/0"));
        assertTrue(CreatePolicy.tooBroad("[::/0]:443"));
        assertTrue(CreatePolicy.tooBroad("2001::/15"));
        assertFalse(CreatePolicy.tooBroad("2001::/16"));
        assertFalse(CreatePolicy.tooBroad("pypi.org"));
    }

    @Test
    void secretsBecomePlaceholdersInTheEnvironment() {
        var secrets = Map.of("API_KEY", new CreateRequest.SecretRequest("s3cret", List.of("api.example.com")),
                "OTHER", new CreateRequest.SecretRequest("x", List.of("other.example.com")));
        CreatePlan plan = policy(true).plan(req().secrets(secrets).env(Map.of("A", "1")).build(), "acme", 0);
        assertEquals(2, plan.secrets().size());
        for (var b : plan.secrets()) {
            assertTrue(b.placeholder().startsWith("stockade-secret-"), b.placeholder());
            assertEquals(b.placeholder(), plan.processEnv().get(b.name()));
            assertEquals(secrets.get(b.name()).value(), b.value());
        }
        assertNotEquals(plan.secrets().get(0).placeholder(), plan.secrets().get(1).placeholder());
        assertEquals("1", plan.processEnv().get("A"));
    }

    @Test
    void secretsAreChecked() {
        var one = new CreateRequest.SecretRequest("v", List.of("api.example.com"));
        assertEquals("secrets need the egress proxy, which this server runs without",
                refused(StockadeError.Code.INVALID_ARGUMENT, policy(false), req().secrets(Map.of("K", one)).build()));
        assertEquals("secret name 'bad-name' is invalid: it must match [A-Za-z_][A-Za-z0-9_]{0,255}",
                invalid(req().secrets(Map.of("bad-name", one)).build()));
        assertEquals("secret K has the name of an envVars entry: give one of them another name",
                invalid(req().secrets(Map.of("K", one)).env(Map.of("K", "x")).build()));
        assertEquals("secret K must be 1 to 32768 characters without NUL or line breaks",
                invalid(req().secrets(Map.of("K", new CreateRequest.SecretRequest("a\nb", List.of("h.example")))).build()));
        assertEquals("runtime bare cannot hold secrets (they need its egress path) (it lacks the 'network-allowlist'"
                + " capability; GET /runtimes lists what each runtime supports)",
                invalid(req().runtime("bare").secrets(Map.of("K", one)).build()));
    }

    @Test
    void aFullServerRefusesWithResourceExhausted() {
        CreatePolicy p = new CreatePolicy(config(false, 3), CATALOG, true, (o, n) -> null, new Random(1));
        assertEquals("runc", p.plan(req().build(), "acme", 2).runtime());
        assertEquals("this server already runs 3 sandboxes, its maximum (maxSandboxes). Kill some or raise the limit.",
                refused(StockadeError.Code.RESOURCE_EXHAUSTED, p, req().build(), 3));
    }

    @Test
    void theFirstBrokenRuleIsTheOneReported() {
        // Bad timeout, bad limits, bad metadata and no proxy for the network: the timeout comes first...
        NetworkPolicy allow = NetworkPolicy.of(NetworkPolicy.Mode.ALLOWLIST, List.of("pypi.org"), List.of(), Map.of());
        CreateRequest r = req().timeout(0).limits(new CreateRequest.LimitsRequest(1, null, null, null, null, null))
                .metadata(Map.of("a b", "x")).network(allow).build();
        assertEquals("timeout must be between 1 and 86400 seconds, got 0",
                refused(StockadeError.Code.INVALID_ARGUMENT, policy(false), r));
        // ...and an unknown template before everything but the runtime's name.
        CreateRequest t = req().template("nope").timeout(0).build();
        assertTrue(invalid(t).startsWith("template 'nope' does not exist"));
    }

    @Test
    void aBuiltTemplateOfTheOwnerRunsOnItsBaseWithItsEnvironmentUnderneathTheRequests() {
        TemplateCatalog built = (owner, name) -> owner.equals("acme") && (name.equals("tpl") || name.equals("tpl:v1"))
                ? new TemplateCatalog.Resolved("abcdefghij0123456789", "tpl", "base-hardened", Map.of("A", "1", "B", "2"),
                "/srv", "root") : null;
        CreatePolicy p = new CreatePolicy(config(false, 200), CATALOG, false, (o, n) -> null, built, new Random(1));
        CreatePlan plan = p.plan(req().template("tpl:v1").env(Map.of("B", "mine")).build(), "acme", 0);
        assertEquals("abcdefghij0123456789", plan.templateId());
        assertEquals("tpl", plan.alias());
        assertEquals("runsc", plan.runtime(), "built on base-hardened: the hardened tier");
        assertEquals(Map.of("A", "1", "B", "mine"), plan.processEnv());
        assertEquals("root", plan.defaultUser(), "the build's USER: commands that name no user run as it");
        assertThrows(StockadeError.class, () -> p.plan(req().template("tpl").build(), "other", 0), "another tenant's is not found");
    }
}
