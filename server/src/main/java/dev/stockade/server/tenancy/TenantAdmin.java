package dev.stockade.server.tenancy;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.store.Store;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The one admin path for tenants and API keys: what may be changed, checked in one place. The admin
 * API ({@code /admin/...}) calls it on request virtual threads; {@code stockade tenants} and
 * {@code stockade keys} call it on the CLI's thread, with the data directory's store opened in the
 * CLI's process ({@link #on(Store)}). A rule added here holds for both; {@link Tenancy}'s writes are
 * package-private so that nothing else can change tenants or keys around it.
 *
 * <p>Requests are records that check themselves when made, so a refused change has touched nothing.
 * Refusals are {@link StockadeError}s: INVALID_ARGUMENT for bad input, NOT_FOUND, CONFLICT.
 */
public final class TenantAdmin {
    /** A tenant's name: also a path segment of the admin API and a word on the CLI's command line. */
    public static final Pattern TENANT_NAME = Pattern.compile("[a-z0-9][a-z0-9_-]{0,62}");
    /** A key's public id, as {@link Tenancy} makes them. */
    public static final Pattern KEY_ID = Pattern.compile("key_[0-9a-f]{12}");
    static final int MAX_LABEL = 200;

    private final Tenancy tenancy;

    public TenantAdmin(Tenancy tenancy) {
        this.tenancy = tenancy;
    }

    /** The admin service of a store opened in this process (the CLI's case). */
    public static TenantAdmin on(Store store) {
        return new TenantAdmin(new Tenancy(store, new ObjectMapper()));
    }

    /** A tenant to make: a valid name, and its quota (unlimited when none is given). */
    public record TenantRequest(String name, Quota quota) {
        public TenantRequest {
            if (name == null || !TENANT_NAME.matcher(name).matches()) {
                throw StockadeError.invalid("a tenant name is 1 to 63 characters of a-z, 0-9, _ and -, starting with a"
                        + " letter or digit; got " + (name == null ? "none" : "'" + name + "'"));
            }
            if (quota == null) quota = Quota.UNLIMITED;
        }
    }

    /**
     * A key to make. The tenant must exist when the key is made (NOT_FOUND otherwise), so its name is
     * only required here; the label is a note for people, shown in lists.
     */
    public record KeyRequest(String tenant, boolean admin, String label) {
        public KeyRequest {
            if (tenant == null) throw StockadeError.invalid("tenant is required");
            if (label == null) label = "";
            if (label.length() > MAX_LABEL || label.chars().anyMatch(ch -> ch < 0x20 || ch == 0x7f)) {
                throw StockadeError.invalid("a key's label is at most " + MAX_LABEL + " characters without control characters");
            }
        }
    }

    // ---- tenants ----

    public Tenant createTenant(TenantRequest request) {
        return tenancy.createTenant(request);
    }

    /** Every tenant, by name. */
    public List<Tenant> tenants() {
        return tenancy.tenants();
    }

    /** The tenant, or NOT_FOUND. */
    public Tenant tenant(String name) {
        return tenancy.tenant(name);
    }

    /** Replaces a tenant's quota (a {@link Quota} checks its own fields); NOT_FOUND for an unknown tenant. */
    public Tenant setQuota(String name, Quota quota) {
        if (quota == null) throw StockadeError.invalid("quota is required");
        return tenancy.setQuota(name, quota);
    }

    // ---- keys ----

    /** Makes a key; its secret is in the answer and nowhere else. */
    public Tenancy.NewKey createKey(KeyRequest request) {
        return tenancy.createKey(request);
    }

    /** Keys (never their secrets), of one tenant or of all when tenant is null; oldest first. */
    public List<ApiKey> keys(String tenant) {
        return tenancy.keys(tenant);
    }

    /** How many valid (not revoked) keys each tenant has; tenants without one are absent. */
    public Map<String, Integer> activeKeys() {
        Map<String, Integer> out = new HashMap<>();
        for (ApiKey k : tenancy.keys(null)) if (k.valid()) out.merge(k.tenant(), 1, Integer::sum);
        return out;
    }

    /** Revokes a key at once; revoking a revoked key keeps its first revocation time. NOT_FOUND when unknown. */
    public ApiKey revoke(String id) {
        if (id == null || !KEY_ID.matcher(id).matches()) throw StockadeError.notFound("key " + id + " does not exist");
        return tenancy.revoke(id);
    }
}
