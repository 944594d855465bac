package dev.stockade.sdk;

import java.time.Instant;
import java.util.Map;
import java.util.Objects;

/**
 * A sandbox as the server describes it ({@link Sandbox#info()}, {@link StockadeClient#list()}).
 * Fields the server did not report are null (objects) or 0 (numbers).
 *
 * @param sandboxId the sandbox's id
 * @param templateId the template it was created from
 * @param alias the template's alias, or null
 * @param metadata the metadata it was created with
 * @param startedAt when it started
 * @param endAt when its lifetime ends unless extended with {@link Sandbox#setTimeout}
 * @param state {@code running} or {@code paused}
 * @param cpuCount CPUs it may use
 * @param memoryMB memory it may use, in MiB
 * @param envdVersion the version of the in-sandbox API it speaks
 * @param runtime the runtime it runs under (Stockade extension), or null
 * @param limits its effective limits (Stockade extension), or null
 */
public record SandboxInfo(
        String sandboxId,
        String templateId,
        String alias,
        Map<String, String> metadata,
        Instant startedAt,
        Instant endAt,
        String state,
        int cpuCount,
        int memoryMB,
        String envdVersion,
        String runtime,
        Limits limits) {
    public SandboxInfo {
        Objects.requireNonNull(sandboxId, "sandboxId");
        metadata = metadata == null ? Map.of() : Map.copyOf(metadata);
    }
}
