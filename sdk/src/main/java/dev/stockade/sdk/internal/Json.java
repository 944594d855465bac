package dev.stockade.sdk.internal;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.sdk.SandboxException;
import java.io.IOException;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.LinkedHashMap;
import java.util.Map;

/** The SDK's one JSON mapper and the lenient readers the wire needs (protobuf JSON omits zero values). */
public final class Json {
    public static final ObjectMapper MAPPER = new ObjectMapper()
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    private Json() {}

    public static ObjectNode object() {
        return MAPPER.createObjectNode();
    }

    public static byte[] bytes(JsonNode node) {
        try {
            return MAPPER.writeValueAsBytes(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot serialise a JSON tree", e);
        }
    }

    public static JsonNode parse(byte[] body, String what) {
        try {
            JsonNode n = MAPPER.readTree(body);
            return n == null ? MAPPER.missingNode() : n;
        } catch (JsonProcessingException e) {
            throw new SandboxException(what + ": the server sent malformed JSON (" + e.getOriginalMessage()
                    + "). Check that the URL points at a Stockade or E2B server.", 0, e);
        } catch (IOException e) {
            throw new SandboxException(what + ": cannot read the server's JSON: " + e, 0, e);
        }
    }

    /** Text, or null when absent, null or empty. */
    public static String text(JsonNode n, String field) {
        JsonNode v = n.get(field);
        if (v == null || v.isNull()) return null;
        String s = v.asText();
        return s.isEmpty() ? null : s;
    }

    /** A number that protobuf JSON may send as a number or a string (int64), 0 when absent. */
    public static long number(JsonNode n, String field) {
        JsonNode v = n.get(field);
        if (v == null || v.isNull()) return 0;
        if (v.isNumber()) return v.asLong();
        try {
            return Long.parseLong(v.asText().strip());
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    public static Integer optionalInt(JsonNode n, String field) {
        JsonNode v = n.get(field);
        return v != null && v.isNumber() ? v.asInt() : null;
    }

    public static Double optionalDouble(JsonNode n, String field) {
        JsonNode v = n.get(field);
        return v != null && v.isNumber() ? v.asDouble() : null;
    }

    public static Instant instant(JsonNode n, String field) {
        String s = text(n, field);
        if (s == null) return null;
        try {
            return Instant.parse(s);
        } catch (DateTimeParseException e) {
            return null;
        }
    }

    public static Map<String, String> stringMap(JsonNode n, String field) {
        Map<String, String> out = new LinkedHashMap<>();
        JsonNode v = n.get(field);
        if (v != null && v.isObject()) {
            v.properties().forEach(e -> out.put(e.getKey(), e.getValue().asText()));
        }
        return out;
    }
}
