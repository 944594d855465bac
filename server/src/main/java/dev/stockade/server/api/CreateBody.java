package dev.stockade.server.api;

import static dev.stockade.server.api.BodyFields.intField;
import static dev.stockade.server.api.BodyFields.optInt;
import static dev.stockade.server.api.BodyFields.stringMap;
import static dev.stockade.server.api.BodyFields.textField;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.server.core.CreateRequest;
import dev.stockade.server.error.StockadeError;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The body of {@code POST /sandboxes} and {@code POST /v2/sandboxes} read into a
 * {@link CreateRequest}: E2B's fields (templateID, timeout, metadata, envVars, autoPause, network,
 * allow_internet_access) and Stockade's (runtime, limits, secrets, idleTimeout). Only shapes and
 * names are checked here; whether the values are allowed is the manager's decision.
 *
 * <p>Strict: a field Stockade does not know is a 400 naming it, and so is a field E2B defines whose
 * asked-for behaviour Stockade does not have (volumes, workload identity, auto-resume) — a
 * sandbox created without what the caller asked for would fail later and far from the cause. Their
 * empty or "off" values, which an SDK may send by default, are accepted (docs/e2b-compatibility.md,
 * "Create fields"). {@code mcp} is the SDKs' own business (they start the gateway in the sandbox).
 */
final class CreateBody {
    private static final List<String> LIMITS = List.of("memoryMB", "cpus", "pids", "diskMB", "outputMB",
            "commandTimeoutSeconds");
    /** Every field a create may carry: E2B's (2.45 to 2.51 SDKs) and Stockade's extensions. */
    static final Set<String> FIELDS = Set.of("templateID", "timeout", "metadata", "envVars", "network",
            "allow_internet_access", "autoPause", "autoPauseMemory", "autoResume", "secure", "mcp", "iam",
            "volumeMounts", "runtime", "limits", "secrets", "idleTimeout");

    private CreateBody() {}

    static CreateRequest read(JsonNode b) {
        refuseUnknownOrUnsupported(b);
        String template = textField(b, "templateID");
        Integer timeout = b.hasNonNull("timeout") ? intField(b, "timeout", false) : null;
        return new CreateRequest(template, timeout, stringMap(b, "metadata"), stringMap(b, "envVars"),
                textField(b, "runtime"), limits(b.get("limits")), NetworkBody.parse(b.get("network"),
                b.get("allow_internet_access")), NetworkBody.secrets(b.get("secrets")), autoPause(b),
                b.hasNonNull("idleTimeout") ? intField(b, "idleTimeout", false) : null);
    }

    /**
     * Unknown fields, then E2B's fields whose behaviour Stockade lacks when they ask for it. {@code secure}
     * is accepted either way: every Stockade sandbox secures envd with its token, which only adds a check.
     */
    private static void refuseUnknownOrUnsupported(JsonNode b) {
        List<String> unknown = new ArrayList<>();
        b.fieldNames().forEachRemaining(f -> {
            if (!FIELDS.contains(f)) unknown.add(f);
        });
        if (!unknown.isEmpty()) {
            throw StockadeError.invalid("unknown create field" + (unknown.size() == 1 ? " " : "s ")
                    + String.join(", ", unknown.stream().map(CreateBody::printable).toList())
                    + ": a create takes " + String.join(", ", FIELDS.stream().sorted().toList()));
        }
        BodyFields.boolField(b, "secure");
        if (nonEmpty(b.get("volumeMounts"))) {
            throw StockadeError.invalid("volumeMounts is not supported: Stockade has no volumes yet; create without it");
        }
        // mcp is acted on by the SDKs themselves: after the create they run `mcp-gateway --config …`
        // in the sandbox as root and, when the template has no gateway, fail with "Failed to start MCP
        // gateway" and kill the sandbox, as on E2B with such a template. Only its shape is checked.
        JsonNode mcp = b.get("mcp");
        if (mcp != null && !mcp.isNull() && !mcp.isObject()) {
            throw StockadeError.invalid("mcp must be an object of MCP servers");
        }
        JsonNode iam = b.get("iam");
        boolean noTokens = iam != null && iam.isObject() && (iam.isEmpty() || (iam.size() == 1 && iam.has("tokens") && !nonEmpty(iam.get("tokens"))));
        if (nonEmpty(iam) && !noTokens) {
            throw StockadeError.invalid("iam is not supported: Stockade issues no workload identity tokens; create without it");
        }
        JsonNode resume = b.get("autoResume");
        if (resume != null && !resume.isNull()) {
            if (!resume.isObject() || resume.size() > 1 || (resume.size() == 1 && !resume.has("enabled"))) {
                throw StockadeError.invalid("autoResume must be {\"enabled\": true|false}");
            }
            if (BodyFields.boolField(resume, "enabled")) {
                throw StockadeError.invalid("autoResume.enabled is not supported: a paused Stockade sandbox resumes"
                        + " only through connect; create without it");
            }
        }
    }

    /** Whether a JSON value asks for something: anything but absent, null, an empty array or object. */
    private static boolean nonEmpty(JsonNode v) {
        return v != null && !v.isNull() && !((v.isArray() || v.isObject()) && v.isEmpty());
    }

    /** A client's field name as an error may repeat it: cut, printable ASCII. */
    private static String printable(String name) {
        String t = name.length() > 64 ? name.substring(0, 64) + "..." : name;
        return "'" + t.replaceAll("[^\\x20-\\x7e]", "?") + "'";
    }

    /** E2B's lifecycle: {@code autoPause: true} pauses the sandbox at its timeout instead of ending it. */
    private static boolean autoPause(JsonNode b) {
        JsonNode v = b.get("autoPause");
        if (v == null || v.isNull()) return false;
        if (!v.isBoolean()) throw StockadeError.invalid("autoPause must be true or false");
        BodyFields.boolField(b, "autoPauseMemory");
        return v.asBoolean();
    }

    private static CreateRequest.LimitsRequest limits(JsonNode l) {
        if (l == null || l.isNull()) return CreateRequest.LimitsRequest.NONE;
        if (!l.isObject()) throw StockadeError.invalid("limits must be an object");
        var names = l.fieldNames();
        while (names.hasNext()) {
            String f = names.next();
            if (!LIMITS.contains(f)) {
                throw StockadeError.invalid("limits." + f + " is not a known limit (" + String.join(", ", LIMITS) + ")");
            }
        }
        Double cpus = null;
        if (l.hasNonNull("cpus")) {
            if (!l.get("cpus").isNumber()) throw StockadeError.invalid("limits.cpus must be a number");
            cpus = l.get("cpus").asDouble();
        }
        return new CreateRequest.LimitsRequest(optInt(l, "memoryMB"), cpus, optInt(l, "pids"), optInt(l, "diskMB"),
                optInt(l, "outputMB"), optInt(l, "commandTimeoutSeconds"));
    }
}
