package dev.stockade.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.tenancy.ApiKey;
import dev.stockade.server.tenancy.Tenancy;
import dev.stockade.server.tenancy.TenantAdmin;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code stockade keys create|list|revoke}: API keys, changed in a data directory's store through the
 * server's admin service ({@link TenantAdmin}, see {@link LocalStore}), so an operator can make the first key of a tenant, or cut one off,
 * without a server or an admin key. {@code create} prints the key on its last line, for scripts:
 * {@code key=$(stockade keys create --tenant t1 | tail -1)}.
 */
final class KeysCommand implements Subcommand {
    private static final Map<String, Set<String>> ACTIONS = new LinkedHashMap<>();

    static {
        ACTIONS.put("create", Set.of("tenant", "admin", "label", "data-dir"));
        ACTIONS.put("list", Set.of("tenant", "json", "data-dir"));
        ACTIONS.put("revoke", Set.of("data-dir"));
    }

    @Override
    public String name() {
        return "keys";
    }

    @Override
    public String summary() {
        return "create, list and revoke API keys";
    }

    @Override
    public String usage() {
        return """
                Usage: stockade keys create --tenant NAME [--admin] [--label TEXT] [--data-dir DIR]
                       stockade keys list [--tenant NAME] [--json] [--data-dir DIR]
                       stockade keys revoke KEY_ID... [--data-dir DIR]

                Manages API keys in a data directory's store directly, whether or not a server runs on
                it: the server reads keys from the store on every request, so a new key works and a
                revoked one stops working at once.

                  create   makes a key for a tenant (making the tenant, without a quota, if it is new,
                           and the store if the directory has none). The key is shown this once, on the last
                           line of the output (only its SHA-256 is stored):
                             key=$(stockade keys create --tenant NAME | tail -1)
                  list     the keys: id, tenant, admin, label, created, revoked; never the keys themselves
                  revoke   revokes keys, at once; revoking a revoked key again is not an error

                Options:
                  --tenant NAME     the tenant the key belongs to (create); only that tenant's keys (list)
                  --admin           the key may use the admin API (tenants, keys, the audit log)
                  --label TEXT      a note for people, at most 200 characters, shown by list
                  --json            list as a JSON array
                """ + LocalStore.DATA_DIR_HELP;
    }

    @Override
    public Args.Spec spec() {
        return new Args.Spec(name(), Set.of("tenant", "label", "data-dir"), Set.of(), Set.of("admin", "json"), Map.of(), -1);
    }

    @Override
    public int run(Args args, Io io) throws Exception {
        String action = LocalStore.action(name(), args, spec(), ACTIONS);
        List<String> operands = args.positionals().subList(1, args.positionals().size());
        Path dir = LocalStore.dir(name(), args, io);
        try {
            return switch (action) {
                case "create" -> create(args, operands, dir, io);
                case "list" -> list(args, operands, dir, io);
                default -> revoke(args, operands, dir, io);
            };
        } catch (StockadeError e) {
            return LocalStore.refused(name(), e, io);
        }
    }

    private int create(Args args, List<String> operands, Path dir, Io io) throws Exception {
        if (!operands.isEmpty()) throw new UsageException(name(), "unexpected argument " + LocalStore.shown(operands.getFirst()));
        if (args.value("tenant") == null) throw new UsageException(name(), "which tenant? Usage: stockade keys create --tenant NAME");
        String tenant = LocalStore.tenantName(name(), args.value("tenant"));
        // Checked before the store is touched: a refused label makes no tenant.
        TenantAdmin.KeyRequest request = new TenantAdmin.KeyRequest(tenant, args.flag("admin"), args.value("label"));
        Tenancy.NewKey made;
        // A tenant named for the first time is made here, without a quota (the output says so), so
        // that one command gives a new team its key.
        try (LocalStore local = LocalStore.open(dir, args, true)) {
            boolean exists = local.admin().tenants().stream().anyMatch(t -> t.name().equals(tenant));
            if (!exists) {
                local.admin().createTenant(new TenantAdmin.TenantRequest(tenant, null));
                io.out().println("Created tenant " + tenant + " without a quota (set one: stockade tenants quota "
                        + tenant + " --sandboxes N ...).");
            }
            made = local.admin().createKey(request);
        }
        ApiKey k = made.key();
        io.out().println("Created " + (k.admin() ? "admin " : "") + "key " + k.id() + " for tenant " + k.tenant()
                + (k.label().isEmpty() ? "" : " (" + k.label() + ")") + ".");
        io.out().println("This is the only time the key is shown (only its hash is stored); keep it now:");
        io.out().println(made.secret());
        io.out().flush();
        return 0;
    }

