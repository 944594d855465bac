package dev.stockade.server.api;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.server.error.StockadeError;
import java.io.ByteArrayOutputStream;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Typed reads of JSON request fields, shared by every body record: a field of the wrong type is a
 * 400 naming it ("timeout must be a whole number"), never a 500 or a silent default.
 */
final class BodyFields {
    private BodyFields() {}

    /** A whole number (int); absent or null is 0, or "F is required" when required. */
    static int intField(JsonNode n, String f, boolean required) {
        JsonNode v = n.get(f);
        if (v == null || v.isNull()) {
            if (required) throw StockadeError.invalid(f + " is required");
            return 0;
        }
        if (!v.isIntegralNumber() || !v.canConvertToInt()) throw StockadeError.invalid(f + " must be a whole number");
        return v.intValue();
    }

    /** A whole number, or null when absent or null. */
    static Integer optInt(JsonNode n, String f) {
        return n.hasNonNull(f) ? intField(n, f, false) : null;
    }

    static String textField(JsonNode n, String f) {
        JsonNode v = n.get(f);
        if (v == null || v.isNull()) return null;
        if (!v.isTextual()) throw StockadeError.invalid(f + " must be a string");
        return v.asText();
    }

    /** true or false; absent or null is false. */
    static boolean boolField(JsonNode n, String f) {
        JsonNode v = n.get(f);
        if (v == null || v.isNull()) return false;
        if (!v.isBoolean()) throw StockadeError.invalid(f + " must be true or false");
        return v.asBoolean();
    }

    static Map<String, String> stringMap(JsonNode n, String f) {
        JsonNode v = n.get(f);
        if (v == null || v.isNull()) return Map.of();
        if (!v.isObject()) throw StockadeError.invalid(f + " must be an object of strings");
        Map<String, String> m = new LinkedHashMap<>();
        var it = v.fields();
        while (it.hasNext()) {
            var e = it.next();
            if (!e.getValue().isTextual()) throw StockadeError.invalid(f + "." + e.getKey() + " must be a string");
            m.put(e.getKey(), e.getValue().asText());
        }
        return m;
    }

    /**
     * decodeURIComponent, leniently: valid %XX escapes become bytes (read as UTF-8), anything else —
     * a lone '%', a '+' — stays as it is, so clients that encode one level less still match.
     */
    static String percentDecode(String s) {
        if (s.indexOf('%') < 0) return s;
        ByteArrayOutputStream out = new ByteArrayOutputStream(s.length());
        byte[] in = s.getBytes(StandardCharsets.UTF_8);
        for (int i = 0; i < in.length; i++) {
            int hi = i + 2 < in.length && in[i] == '%' ? Character.digit(in[i + 1], 16) : -1;
            int lo = hi < 0 ? -1 : Character.digit(in[i + 2], 16);
            if (lo >= 0) {
                out.write(hi * 16 + lo);
                i += 2;
            } else {
                out.write(in[i]);
            }
        }
        return out.toString(StandardCharsets.UTF_8);
    }

    /** A form-encoded word (a query string's pair), then percent-decoded once more: see {@link #percentDecode}. */
    static String formThenPercentDecode(String s) {
        return percentDecode(URLDecoder.decode(s, StandardCharsets.UTF_8));
    }
}
