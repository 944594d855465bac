package dev.stockade.sdk.internal;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.sdk.CreateOptions;
import dev.stockade.sdk.SandboxInfo;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** The control-plane routes the SDK uses, with E2B's paths and bodies. Stateless and thread-safe. */
public final class ControlPlane {
    private static final int PAGE = 100;

    private final Transport transport;

    public ControlPlane(Transport transport) {
        this.transport = transport;
    }

    /** What the SDK needs to talk to a sandbox: {@code POST /sandboxes} and {@code /connect} answer it. */
    public record Connection(String sandboxId, String envdVersion, String accessToken, String trafficAccessToken) {
        static Connection of(JsonNode n) {
            return new Connection(Wire.requireId(n), Json.text(n, "envdVersion"), Json.text(n, "envdAccessToken"),
                    Json.text(n, "trafficAccessToken"));
        }
    }

    public Connection create(CreateOptions options) {
        return Connection.of(transport.json("POST", "/sandboxes", Wire.createBody(options), "creating a sandbox"));
    }

    public Connection connect(String id) {
        return Connection.of(transport.json("POST", "/sandboxes/" + Transport.segment(id) + "/connect", Json.object(),
                "connecting to sandbox " + id));
    }

    public SandboxInfo info(String id) {
        return Wire.sandboxInfo(transport.json("GET", "/sandboxes/" + Transport.segment(id), null,
                "getting sandbox " + id));
    }

    public void setTimeout(String id, Duration timeout) {
        JsonNode body = Json.object().put("timeout", Wire.seconds(timeout));
        transport.json("POST", "/sandboxes/" + Transport.segment(id) + "/timeout", body,
                "setting the timeout of sandbox " + id);
    }

    /** Kills a sandbox; false when there was none. */
    public boolean kill(String id) {
        String what = "killing sandbox " + id;
        HttpRequest req = transport.request("/sandboxes/" + Transport.segment(id)).DELETE().build();
        HttpResponse<byte[]> res = transport.send(req, what);
        if (res.statusCode() == 404) return false;
        if (res.statusCode() / 100 != 2) throw Transport.error(res.statusCode(), res.body(), what);
        return true;
    }

    /** Every running sandbox, following {@code X-Next-Token} through all pages. */
    public List<SandboxInfo> list() {
        List<SandboxInfo> all = new ArrayList<>();
        String next = null;
        do {
            Map<String, String> q = new LinkedHashMap<>();
            q.put("limit", Integer.toString(PAGE));
            q.put("nextToken", next);
            HttpRequest req = transport.request("/v2/sandboxes" + Transport.query(q))
                    .header("Accept", "application/json").GET().build();
            HttpResponse<byte[]> res = transport.send(req, "listing sandboxes");
            if (res.statusCode() / 100 != 2) throw Transport.error(res.statusCode(), res.body(), "listing sandboxes");
            JsonNode page = Json.parse(res.body(), "listing sandboxes");
            all.addAll(Wire.sandboxList(page));
            String token = res.headers().firstValue("X-Next-Token").orElse("");
            next = token.isEmpty() || token.equals(next) || page.isEmpty() ? null : token;
        } while (next != null);
        return all;
    }
}
