package dev.stockade.server.tenancy;

/**
 * Who makes a request: a tenant through one of its API keys, or the holder of one sandbox's access
 * token (which reaches that sandbox and nothing else).
 *
 * @param keyId the key's id; null when the request carried a sandbox access token instead
 */
public record Principal(String tenant, String keyId, boolean admin) {
    public static Principal key(ApiKey k) {
        return new Principal(k.tenant(), k.id(), k.admin());
    }

    public static Principal sandboxToken(String tenant) {
        return new Principal(tenant, null, false);
    }

    /** How the audit log names the credential. */
    public String via() {
        return keyId == null ? "sandbox-token" : "api-key";
    }
}
