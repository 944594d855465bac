package dev.stockade.server.tenancy;

/**
 * Who makes a request: a tenant through one of its API keys, or the holder of one sandbox's access
 * token (which reaches that sandbox and nothing else).
 *
 * @param keyId the key's id; null when the request carried a sandbox access token instead
 * @param via how the audit log names the credential: api-key, sandbox-token or signed-url
 */
public record Principal(String tenant, String keyId, boolean admin, String via) {
    public Principal(String tenant, String keyId, boolean admin) {
        this(tenant, keyId, admin, keyId == null ? "sandbox-token" : "api-key");
    }

    public static Principal key(ApiKey k) {
        return new Principal(k.tenant(), k.id(), k.admin());
    }

    public static Principal sandboxToken(String tenant) {
        return new Principal(tenant, null, false);
    }

    /** The bearer of a signed file URL, which one sandbox's token signed for one path and operation. */
    public static Principal signedUrl(String tenant) {
        return new Principal(tenant, null, false, "signed-url");
    }
}
