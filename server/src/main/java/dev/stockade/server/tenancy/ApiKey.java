package dev.stockade.server.tenancy;

import java.time.Instant;

/**
 * An API key as the store keeps it: never the key itself, only its SHA-256 (keys are 160 random
 * bits, so a fast hash is enough: nothing can be guessed from it).
 *
 * @param id      public identifier (key_ + 12 hex), shown in lists and the audit log
 * @param admin   may use the admin API (tenants, keys, the audit log of every tenant)
 * @param revoked when it was revoked, or null while it is valid
 */
public record ApiKey(String id, String tenant, boolean admin, String label, Instant created, Instant revoked) {
    public boolean valid() {
        return revoked == null;
    }
}
