package dev.stockade.server.tenancy;

import java.time.Instant;

/** A tenant: a name that owns sandboxes and keys, and its quota. */
public record Tenant(String name, Instant created, Quota quota) {}
