package dev.stockade.server.api;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.server.core.Sandbox;
import dev.stockade.server.core.SandboxState;
import dev.stockade.server.core.Snapshots;
import dev.stockade.server.egress.NetworkPolicy;
import java.time.format.DateTimeFormatter;

/**
 * How the control plane shows sandboxes and snapshots: E2B's field names (the SDKs read them) plus
 * Stockade's extensions. Shared by the endpoint groups that answer with them.
 */
final class SandboxJson {
    /** The envd version Stockade reports: the SDKs switch code paths on it (docs/e2b-wire.md). */
    static final String ENVD_VERSION = "0.6.4";

    private SandboxJson() {}

    /** A create's or connect's answer: what a client needs to reach the sandbox. */
    static ObjectNode summary(ObjectMapper json, Sandbox sb) {
        ObjectNode n = identity(json, sb);
        n.put("envdVersion", ENVD_VERSION);
        n.put("envdAccessToken", sb.accessToken());
        // The code interpreter SDK sends this on every port-49999 call (its /contexts calls carry no
        // X-Access-Token). Stockade has one token per sandbox, so both names carry the same value.
        n.put("trafficAccessToken", sb.accessToken());
        n.putNull("domain");
        n.put("runtime", sb.runtime());
        network(n, sb);
        return n;
    }

    /**
     * The effective network policy, as E2B's {@code allowInternetAccess} (true only for open mode) and
     * Stockade's {@code network} object, which also says when the create asked for more.
     */
    private static void network(ObjectNode n, Sandbox sb) {
        NetworkPolicy policy = sb.egress() == null ? NetworkPolicy.none() : sb.egress().policy();
        n.put("allowInternetAccess", policy.mode() == NetworkPolicy.Mode.OPEN);
        NetworkBody.describe(n.putObject("network"), policy);
    }

    /** A get's or list's entry: state, deadline, limits, network, metadata (never tokens or secrets' values). */
    static ObjectNode detail(ObjectMapper json, Sandbox sb) {
        ObjectNode n = identity(json, sb);
        n.put("startedAt", DateTimeFormatter.ISO_INSTANT.format(sb.startedAt()));
        n.put("endAt", DateTimeFormatter.ISO_INSTANT.format(sb.endAt()));
        n.put("state", SandboxState.e2bName(sb.state()));
        if (sb.state() instanceof SandboxState.Paused p) {
            n.put("pausedAt", DateTimeFormatter.ISO_INSTANT.format(p.at()));
            n.put("timeoutLeftSeconds", p.remaining().toSeconds());
        }
        n.put("autoPause", sb.autoPause());
        n.put("idleTimeout", sb.idleTimeoutSeconds());
        if (sb.seededFrom() != null) restoredFrom(n.putObject("restoredFrom"), sb.seededFrom());
        n.put("cpuCount", Math.max(1, (int) Math.ceil(sb.limits().cpus())));
        n.put("memoryMB", sb.limits().memoryMB());
        n.put("diskSizeMB", sb.limits().diskMB());
        n.put("envdVersion", ENVD_VERSION);
        network(n, sb);
        if (!sb.secretNames().isEmpty()) sb.secretNames().forEach(n.putArray("secrets")::add);
        ObjectNode md = n.putObject("metadata");
        sb.metadata().forEach(md::put);
        n.put("runtime", sb.runtime());
        ObjectNode l = n.putObject("limits");
        l.put("memoryMB", sb.limits().memoryMB());
        l.put("cpus", sb.limits().cpus());
        l.put("pids", sb.limits().pids());
        l.put("diskMB", sb.limits().diskMB());
        l.put("outputMB", sb.limits().outputMB());
        l.put("commandTimeoutSeconds", sb.limits().commandTimeoutSeconds());
        return n;
    }

    /** The fields every view of a sandbox starts with, in E2B's order. */
    private static ObjectNode identity(ObjectMapper json, Sandbox sb) {
        ObjectNode n = json.createObjectNode();
        n.put("sandboxID", sb.id());
        n.put("templateID", sb.templateId());
        n.put("alias", sb.alias());
        n.put("clientID", "stockade");
        return n;
    }

    /** A sandbox started from a snapshot says so, and what it got: files, not processes or memory. */
    static void restoredFrom(ObjectNode n, String snapshotId) {
        n.put("snapshotID", snapshotId);
        n.put("filesystem", true);
        n.put("memory", false);
        n.put("processes", false);
    }

    /** What a pause keeps: everything, because the sandbox is frozen in place, not saved and rebuilt. */
    static void preserved(ObjectNode n) {
        n.put("filesystem", true);
        n.put("memory", true);
        n.put("processes", true);
        n.put("how", "frozen in place (cgroup freezer): processes, memory, open files and interpreter contexts stay"
                + " as they were; no CPU while paused");
    }

    /** A snapshot as E2B's SDK reads it (snapshotID, names) plus what it holds: the filesystem only. */
    static ObjectNode snapshot(ObjectMapper json, Snapshots.Snapshot s) {
        ObjectNode n = json.createObjectNode();
        n.put("snapshotID", s.id());
        ArrayNode names = n.putArray("names");
        if (s.name() != null) names.add(s.name());
        n.put("sandboxID", s.source());
        n.put("createdAt", DateTimeFormatter.ISO_INSTANT.format(s.created()));
        n.put("bytes", s.bytes());
        ObjectNode kept = n.putObject("preserved");
        kept.put("filesystem", true);
        kept.put("memory", false);
        kept.put("processes", false);
        kept.put("how", "the sandbox's files (changes on top of its template, deletions included), copied while it was"
                + " frozen; processes, memory and interpreter state are not in a snapshot");
        return n;
    }
}
