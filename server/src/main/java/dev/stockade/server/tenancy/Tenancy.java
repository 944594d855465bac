package dev.stockade.server.tenancy;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.store.Store;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * Tenants and their API keys, kept in the {@link Store}. Keys are random ({@code e2b_} + 40 hex,
 * the shape E2B's SDKs accept), shown once when made, and stored only as their SHA-256.
 * {@link #authenticate} reads the store on every call, so a key revoked by anyone — this server,
 * another, or the CLI on the same data directory — stops working at the next request.
 *
 * <p>Public here: who is calling ({@link #authenticate}), what a tenant may hold ({@link #tenant}),
 * the first start ({@link #bootstrap}). Changes to tenants and keys are package-private: they go
 * through {@link TenantAdmin}, which checks them, so the admin API and the CLI follow one set of rules.
 * Called on request virtual threads and on the CLI's command thread; the store serialises writers.
 */
public final class Tenancy {
    /** The tenant that owns the first admin key and what the single-key set-up of earlier versions made. */
    public static final String DEFAULT_TENANT = "default";

    private final Store store;
    private final ObjectMapper json;
    private final SecureRandom random = new SecureRandom();

    public Tenancy(Store store, ObjectMapper json) {
        this.store = store;
        this.json = json;
    }

    /** A key just made: the record and, this once, the key itself. */
    public record NewKey(ApiKey key, String secret) {
        @Override
        public String toString() {
            return "NewKey[key=" + key + ", secret=<shown once>]";
        }
    }

    // ---- tenants ----

    /** Adds a tenant (CONFLICT when the name is taken), as a checked request describes it. */
    Tenant createTenant(TenantAdmin.TenantRequest request) {
        String name = request.name();
        Quota quota = request.quota();
        long now = System.currentTimeMillis();
        String q = quotaJson(quota);
        return store.transaction(c -> {
            if (find(c, name) != null) {
                throw new StockadeError(StockadeError.Code.CONFLICT, "tenant " + name + " already exists");
            }
            try (PreparedStatement s = c.prepareStatement("INSERT INTO tenants(name, created_ms, quota) VALUES (?, ?, ?)")) {
                s.setString(1, name);
                s.setLong(2, now);
                s.setString(3, q);
                s.executeUpdate();
            }
            return new Tenant(name, Instant.ofEpochMilli(now), quota);
        });
    }

    /** The tenant, or NOT_FOUND. */
    public Tenant tenant(String name) {
        Tenant t = store.read(c -> find(c, name));
        if (t == null) throw StockadeError.notFound("tenant " + name + " does not exist");
        return t;
    }

    List<Tenant> tenants() {
        return store.read(c -> {
            List<Tenant> out = new ArrayList<>();
            try (PreparedStatement s = c.prepareStatement("SELECT name, created_ms, quota FROM tenants ORDER BY name");
                 ResultSet rs = s.executeQuery()) {
                while (rs.next()) out.add(tenant(rs));
            }
            return out;
        });
    }

    Tenant setQuota(String name, Quota quota) {
        String q = quotaJson(quota);
        return store.transaction(c -> {
            Tenant t = find(c, name);
            if (t == null) throw StockadeError.notFound("tenant " + name + " does not exist");
            try (PreparedStatement s = c.prepareStatement("UPDATE tenants SET quota=? WHERE name=?")) {
                s.setString(1, q);
                s.setString(2, name);
                s.executeUpdate();
            }
            return new Tenant(name, t.created(), quota);
        });
    }

    private Tenant find(java.sql.Connection c, String name) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("SELECT name, created_ms, quota FROM tenants WHERE name=?")) {
            s.setString(1, name);
            try (ResultSet rs = s.executeQuery()) {
                return rs.next() ? tenant(rs) : null;
            }
        }
    }

    private Tenant tenant(ResultSet rs) throws SQLException {
        Quota q;
        try {
            q = Quota.UNLIMITED.merge(json.readTree(rs.getString(3)));
        } catch (JsonProcessingException | StockadeError e) {
            throw new SQLException("tenant " + rs.getString(1) + " has an unreadable quota: " + e.getMessage(), e);
        }
        return new Tenant(rs.getString(1), Instant.ofEpochMilli(rs.getLong(2)), q);
    }

    private String quotaJson(Quota quota) {
        return quota.toJson(json).toString();
    }

    // ---- keys ----

    /** Makes a key for an existing tenant; the secret is in the answer and nowhere else. */
    NewKey createKey(TenantAdmin.KeyRequest request) {
        String secret = newSecret();
        return new NewKey(insertKey(request.tenant(), request.admin(), request.label(), secret), secret);
    }

    private ApiKey insertKey(String tenant, boolean admin, String label, String secret) {
        long now = System.currentTimeMillis();
        byte[] idBytes = new byte[6];
        random.nextBytes(idBytes);
        String id = "key_" + HexFormat.of().formatHex(idBytes);
        return store.transaction(c -> {
            if (find(c, tenant) == null) throw StockadeError.notFound("tenant " + tenant + " does not exist");
            try (PreparedStatement s = c.prepareStatement(
                    "INSERT INTO api_keys(id, tenant, hash, admin, label, created_ms) VALUES (?, ?, ?, ?, ?, ?)")) {
                s.setString(1, id);
                s.setString(2, tenant);
                s.setString(3, hash(secret));
                s.setInt(4, admin ? 1 : 0);
                s.setString(5, label);
                s.setLong(6, now);
                s.executeUpdate();
            }
            return new ApiKey(id, tenant, admin, label, Instant.ofEpochMilli(now), null);
        });
    }

    /** Keys (never their secrets), of one tenant or of all when tenant is null; newest last. */
    List<ApiKey> keys(String tenant) {
        return store.read(c -> {
            List<ApiKey> out = new ArrayList<>();
            String sql = "SELECT id, tenant, admin, label, created_ms, revoked_ms FROM api_keys"
                    + (tenant == null ? "" : " WHERE tenant=?") + " ORDER BY created_ms, id";
            try (PreparedStatement s = c.prepareStatement(sql)) {
                if (tenant != null) s.setString(1, tenant);
                try (ResultSet rs = s.executeQuery()) {
                    while (rs.next()) out.add(key(rs));
                }
            }
            return out;
        });
    }

    /** Revokes a key at once (idempotent: revoking a revoked key keeps its first revocation time). */
    ApiKey revoke(String id) {
        long now = System.currentTimeMillis();
        return store.transaction(c -> {
            try (PreparedStatement s = c.prepareStatement(
                    "UPDATE api_keys SET revoked_ms=? WHERE id=? AND revoked_ms IS NULL")) {
                s.setLong(1, now);
                s.setString(2, id);
                s.executeUpdate();
            }
            try (PreparedStatement s = c.prepareStatement(
                    "SELECT id, tenant, admin, label, created_ms, revoked_ms FROM api_keys WHERE id=?")) {
                s.setString(1, id);
                try (ResultSet rs = s.executeQuery()) {
                    if (!rs.next()) throw StockadeError.notFound("key " + id + " does not exist");
                    return key(rs);
                }
            }
        });
    }

    /** The valid key this secret is, or null (unknown, malformed or revoked: the caller cannot tell which). */
    public ApiKey authenticate(String secret) {
        if (secret == null) return null;
        String s = secret.trim();
        if (s.isEmpty() || s.length() > 256) return null;
        String h = hash(s);
        ApiKey k = store.read(c -> {
            try (PreparedStatement st = c.prepareStatement(
                    "SELECT id, tenant, admin, label, created_ms, revoked_ms FROM api_keys WHERE hash=?")) {
                st.setString(1, h);
                try (ResultSet rs = st.executeQuery()) {
                    return rs.next() ? key(rs) : null;
                }
            }
        });
        return k != null && k.valid() ? k : null;
    }

    private static ApiKey key(ResultSet rs) throws SQLException {
        long revoked = rs.getLong(6);
        boolean wasNull = rs.wasNull();
        return new ApiKey(rs.getString(1), rs.getString(2), rs.getInt(3) != 0, rs.getString(4),
                Instant.ofEpochMilli(rs.getLong(5)), wasNull ? null : Instant.ofEpochMilli(revoked));
    }

    // ---- the first start ----

    /**
     * Makes sure an admin can get in, and returns the admin key this start advertises. The default
     * tenant always exists. A key the operator configured (STOCKADE_API_KEY) becomes an admin key of
     * it unless the store already knows it (a revoked one stays revoked: requests with it fail). Without
     * one, the key in {@code keyFile} is used — taken over as an admin key if the store does not know
     * it (earlier versions' single key) — and when the file is missing or its key was revoked, a new
     * admin key is made and written there (0600), where the operator reads it.
     */
    public String bootstrap(String configuredKey, Path keyFile) {
        store.transaction(c -> {
            if (find(c, DEFAULT_TENANT) == null) {
                try (PreparedStatement s = c.prepareStatement("INSERT INTO tenants(name, created_ms, quota) VALUES (?, ?, ?)")) {
                    s.setString(1, DEFAULT_TENANT);
                    s.setLong(2, System.currentTimeMillis());
                    s.setString(3, quotaJson(Quota.UNLIMITED));
                    s.executeUpdate();
                }
            }
            return null;
        });
        if (configuredKey != null) {
            String k = configuredKey.trim();
            if (k.isEmpty() || k.length() > 256) throw StockadeError.invalid("the configured API key must be 1 to 256 characters");
            if (!known(k)) insertKey(DEFAULT_TENANT, true, "configured (STOCKADE_API_KEY)", k);
            return k;
        }
        try {
            if (Files.isRegularFile(keyFile)) {
                String k = Files.readString(keyFile, StandardCharsets.UTF_8).trim();
                if (!k.isEmpty() && k.length() <= 256) {
                    if (!known(k)) insertKey(DEFAULT_TENANT, true, "admin key (" + keyFile.getFileName() + ")", k);
                    if (authenticate(k) != null) return k;
                }
            }
            String k = newSecret();
            insertKey(DEFAULT_TENANT, true, "admin key (" + keyFile.getFileName() + ")", k);
            Path tmp = Files.createTempFile(keyFile.getParent(), keyFile.getFileName().toString(), ".tmp",
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            Files.writeString(tmp, k + "\n", StandardCharsets.UTF_8);
            Files.move(tmp, keyFile, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            return k;
        } catch (IOException e) {
            throw new UncheckedIOException("writing the admin key to " + keyFile + " failed: " + e.getMessage(), e);
        }
    }

    private boolean known(String secret) {
        String h = hash(secret);
        return store.read(c -> {
            try (PreparedStatement s = c.prepareStatement("SELECT 1 FROM api_keys WHERE hash=?")) {
                s.setString(1, h);
                try (ResultSet rs = s.executeQuery()) {
                    return rs.next();
                }
            }
        });
    }

    private String newSecret() {
        byte[] b = new byte[20];
        random.nextBytes(b);
        return "e2b_" + HexFormat.of().formatHex(b);
    }

    static String hash(String secret) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(secret.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JDK", e);
        }
    }
}
