package dev.stockade.server.api;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.server.core.PoolStatus;
import dev.stockade.server.core.Sandbox;
import dev.stockade.server.core.SandboxManager;
import dev.stockade.server.core.SandboxState;
import dev.stockade.server.error.StockadeError;
import java.io.IOException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

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

    /** E2B's {@code order}: by start time, newest first unless asked otherwise. */
    enum Order { ASC, DESC }

    /**
     * A list's query, as E2B's {@code GET /v2/sandboxes} takes it: page size, states (running and
     * paused by default), metadata that must match, the earliest start time, a template (id or
     * alias), the order by start time, and the cursor after which the page starts. The order and
     * the filters apply to the whole set before paging, so a cursor from one page stays valid
     * while sandboxes come and go.
     */
    record ListQuery(int limit, Set<String> states, Map<String, String> metadata, Instant startedAfter,
                     String template, Order order, String after) {
        ListQuery {
            for (String s : states) {
                if (!s.equals("running") && !s.equals("paused")) throw StockadeError.invalid("state must be running or paused, got '" + s + "'");
            }
            states = Set.copyOf(states);
            metadata = Map.copyOf(metadata);
            if (after != null && !CURSOR.matcher(after).matches()) {
                throw StockadeError.invalid("nextToken is not a token this server handed out (X-Next-Token of an earlier page)");
            }
        }

        static ListQuery read(Map<String, String> q) {
            int limit = pageLimit(q);
            String state = q.get("state");
            Set<String> states = new LinkedHashSet<>(List.of("running", "paused"));
            if (state != null) {
                states.clear();
                for (String s : state.split(",")) if (!s.isBlank()) states.add(s.strip());
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
            Instant startedAfter = null;
            if (q.containsKey("startedAfter")) {
                try {
                    startedAfter = OffsetDateTime.parse(q.get("startedAfter")).toInstant();
                } catch (DateTimeParseException e) {
                    throw StockadeError.invalid("startedAfter must be an RFC 3339 date-time such as 2026-01-02T03:04:05.678Z, got '"
                            + q.get("startedAfter") + "'");
                }
            }
            String template = q.get("template");
            if (template != null && template.isEmpty()) template = null;
            Order order = switch (q.getOrDefault("order", "desc")) {
                case "asc" -> Order.ASC;
                case "desc" -> Order.DESC;
                default -> throw StockadeError.invalid("order must be asc or desc, got '" + q.get("order") + "'");
            };
            String after = q.get("nextToken");
            return new ListQuery(limit, states, metadata, startedAfter, template, order,
                    after == null || after.isEmpty() ? null : after);
        }

        /** Whether {@code sb} passes every filter (not the cursor). */
        boolean matches(Sandbox sb) {
            return states.contains(SandboxState.e2bName(sb.state()))
                    && (startedAfter == null || !sb.startedAt().isBefore(startedAfter))
                    && (template == null || template.equals(sb.templateId()) || template.equals(sb.alias()))
                    && metadata.entrySet().stream().allMatch(e -> e.getValue().equals(sb.metadata().get(e.getKey())));
        }

        /** Whether {@code sb} comes after the cursor in this query's order. */
        boolean afterCursor(Sandbox sb) {
            if (after == null) return true;
            int c = cursor(sb).compareTo(after);
            return order == Order.ASC ? c > 0 : c < 0;
        }
    }

    /** A cursor: start time (ms, zero-padded so that strings sort as times) then id. */
    private static final Pattern CURSOR = Pattern.compile("\\d{19}\\.[a-z0-9]{1,64}");

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
        // The table's order is oldest first; newest first is the same list reversed.
        List<Sandbox> all = manager.list();
        if (q.order() == Order.DESC) all = all.reversed();
        List<Sandbox> page = all.stream()
                .filter(sb -> sb.tenant().equals(tenant))
                .filter(q::matches)
                .filter(q::afterCursor)
                .limit(q.limit() + 1L)
                .toList();
        ArrayNode out = r.json.createArrayNode();
        for (Sandbox sb : page.subList(0, Math.min(q.limit(), page.size()))) out.add(SandboxJson.detail(r.json, sb));
        if (page.size() > q.limit()) r.setResponseHeader("X-Next-Token", cursor(page.get(q.limit() - 1)));
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
    private static void pool(ObjectNode n, PoolStatus s) {
        n.put("ready", s.ready());
        n.put("starting", s.starting());
        n.put("startingPeak", s.startingPeak());
        n.put("target", s.target());
        n.put("floor", s.floor());
        n.put("ceiling", s.ceiling());
        n.put("arrivalRate", Math.round(s.arrivalRate() * 1000) / 1000.0);
        n.put("hits", s.hits());
        n.put("misses", s.misses());
        if (!Double.isNaN(s.hitRate())) n.put("hitRate", Math.round(s.hitRate() * 1000) / 1000.0);
        n.put("shrunk", s.shrunk());
        n.put("refills", s.refills());
        if (s.refills() > 0) n.put("refillMsMean", Math.round(s.refillSecondsSum() * 1000 / s.refills()));
    }

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
            if (info.pool() != null) pool(n.putObject("pool"), info.pool());
            if (!info.pools().isEmpty()) {
                ObjectNode byTemplate = n.putObject("pools");
                info.pools().forEach((name, s) -> pool(byTemplate.putObject(name), s));
            }
            if (info.starts() != null) {
                var s = info.starts();
                n.putObject("starts").put("concurrent", s.limit()).put("running", s.running()).put("waiting", s.waiting())
                        .put("waited", s.waited()).put("peak", s.peak());
            }
        }
        r.sendJson(200, out);
    }
}
