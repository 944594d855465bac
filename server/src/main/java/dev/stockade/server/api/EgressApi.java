package dev.stockade.server.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.server.core.Sandbox;
import dev.stockade.server.core.SandboxManager;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.egress.Decision;
import dev.stockade.server.egress.SandboxEgress;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.format.DateTimeFormatter;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A sandbox's network on the control plane: E2B's {@code PUT /sandboxes/{id}/network} (replace the
 * policy, live), Stockade's {@code GET} of the same path, {@code GET /sandboxes/{id}/network/log} (the
 * decision log), and the server-wide {@code GET /metrics}. Parses and answers; the manager and the
 * egress proxy decide.
 */
final class EgressApi {
    private static final int MAX_BODY = 1024 * 1024;
    private static final Pattern ROUTE = Pattern.compile("/sandboxes/([^/]+)/network(/log)?");

    private final SandboxManager manager;

    EgressApi(SandboxManager manager) {
        this.manager = manager;
    }

    /** Returns false when no route matches. */
    boolean handle(Request r) throws IOException {
        String method = r.method();
        if (r.path().equals("/metrics")) {
            if (!method.equals("GET")) throw invalidMethod(r);
            if (!r.principal.admin()) {
                throw new StockadeError(StockadeError.Code.FORBIDDEN, "/metrics covers every tenant: it needs an admin key");
            }
            metrics(r);
            return true;
        }
        Matcher m = ROUTE.matcher(r.path());
        if (!m.matches()) return false;
        String id = m.group(1);
        if (m.group(2) != null) {
            if (!method.equals("GET")) throw invalidMethod(r);
            log(r, manager.live(id));
            return true;
        }
        switch (method) {
            case "PUT" -> {
                JsonNode body = r.jsonBody(MAX_BODY);
                if (!body.isObject()) throw StockadeError.invalid("the body must be a JSON object");
                ObjectNode network = ((ObjectNode) body).deepCopy();
                JsonNode internet = network.remove("allow_internet_access");
                manager.setNetwork(id, NetworkBody.parse(network, internet).policy());
                r.send(204, new byte[0]);
            }
            case "GET" -> {
                SandboxEgress e = egress(manager.live(id));
                ObjectNode n = NetworkBody.describe(r.json.createObjectNode(), e.policy());
                n.put("allowed", e.allowed());
                n.put("refused", e.refused());
                n.put("openConnections", e.openConnections());
                r.sendJson(200, n);
            }
            default -> throw invalidMethod(r);
        }
        return true;
    }

    private void log(Request r, Sandbox sb) throws IOException {
        int limit = 100;
        String q = r.query().get("limit");
        if (q != null) {
            try {
                limit = Integer.parseInt(q);
            } catch (NumberFormatException e) {
                throw StockadeError.invalid("limit must be a whole number");
            }
            if (limit < 1 || limit > 10_000) throw StockadeError.invalid("limit must be between 1 and 10000");
        }
        SandboxEgress e = egress(sb);
        ObjectNode out = r.json.createObjectNode();
        out.put("allowed", e.allowed());
        out.put("refused", e.refused());
        ArrayNode list = out.putArray("decisions");
        for (Decision d : e.log(limit)) {
            ObjectNode n = list.addObject();
            n.put("time", DateTimeFormatter.ISO_INSTANT.format(d.time()));
            if (d.pid() == null) n.putNull("pid"); else n.put("pid", d.pid());
            if (d.uid() == null) n.putNull("uid"); else n.put("uid", d.uid());
            n.put("kind", d.kind());
            n.put("host", d.host());
            n.put("port", d.port());
            n.put("address", d.address());
            n.put("allowed", d.allowed());
            n.put("rule", d.rule());
            n.put("reason", d.reason());
        }
        r.sendJson(200, out);
    }

    private static SandboxEgress egress(Sandbox sb) {
        SandboxEgress e = sb.egress();
        if (e == null) {
            throw new StockadeError(StockadeError.Code.UNAVAILABLE, "this server runs without an egress proxy: sandbox "
                    + sb.id() + " has no network and no decision log");
        }
        return e;
    }

    /** Prometheus text format: a few counters an operator graphs and alerts on. */
    private void metrics(Request r) throws IOException {
        long open = 0;
        var running = manager.list().stream().filter(Sandbox::isRunning).toList();
        for (Sandbox sb : running) {
            SandboxEgress e = sb.egress();
            if (e == null) continue;
            open += e.openConnections();
        }
        long allowed = manager.egressAllowedTotal();
        long refused = manager.egressRefusedTotal();
        String text = "# HELP stockade_sandboxes_running Sandboxes running now.\n"
                + "# TYPE stockade_sandboxes_running gauge\n"
                + "stockade_sandboxes_running " + running.size() + "\n"
                + "# HELP stockade_pool_ready Warm sandboxes ready for the next creates.\n"
                + "# TYPE stockade_pool_ready gauge\n"
                + "stockade_pool_ready " + manager.poolReady() + "\n"
                + PoolMetrics.text(manager.runtimeInfo())
                + PoolMetrics.starts(manager.runtimeInfo())
                + "# HELP stockade_egress_decisions_total Egress attempts decided since the server started.\n"
                + "# TYPE stockade_egress_decisions_total counter\n"
                + "stockade_egress_decisions_total{decision=\"allowed\"} " + allowed + "\n"
                + "stockade_egress_decisions_total{decision=\"refused\"} " + refused + "\n"
                + "# HELP stockade_egress_open_connections Connections through the egress proxy open now.\n"
                + "# TYPE stockade_egress_open_connections gauge\n"
                + "stockade_egress_open_connections " + open + "\n";
        r.setResponseHeader("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
        r.send(200, text.getBytes(StandardCharsets.UTF_8));
    }

    private static StockadeError invalidMethod(Request r) {
        return StockadeError.invalid(r.method() + " is not allowed on " + r.path());
    }
}
