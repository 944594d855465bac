package dev.stockade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.tenancy.Quota;
import dev.stockade.server.tenancy.Tenant;
import dev.stockade.server.tenancy.TenantAdmin;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * {@code stockade tenants create|list|show|quota}: tenants and their quotas, changed in a data
 * directory's store through the server's admin service ({@link TenantAdmin}, see {@link LocalStore}). A running server applies a changed quota at the
 * next create. Usage (running sandboxes) is the server's to know: ask its admin API for that.
 */
final class TenantsCommand implements Subcommand {
    /** The quota options, in the order of {@link Quota}'s fields. */
    static final List<String> QUOTA_OPTIONS = List.of("sandboxes", "memory-mb", "cpus", "creates-per-minute",
            "sandbox-memory-mb", "sandbox-cpus");
    private static final Pattern WHOLE = Pattern.compile("[0-9]{1,18}");
    private static final Pattern DECIMAL = Pattern.compile("[0-9]{1,9}(\\.[0-9]{1,9})?");
    private static final Map<String, Set<String>> ACTIONS = new LinkedHashMap<>();

    static {
        ACTIONS.put("create", Subcommand.with(Set.copyOf(QUOTA_OPTIONS), "json", "data-dir"));
        ACTIONS.put("list", Set.of("json", "data-dir"));
        ACTIONS.put("show", Set.of("json", "data-dir"));
        ACTIONS.put("quota", Subcommand.with(Set.copyOf(QUOTA_OPTIONS), "json", "data-dir"));
    }

    @Override
    public String name() {
        return "tenants";
    }

    @Override
    public String summary() {
        return "create tenants, list them, set their quotas";
    }

    @Override
    public String usage() {
        return """
                Usage: stockade tenants create NAME [QUOTA OPTIONS] [--json] [--data-dir DIR]
                       stockade tenants list [--json] [--data-dir DIR]
                       stockade tenants show NAME [--json] [--data-dir DIR]
                       stockade tenants quota NAME [QUOTA OPTIONS] [--json] [--data-dir DIR]

                Manages tenants in a data directory's store directly, whether or not a server runs on
                it. A tenant owns sandboxes and API keys (stockade keys create --tenant NAME); the
                tenant "default" is made by a server's first start and owns its first admin key.

                  create   makes a tenant (NAME: 1 to 63 characters of a-z, 0-9, _ and -, starting with
                           a letter or digit); quotas not given are unlimited
                  list     the tenants, their active keys and quotas
                  show     one tenant
                  quota    changes the quotas given, keeps the others; without any, shows them

                Quota options (per tenant; 'none' removes the limit; the server's own maxima still apply):
                  --sandboxes N            sandboxes running at once
                  --memory-mb N            memory of all its running sandboxes together, in MB
                  --cpus X                 CPUs of all its running sandboxes together (may be fractional)
                  --creates-per-minute N   sandbox creates in any 60 seconds
                  --sandbox-memory-mb N    the most memory one sandbox may ask for (more is refused)
                  --sandbox-cpus X         the most CPUs one sandbox may ask for (more is refused)

                Options:
                  --json            print JSON (quota fields as the admin API names them)
                """ + LocalStore.DATA_DIR_HELP;
    }

    @Override
    public Args.Spec spec() {
        return new Args.Spec(name(), Subcommand.with(Set.copyOf(QUOTA_OPTIONS), "data-dir"), Set.of(), Set.of("json"), Map.of(), -1);
    }

