package dev.stockade.server.tenancy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.server.error.StockadeError;
import java.util.List;

/**
 * What one tenant may hold and do. Every field is optional: null means "no tenant limit" (the
 * server's own maxima still apply).
 *
 * @param sandboxes        sandboxes running at once
 * @param memoryMB         the sum of the running sandboxes' memory limits
 * @param cpus             the sum of the running sandboxes' CPU limits
 * @param createsPerMinute creates in any 60-second window (refused ones do not count)
 * @param sandboxMemoryMB  the largest memory limit one sandbox may ask for (more is a 400, never lowered)
 * @param sandboxCpus      the largest CPU limit one sandbox may ask for (more is a 400, never lowered)
 */
public record Quota(Integer sandboxes, Long memoryMB, Double cpus, Integer createsPerMinute,
                    Integer sandboxMemoryMB, Double sandboxCpus) {
    public static final Quota UNLIMITED = new Quota(null, null, null, null, null, null);
    static final List<String> FIELDS = List.of("sandboxes", "memoryMB", "cpus", "createsPerMinute",
            "sandboxMemoryMB", "sandboxCpus");

    public Quota {
        positive("sandboxes", sandboxes);
        positive("memoryMB", memoryMB);
        positive("cpus", cpus);
        positive("createsPerMinute", createsPerMinute);
        positive("sandboxMemoryMB", sandboxMemoryMB);
        positive("sandboxCpus", sandboxCpus);
    }

    private static void positive(String name, Number n) {
        if (n != null && !(n.doubleValue() > 0 && Double.isFinite(n.doubleValue()))) {
            throw StockadeError.invalid("quota." + name + " must be a positive number or null (no limit), got " + n);
        }
    }

    /** This quota with the fields present in a JSON object replaced (null clears a field). */
    public Quota merge(JsonNode patch) {
        if (patch == null || patch.isNull()) return this;
        if (!patch.isObject()) throw StockadeError.invalid("quota must be an object of " + String.join(", ", FIELDS));
        var names = patch.fieldNames();
        while (names.hasNext()) {
            String f = names.next();
            if (!FIELDS.contains(f)) {
                throw StockadeError.invalid("quota." + f + " is not a quota (" + String.join(", ", FIELDS) + ")");
            }
        }
        return new Quota(
                patch.has("sandboxes") ? wholeNumber(patch, "sandboxes") : sandboxes,
                patch.has("memoryMB") ? longNumber(patch, "memoryMB") : memoryMB,
                patch.has("cpus") ? number(patch, "cpus") : cpus,
                patch.has("createsPerMinute") ? wholeNumber(patch, "createsPerMinute") : createsPerMinute,
                patch.has("sandboxMemoryMB") ? wholeNumber(patch, "sandboxMemoryMB") : sandboxMemoryMB,
                patch.has("sandboxCpus") ? number(patch, "sandboxCpus") : sandboxCpus);
    }

    private static Integer wholeNumber(JsonNode n, String f) {
        JsonNode v = n.get(f);
        if (v.isNull()) return null;
        if (!v.isIntegralNumber() || !v.canConvertToInt()) throw StockadeError.invalid("quota." + f + " must be a whole number or null");
        return v.intValue();
    }

    private static Long longNumber(JsonNode n, String f) {
        JsonNode v = n.get(f);
        if (v.isNull()) return null;
        if (!v.isIntegralNumber() || !v.canConvertToLong()) throw StockadeError.invalid("quota." + f + " must be a whole number or null");
        return v.longValue();
    }

    private static Double number(JsonNode n, String f) {
        JsonNode v = n.get(f);
        if (v.isNull()) return null;
        if (!v.isNumber()) throw StockadeError.invalid("quota." + f + " must be a number or null");
        return v.doubleValue();
    }

    /** The JSON form (every field, null where unlimited): the store's column and the admin API's answer. */
    public ObjectNode toJson(ObjectMapper json) {
        ObjectNode n = json.createObjectNode();
        if (sandboxes == null) n.putNull("sandboxes"); else n.put("sandboxes", sandboxes);
        if (memoryMB == null) n.putNull("memoryMB"); else n.put("memoryMB", memoryMB);
        if (cpus == null) n.putNull("cpus"); else n.put("cpus", cpus);
        if (createsPerMinute == null) n.putNull("createsPerMinute"); else n.put("createsPerMinute", createsPerMinute);
        if (sandboxMemoryMB == null) n.putNull("sandboxMemoryMB"); else n.put("sandboxMemoryMB", sandboxMemoryMB);
        if (sandboxCpus == null) n.putNull("sandboxCpus"); else n.put("sandboxCpus", sandboxCpus);
        return n;
    }
}
