package dev.stockade.server.api;

import static dev.stockade.server.api.BodyFields.intField;
import static dev.stockade.server.api.BodyFields.optInt;
import static dev.stockade.server.api.BodyFields.stringMap;
import static dev.stockade.server.api.BodyFields.textField;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.server.core.CreateRequest;
import dev.stockade.server.error.StockadeError;
import java.util.List;

/**
 * The body of {@code POST /sandboxes} and {@code POST /v2/sandboxes} read into a
 * {@link CreateRequest}: E2B's fields (templateID, timeout, metadata, envVars, autoPause, network,
 * allow_internet_access) and Stockade's (runtime, limits, secrets, idleTimeout). Only shapes and
 * names are checked here; whether the values are allowed is the manager's decision.
 */
final class CreateBody {
    private static final List<String> LIMITS = List.of("memoryMB", "cpus", "pids", "diskMB", "outputMB",
            "commandTimeoutSeconds");

    private CreateBody() {}

    static CreateRequest read(JsonNode b) {
        String template = textField(b, "templateID");
        Integer timeout = b.hasNonNull("timeout") ? intField(b, "timeout", false) : null;
        return new CreateRequest(template, timeout, stringMap(b, "metadata"), stringMap(b, "envVars"),
                textField(b, "runtime"), limits(b.get("limits")), NetworkBody.parse(b.get("network"),
                b.get("allow_internet_access")), NetworkBody.secrets(b.get("secrets")), autoPause(b),
                b.hasNonNull("idleTimeout") ? intField(b, "idleTimeout", false) : null);
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