    @Override
    public int run(Args args, Io io) throws Exception {
        String action = LocalStore.action(name(), args, spec(), ACTIONS);
        List<String> operands = args.positionals().subList(1, args.positionals().size());
        Path dir = LocalStore.dir(name(), args, io);
        try {
            if (action.equals("list")) {
                if (!operands.isEmpty()) throw new UsageException(name(), "unexpected argument " + LocalStore.shown(operands.getFirst()));
                return list(args, dir, io);
            }
            if (operands.isEmpty()) throw new UsageException(name(), "which tenant? Usage: stockade tenants " + action + " NAME");
            if (operands.size() > 1) throw new UsageException(name(), "unexpected argument " + LocalStore.shown(operands.get(1)));
            String tenant = LocalStore.tenantName(name(), operands.getFirst());
            return switch (action) {
                case "create" -> create(tenant, args, dir, io);
                case "show" -> show(tenant, args, dir, io);
                default -> quota(tenant, args, dir, io);
            };
        } catch (StockadeError e) {
            return LocalStore.refused(name(), e, io);
        }
    }

    private int create(String name, Args args, Path dir, Io io) throws Exception {
        Quota quota = quota(Quota.UNLIMITED, args);
        Tenant t;
        try (LocalStore local = LocalStore.open(dir, args, true)) {
            t = local.admin().createTenant(new TenantAdmin.TenantRequest(name, quota));
        }
        if (args.flag("json")) {
            printJson(json(t), io);
            return 0;
        }
        io.out().println("Created tenant " + t.name() + ".");
        io.out().print(describe(t, 0));
        io.out().println("Give it a key: stockade keys create --tenant " + t.name()
                + (args.value("data-dir") == null ? "" : " --data-dir " + Shell.quote(dir.toString())));
        return 0;
    }

