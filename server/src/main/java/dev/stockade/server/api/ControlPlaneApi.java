package dev.stockade.server.api;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Map;

/**
 * What is left of the old control-plane class once its routes moved to {@link Routes} and its
 * endpoints to {@link SandboxLifecycleApi}, {@link SandboxListApi} and {@link SnapshotsApi}: the
 * field readers that {@link ProcessRpc} and {@link CodeInterpreterApi} still call by this name. Those
 * two are rewritten on another branch; once it is merged, point them at {@link BodyFields} and delete
 * this class.
 */
final class ControlPlaneApi {
    private ControlPlaneApi() {}

    static String textField(JsonNode n, String f) {
        return BodyFields.textField(n, f);
    }

    static Map<String, String> stringMap(JsonNode n, String f) {
        return BodyFields.stringMap(n, f);
    }

    static String percentDecode(String s) {
        return BodyFields.percentDecode(s);
    }
}