    private int list(Args args, List<String> operands, Path dir, Io io) throws Exception {
        if (!operands.isEmpty()) throw new UsageException(name(), "unexpected argument " + LocalStore.shown(operands.getFirst()));
        String tenant = args.value("tenant") == null ? null : LocalStore.tenantName(name(), args.value("tenant"));
        List<ApiKey> keys;
        try (LocalStore local = LocalStore.open(dir, args, false)) {
            if (tenant != null) {
                try {
                    local.admin().tenant(tenant);
                } catch (StockadeError e) {
                    if (e.code() == StockadeError.Code.NOT_FOUND) throw local.noTenant(tenant);
                    throw e;
                }
            }
            keys = local.admin().keys(tenant);
        }
        if (args.flag("json")) {
            ArrayNode all = LocalStore.JSON.createArrayNode();
            keys.forEach(k -> all.add(json(k)));
            io.out().println(LocalStore.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(all));
        } else {
            io.out().print(table(keys));
        }
        return 0;
    }

    private int revoke(Args args, List<String> operands, Path dir, Io io) throws Exception {
        if (operands.isEmpty()) throw new UsageException(name(), "which key? Usage: stockade keys revoke KEY_ID...");
        if (operands.size() > 1000) throw new UsageException(name(), "at most 1000 keys at a time, got " + operands.size());
        for (String id : operands) {
            if (!TenantAdmin.KEY_ID.matcher(id).matches()) {
                throw new UsageException(name(), LocalStore.shown(id) + " is not a key id (key_ and 12 hex digits; see stockade keys list)");
            }
        }
        int code = 0;
        try (LocalStore local = LocalStore.open(dir, args, false)) {
            Map<String, ApiKey> known = new LinkedHashMap<>();
            local.admin().keys(null).forEach(k -> known.put(k.id(), k));
            for (String id : operands) {
                ApiKey before = known.get(id);
                ApiKey after;
                try {
                    after = local.admin().revoke(id);
                } catch (StockadeError e) {
                    if (e.code() != StockadeError.Code.NOT_FOUND) throw e;
                    io.err().println("stockade keys: no key " + id);
                    code = 1;
                    continue;
                }
                known.put(id, after);
                io.out().println(id + (before != null && before.revoked() != null ? " was already revoked" : " revoked")
                        + " (tenant " + after.tenant() + ", at " + LocalStore.time(after.revoked()) + ")");
            }
        }
        return code;
    }

    static ObjectNode json(ApiKey k) {
        ObjectNode n = LocalStore.JSON.createObjectNode();
        n.put("id", k.id());
        n.put("tenant", k.tenant());
        n.put("admin", k.admin());
        n.put("label", k.label());
        n.put("created", LocalStore.iso(k.created()));
        if (k.revoked() == null) n.putNull("revoked"); else n.put("revoked", LocalStore.iso(k.revoked()));
        return n;
    }

    static String table(List<ApiKey> keys) {
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"KEY ID", "TENANT", "ADMIN", "CREATED", "REVOKED", "LABEL"});
        for (ApiKey k : keys) {
            rows.add(new String[] {k.id(), k.tenant(), k.admin() ? "yes" : "no", LocalStore.time(k.created()),
                LocalStore.time(k.revoked()), k.label().isEmpty() ? "-" : k.label()});
        }
        return LocalStore.table(rows);
    }
}
