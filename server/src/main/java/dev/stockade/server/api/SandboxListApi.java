package dev.stockade.server.api;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.server.core.Sandbox;
import dev.stockade.server.core.SandboxManager;
import dev.stockade.server.core.SandboxState;
import dev.stockade.server.error.StockadeError;
import java.io.IOException;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * What a tenant can see exists: its sandboxes ({@code GET /sandboxes}, {@code GET /v2/sandboxes},
 * paged with {@code X-Next-Token}) and the runtimes a create may ask for ({@code GET /runtimes}).
 * Runs on request virtual threads.
 */
final class SandboxListApi {
    private final SandboxManager manager;

    SandboxListApi(SandboxManager manager) {
        this.manager = manager;
    }

    /**
     * A list's query: page size, states (running and paused by default), metadata that must match,
     * and the cursor after which the page starts.
     */
    record ListQuery(int limit, Set<String> states, Map<String, String> metadata, String after) {
        ListQuery {
            for (String s : states) {
                if (!s.equals("running") && !s.equals("paused")) throw StockadeError.invalid("state must be running or paused, got '" + s + "'");
            }
            states = Set.copyOf(states);
            metadata = Map.copyOf(metadata);
        }

        static ListQuery read(Map<String, String> q) {
            int limit = pageLimit(q);
            String state = q.get("state");
            Set<String> states = new LinkedHashSet<>(List.of("running", "paused"));
            if (state != null) {
                states.clear();
                states.addAll(List.of(state.split(",")));
            }
            Map<String, String> metadata = new LinkedHashMap<>();
            if (q.containsKey("metadata")) {
                // E2B sends metadata as an encoded query string of key=value pairs.
                for (String pair : q.get("metadata").split("&")) {
                    if (pair.isEmpty()) continue;
                    int eq = pair.indexOf('=');
                    try {
                        // Form-decode the pair, then percent-decode once more: the SDK encodes each key and
                        // value with encodeURIComponent before form-encoding the pairs (docs/e2b-wire.md §3).
                        metadata.put(BodyFields.formThenPercentDecode(eq < 0 ? pair : pair.substring(0, eq)),
                                eq < 0 ? "" : BodyFields.formThenPercentDecode(pair.substring(eq + 1)));
                    } catch (IllegalArgumentException e) {
                        throw StockadeError.invalid("malformed metadata filter");
                    }
                }
            }
            return new ListQuery(limit, states, metadata, q.get("nextToken"));
        }
    }

    /** A list's page size: the query's {@code limit} (1..1000), 100 by default. */
    static int pageLimit(Map<String, String> q) {
        if (!q.containsKey("limit")) return 100;
        int limit;
        try {
            limit = Integer.parseInt(q.get("limit"));
        } catch (NumberFormatException e) {
            throw StockadeError.invalid("limit must be a whole number");
        }
        if (limit < 1 || limit > 1000) throw StockadeError.invalid("limit must be between 1 and 1000");
        return limit;
    }

    void list(Request r, Route.Params p) throws IOException {
        ListQuery q = ListQuery.read(r.query());
        String tenant = r.principal.tenant();
        List<Sandbox> page = manager.list().stream()
                .filter(sb -> sb.tenant().equals(tenant))
                .filter(sb -> q.states().contains(SandboxState.e2bName(sb.state())))
                .filter(sb -> q.after() == null || cursor(sb).compareTo(q.after()) > 0)
                .filter(sb -> q.metadata().entrySet().stream()
                        .allMatch(e -> e.getValue().equals(sb.metadata().get(e.getKey()))))
                .limit(q.limit() + 1L)
                .toList();
        ArrayNode out = r.json.createArrayNode();
        for (Sandbox sb : page.subList(0, Math.min(q.limit(), page.size()))) out.add(SandboxJson.detail(r.json, sb));
        if (page.size() > q.limit()) r.exchange.getResponseHeaders().set("X-Next-Token", cursor(page.get(q.limit() - 1)));
        r.sendJson(200, out);
    }

    /** Paging cursor: start time then id, so it is stable while sandboxes come and go. */
    private static String cursor(Sandbox sb) {
        return String.format("%019d.%s", sb.startedAt().toEpochMilli(), sb.id());
    }

    /**
     * The runtimes a create may ask for ("runtime", or the -hardened template suffix for runsc) and
     * what each supports: a request for a feature a runtime lacks is a 400 naming it.
     */
    void runtimes(Request r, Route.Params p) throws IOException {
        ArrayNode out = r.json.createArrayNode();
        for (SandboxManager.RuntimeInfo info : manager.runtimeInfo()) {
            ObjectNode n = out.addObject();
            n.put("name", info.name());
            n.put("default", info.isDefault());
            n.put("available", info.available());
            if (info.reason() != null) n.put("reason", info.reason());
            if (info.isolation() != null) n.put("isolation", info.isolation());
            info.capabilities().forEach(n.putArray("capabilities")::add);
            if (info.available()) n.put("poolReady", info.poolReady());
        }
        r.sendJson(200, out);
    }
}
