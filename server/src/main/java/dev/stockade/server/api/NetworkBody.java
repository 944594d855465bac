package dev.stockade.server.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.server.core.CreateRequest;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.egress.NetworkPolicy;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Reads the network settings of a create or update body into a {@link NetworkPolicy}: E2B's
 * {@code allow_internet_access} and {@code network} object ({@code allowOut}, {@code denyOut},
 * {@code rules}), plus Stockade's {@code network.mode}. The E2B SDKs rebuild that object from their
 * own options and drop unknown fields, so their users choose only through E2B's fields; the
 * mapping (docs/e2b-compatibility.md, "Network"):
 * <ul>
 *   <li>nothing, or {@code allow_internet_access: false}: {@code none} (E2B's default is open;
 *       Stockade's is no network);</li>
 *   <li>{@code allowOut} entries: an allow-list of exactly those entries (in E2B they matter only
 *       next to a {@code denyOut} of everything; here they are the whole policy);</li>
 *   <li>{@code allow_internet_access: true}, or a {@code denyOut} that does not cover all traffic:
 *       {@code open} (public addresses minus {@code denyOut}), if the operator permits it;</li>
 *   <li>{@code rules[host][].transform.headers}: headers the proxy sets on requests to that host.</li>
 * </ul>
 * Parsing only: whether the operator permits {@code open} is the manager's decision. The result says
 * which field asked for open access, because one asked by name is refused where one implied by E2B's
 * fields (which the SDKs send on every create) is downgraded ({@code CreatePolicy}).
 */
final class NetworkBody {
    private static final Set<String> FIELDS = Set.of("mode", "allowOut", "denyOut", "rules", "egressProxy",
            "allowPublicTraffic", "maskRequestHost", "httpsPorts");
    private static final Set<String> ALL_TRAFFIC = Set.of("0.0.0.0/0", "::/0");

    private NetworkBody() {}

    /**
     * @param network the {@code network} object, or null/absent
     * @param allowInternet the {@code allow_internet_access} value, or null/absent
     * @return the policy and, when it is open, the field that asked; never null (no settings: none)
     */
    static CreateRequest.NetworkRequest parse(JsonNode network, JsonNode allowInternet) {
        Boolean internet = null;
        if (allowInternet != null && !allowInternet.isNull()) {
            if (!allowInternet.isBoolean()) throw StockadeError.invalid("allow_internet_access must be true or false");
            internet = allowInternet.booleanValue();
        }
        if (network == null || network.isNull()) {
            return Boolean.TRUE.equals(internet)
                    ? new CreateRequest.NetworkRequest(policy(NetworkPolicy.Mode.OPEN, List.of(), List.of(), Map.of()),
                            CreateRequest.OpenVia.ALLOW_INTERNET_ACCESS)
                    : CreateRequest.NetworkRequest.of(NetworkPolicy.none());
        }
        if (!network.isObject()) throw StockadeError.invalid("network must be an object");
        for (var it = network.fieldNames(); it.hasNext(); ) {
            String f = it.next();
            if (!FIELDS.contains(f)) {
                throw StockadeError.invalid("network." + f + " is not a known field (mode, allowOut, denyOut, rules)");
            }
        }
        if (network.hasNonNull("egressProxy")) {
            throw StockadeError.invalid("network.egressProxy is not supported: a Stockade sandbox's traffic leaves only"
                    + " through Stockade's own egress proxy, which applies the allow-list");
        }
        if (network.hasNonNull("httpsPorts") || network.hasNonNull("maskRequestHost")) {
            throw StockadeError.invalid("network.httpsPorts and network.maskRequestHost concern traffic into the"
                    + " sandbox, which Stockade does not expose: sandboxes have no public URLs");
        }
        if (network.hasNonNull("allowPublicTraffic") && !network.get("allowPublicTraffic").isBoolean()) {
            throw StockadeError.invalid("network.allowPublicTraffic must be true or false");
        }
        List<String> allow = strings(network, "allowOut");
        List<String> deny = strings(network, "denyOut");
        Map<String, Map<String, String>> rules = rules(network.get("rules"));
        String mode = BodyFields.textField(network, "mode");
        NetworkPolicy.Mode m;
        CreateRequest.OpenVia via = null;
        if (mode != null) {
            m = switch (mode) {
                case "none" -> NetworkPolicy.Mode.NONE;
                case "allowlist" -> NetworkPolicy.Mode.ALLOWLIST;
                case "open" -> NetworkPolicy.Mode.OPEN;
                default -> throw StockadeError.invalid("network.mode must be none, allowlist or open, got '" + mode + "'");
            };
            if (m == NetworkPolicy.Mode.NONE && !allow.isEmpty()) {
                throw StockadeError.invalid("network.mode none admits nothing: remove network.allowOut or choose allowlist");
            }
            if (m == NetworkPolicy.Mode.OPEN) via = CreateRequest.OpenVia.MODE;
        } else if (Boolean.TRUE.equals(internet)) {
            m = NetworkPolicy.Mode.OPEN;
            via = CreateRequest.OpenVia.ALLOW_INTERNET_ACCESS;
        } else if (!allow.isEmpty()) {
            m = NetworkPolicy.Mode.ALLOWLIST;
        } else if (!deny.isEmpty() && deny.stream().noneMatch(ALL_TRAFFIC::contains) && internet == null) {
            m = NetworkPolicy.Mode.OPEN; // E2B: denyOut alone blocks those and lets the rest out
            via = CreateRequest.OpenVia.DENY_OUT;
        } else {
            m = NetworkPolicy.Mode.NONE;
        }
        return new CreateRequest.NetworkRequest(policy(m, allow, deny, rules), via);
    }

    private static NetworkPolicy policy(NetworkPolicy.Mode mode, List<String> allow, List<String> deny,
                                        Map<String, Map<String, String>> rules) {
        try {
            return NetworkPolicy.of(mode, allow, deny, rules);
        } catch (IllegalArgumentException e) {
            throw StockadeError.invalid("network: " + e.getMessage());
        }
    }

    private static List<String> strings(JsonNode n, String field) {
        JsonNode v = n.get(field);
        if (v == null || v.isNull()) return List.of();
        if (!v.isArray()) throw StockadeError.invalid("network." + field + " must be a list of strings");
        if (v.size() > 1000) throw StockadeError.invalid("network." + field + " has " + v.size() + " entries; at most 1000");
        List<String> out = new ArrayList<>();
        for (JsonNode e : v) {
            if (!e.isTextual()) throw StockadeError.invalid("network." + field + " must be a list of strings");
            out.add(e.asText());
        }
        return out;
    }

    /** E2B's {@code rules}: host → [{transform: {headers: {name: value}}}], flattened per host. */
    private static Map<String, Map<String, String>> rules(JsonNode v) {
        if (v == null || v.isNull()) return Map.of();
        if (!v.isObject()) throw StockadeError.invalid("network.rules must be an object of host → list of rules");
        if (v.size() > 1000) throw StockadeError.invalid("network.rules has " + v.size() + " hosts; at most 1000");
        Map<String, Map<String, String>> out = new LinkedHashMap<>();
        for (var it = v.fields(); it.hasNext(); ) {
            var e = it.next();
            String where = "network.rules['" + e.getKey() + "']";
            if (!e.getValue().isArray()) throw StockadeError.invalid(where + " must be a list of rules");
            Map<String, String> headers = new LinkedHashMap<>();
            for (JsonNode rule : e.getValue()) {
                if (!rule.isObject()) throw StockadeError.invalid(where + " must be a list of objects");
                JsonNode t = rule.get("transform");
                if (t == null || t.isNull()) continue;
                JsonNode h = t.get("headers");
                if (!t.isObject() || (h != null && !h.isNull() && !h.isObject())) {
                    throw StockadeError.invalid(where + ".transform.headers must be an object of strings");
                }
                if (h == null || h.isNull()) continue;
                for (var hit = h.fields(); hit.hasNext(); ) {
                    var he = hit.next();
                    if (!he.getValue().isTextual()) {
                        throw StockadeError.invalid(where + ".transform.headers." + he.getKey() + " must be a string");
                    }
                    headers.put(he.getKey(), he.getValue().asText());
                }
            }
            out.put(e.getKey(), headers);
        }
        return out;
    }

    /**
     * Stockade's {@code secrets}: name → {value, hosts}. Names follow environment variable rules
     * (checked by the manager together with envVars).
     */
    static Map<String, CreateRequest.SecretRequest> secrets(JsonNode v) {
        if (v == null || v.isNull()) return Map.of();
        if (!v.isObject()) throw StockadeError.invalid("secrets must be an object of name → {value, hosts}");
        if (v.size() > 64) throw StockadeError.invalid("secrets has " + v.size() + " entries; at most 64");
        Map<String, CreateRequest.SecretRequest> out = new LinkedHashMap<>();
        for (var it = v.fields(); it.hasNext(); ) {
            var e = it.next();
            JsonNode s = e.getValue();
            String where = "secrets." + e.getKey();
            if (!s.isObject() || !s.path("value").isTextual()) {
                throw StockadeError.invalid(where + " must be an object with a string value and a list of hosts");
            }
            JsonNode hosts = s.get("hosts");
            if (hosts == null || !hosts.isArray() || hosts.isEmpty()) {
                throw StockadeError.invalid(where + ".hosts must list the hosts the secret may be sent to");
            }
            List<String> hs = new ArrayList<>();
            for (JsonNode h : hosts) {
                if (!h.isTextual()) throw StockadeError.invalid(where + ".hosts must be a list of strings");
                hs.add(h.asText());
            }
            for (var f = s.fieldNames(); f.hasNext(); ) {
                String name = f.next();
                if (!name.equals("value") && !name.equals("hosts")) {
                    throw StockadeError.invalid(where + "." + name + " is not a known field (value, hosts)");
                }
            }
            out.put(e.getKey(), new CreateRequest.SecretRequest(s.get("value").asText(), hs));
        }
        return out;
    }

    /**
     * The policy as E2B's SandboxNetworkConfig plus {@code mode}, and for a policy a create got instead
     * of open access, {@code requested} (the mode asked) and {@code downgraded} (why, and how to ask
     * for more). Header rule values are not shown: they often carry credentials.
     */
    static ObjectNode describe(ObjectNode n, NetworkPolicy p) {
        n.put("mode", lower(p.mode()));
        p.allow().forEach(n.putArray("allowOut")::add);
        p.deny().forEach(n.putArray("denyOut")::add);
        ObjectNode rules = n.putObject("rules");
        p.headerRules().forEach((host, headers) -> {
            ObjectNode h = rules.putArray(host).addObject().putObject("transform").putObject("headers");
            headers.keySet().forEach(name -> h.put(name, "<redacted>"));
        });
        NetworkPolicy.Downgrade d = p.downgrade();
        if (d != null) {
            n.put("requested", lower(d.requested()));
            n.put("downgraded", downgradeNote(p) + "; ask for hosts in network.allowOut at create or through updateNetwork");
        }
        return n;
    }

    /**
     * "open asked through allow_internet_access, downgraded to none (the operator has not enabled open
     * egress)": what the create response, get and audit log say of a downgraded policy; null if not one.
     */
    static String downgradeNote(NetworkPolicy p) {
        NetworkPolicy.Downgrade d = p.downgrade();
        if (d == null) return null;
        String to = p.mode() == NetworkPolicy.Mode.NONE ? "none"
                : "an allow-list of the " + p.allow().size() + " network.allowOut entr" + (p.allow().size() == 1 ? "y" : "ies");
        return lower(d.requested()) + " asked through " + d.askedThrough() + ", downgraded to " + to + " (" + d.reason() + ")";
    }

    private static String lower(NetworkPolicy.Mode m) {
        return m.name().toLowerCase(java.util.Locale.ROOT);
    }
}