    private int list(Args args, Path dir, Io io) throws Exception {
        List<Tenant> tenants;
        Map<String, Integer> active;
        try (LocalStore local = LocalStore.open(dir, args, false)) {
            tenants = local.admin().tenants();
            active = local.admin().activeKeys();
        }
        if (args.flag("json")) {
            ArrayNode all = LocalStore.JSON.createArrayNode();
            tenants.forEach(t -> all.add(json(t)));
            printJson(all, io);
            return 0;
        }
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"TENANT", "CREATED", "KEYS", "QUOTA"});
        for (Tenant t : tenants) {
            rows.add(new String[] {t.name(), LocalStore.time(t.created()), String.valueOf(active.getOrDefault(t.name(), 0)),
                compact(t.quota())});
        }
        io.out().print(LocalStore.table(rows));
        return 0;
    }

    private int show(String name, Args args, Path dir, Io io) throws Exception {
        Tenant t;
        int keys;
        try (LocalStore local = LocalStore.open(dir, args, false)) {
            t = find(local, name);
            keys = local.admin().activeKeys().getOrDefault(name, 0);
        }
        if (args.flag("json")) printJson(json(t), io);
        else io.out().print("Tenant " + t.name() + "\n" + describe(t, keys));
        return 0;
    }

    private int quota(String name, Args args, Path dir, Io io) throws Exception {
        boolean change = QUOTA_OPTIONS.stream().anyMatch(o -> args.value(o) != null);
        Tenant t;
        int keys;
        try (LocalStore local = LocalStore.open(dir, args, false)) {
            t = find(local, name);
            // Parsed before anything changes; the read and the write are two steps, as in the admin API's PUT.
            if (change) t = local.admin().setQuota(name, quota(t.quota(), args));
            keys = local.admin().activeKeys().getOrDefault(name, 0);
        }
        if (args.flag("json")) {
            printJson(json(t), io);
            return 0;
        }
        io.out().print((change ? "Changed the quota of tenant " + t.name() + ".\n" : "Tenant " + t.name() + "\n") + describe(t, keys));
        return 0;
    }

    private static Tenant find(LocalStore local, String name) {
        try {
            return local.admin().tenant(name);
        } catch (StockadeError e) {
            if (e.code() == StockadeError.Code.NOT_FOUND) throw local.noTenant(name);
            throw e;
        }
    }

    /** {@code base} with the quota options given on the command line replaced ('none': no limit). */
    Quota quota(Quota base, Args args) throws UsageException {
        Long memory = whole(args, "memory-mb", Long.MAX_VALUE);
        Long perSandboxMemory = whole(args, "sandbox-memory-mb", Integer.MAX_VALUE);
        Long sandboxes = whole(args, "sandboxes", Integer.MAX_VALUE);
        Long creates = whole(args, "creates-per-minute", Integer.MAX_VALUE);
        return new Quota(
                given(args, "sandboxes") ? toInt(sandboxes) : base.sandboxes(),
                given(args, "memory-mb") ? memory : base.memoryMB(),
                given(args, "cpus") ? decimal(args, "cpus") : base.cpus(),
                given(args, "creates-per-minute") ? toInt(creates) : base.createsPerMinute(),
                given(args, "sandbox-memory-mb") ? toInt(perSandboxMemory) : base.sandboxMemoryMB(),
                given(args, "sandbox-cpus") ? decimal(args, "sandbox-cpus") : base.sandboxCpus());
    }

    private static boolean given(Args args, String option) {
        return args.value(option) != null;
    }

    private static boolean none(String v) {
        return v.strip().equalsIgnoreCase("none");
    }

    private static Integer toInt(Long n) {
        return n == null ? null : Math.toIntExact(n);
    }

    /** A whole-number option from 1 to max, null for 'none' or when absent. */
    private Long whole(Args args, String option, long max) throws UsageException {
        String v = args.value(option);
        if (v == null || none(v)) return null;
        String s = v.strip();
        if (WHOLE.matcher(s).matches()) {
            long n = Long.parseLong(s);
            if (n >= 1 && n <= max) return n;
        }
        throw new UsageException(name(), "--" + option + " must be a whole number from 1 to " + max + ", or none; got "
                + LocalStore.shown(v));
    }

    /** A positive decimal option (like 0.5 or 4), null for 'none'. */
    private Double decimal(Args args, String option) throws UsageException {
        String v = args.value(option);
        if (none(v)) return null;
        String s = v.strip();
        if (DECIMAL.matcher(s).matches()) {
            double d = Double.parseDouble(s);
            if (d > 0) return d;
        }
        throw new UsageException(name(), "--" + option + " must be a positive number like 0.5 or 4, or none; got " + LocalStore.shown(v));
    }

    /** One line per quota, named as the options are; then the active keys when known. */
    static String describe(Tenant t, int activeKeys) {
        Quota q = t.quota();
        Number[] values = {q.sandboxes(), q.memoryMB(), q.cpus(), q.createsPerMinute(), q.sandboxMemoryMB(), q.sandboxCpus()};
        StringBuilder sb = new StringBuilder();
        sb.append(String.format("  %-20s %s%n", "created", LocalStore.time(t.created())));
        sb.append(String.format("  %-20s %d%n", "active keys", activeKeys));
        for (int i = 0; i < values.length; i++) sb.append(String.format("  %-20s %s%n", QUOTA_OPTIONS.get(i), LocalStore.number(values[i])));
        return sb.toString();
    }

    /** The limits that are set, as option=value words, or "unlimited". */
    static String compact(Quota q) {
        Number[] values = {q.sandboxes(), q.memoryMB(), q.cpus(), q.createsPerMinute(), q.sandboxMemoryMB(), q.sandboxCpus()};
        List<String> set = new ArrayList<>();
        for (int i = 0; i < values.length; i++) if (values[i] != null) set.add(QUOTA_OPTIONS.get(i) + "=" + LocalStore.number(values[i]));
        return set.isEmpty() ? "unlimited" : String.join(" ", set);
    }

    static ObjectNode json(Tenant t) {
        ObjectNode n = LocalStore.JSON.createObjectNode();
        n.put("name", t.name());
        n.put("created", LocalStore.iso(t.created()));
        n.set("quota", t.quota().toJson(LocalStore.JSON));
        return n;
    }

    private static void printJson(JsonNode n, Io io) throws Exception {
        io.out().println(LocalStore.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(n));
    }
}
