package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.conformance.ApiAssertions;
import dev.stockade.conformance.RawClient;
import dev.stockade.conformance.TestServer;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * Strict input (issue 15): one credential or a 400 (a second X-API-Key, X-Access-Token, Authorization or
 * E2b-Sandbox-Id, a control character in one, a Bearer token that names another key); create bodies
 * with unknown or unsupported fields refused naming them; duplicate JSON keys refused wherever JSON is
 * read; a body that is not JSON refused with 415; pseudo-files such as {@code /proc/self/fd/3} read
 * through /files answered with a 4xx, never a 500.
 */
class StrictInputIT extends OneSandboxPerClass {

    /** One answer read off a raw socket: the status line's code and the body (the request says Connection: close). */
    record Raw(int status, String head, String body) {
        JsonNode json() {
            try {
                return RawClient.JSON.readTree(body);
            } catch (IOException e) {
                return null;
            }
        }
    }

    /** Sends a request with exactly these header lines (repeats and control characters included). */
    static Raw raw(String method, String target, List<String> headerLines, String body) {
        StringBuilder sb = new StringBuilder(method).append(' ').append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        headerLines.forEach(h -> sb.append(h).append("\r\n"));
        byte[] b = body == null ? new byte[0] : body.getBytes(StandardCharsets.UTF_8);
        if (body != null) sb.append("Content-Type: application/json\r\nContent-Length: ").append(b.length).append("\r\n");
        sb.append("\r\n");
        try (Socket s = new Socket(ts.server.url().getHost(), ts.server.url().getPort())) {
            s.setSoTimeout(20_000);
            s.getOutputStream().write(sb.toString().getBytes(StandardCharsets.ISO_8859_1));
            s.getOutputStream().write(b);
            InputStream in = s.getInputStream();
            String all = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            int end = all.indexOf("\r\n\r\n");
            String head = end < 0 ? all : all.substring(0, end);
            return new Raw(Integer.parseInt(head.split(" ", 3)[1]), head, end < 0 ? "" : all.substring(end + 4));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A 400 in E2B's error shape (or Connect's, with {@code connect}), never the request carried out. */
    static void refused(Raw r, boolean connect, List<String> sent) {
        assertEquals(400, r.status(), () -> sent.toString().replace("\u000b", "<VT>").replace("\u000c", "<FF>") + " → " + r.head() + "\n" + r.body());
        assertTrue(r.head().toLowerCase().contains("content-type: application/json"), r::head);
        JsonNode j = r.json();
        assertTrue(j != null && !j.path("message").asText("").isBlank(), r::body);
        if (connect) assertEquals("invalid_argument", j.path("code").asText(), r::body);
        else assertEquals(400, j.path("code").asInt(), r::body);
    }

    static List<String> envd(String... more) {
        List<String> h = new java.util.ArrayList<>(List.of("E2b-Sandbox-Id: " + box.id(), "E2b-Sandbox-Port: 49983"));
        h.addAll(List.of(more));
        return h;
    }

    @Test
    void controlPlaneCredentialsMustBeOneAndUnambiguous() {
        String key = TestServer.KEY;
        String forged = "e2b_" + "f".repeat(40);
        // One key, as the SDKs send it: accepted (also with an Authorization: Bearer naming the same key).
        assertEquals(200, raw("GET", "/v2/sandboxes", List.of("X-API-Key: " + key), null).status());
        assertEquals(200, raw("GET", "/v2/sandboxes", List.of("X-API-KEY: " + key, "Authorization: Bearer " + key), null).status());
        for (List<String> h : List.of(
                List.of("X-API-Key: " + key, "X-API-Key: " + forged),
                List.of("X-API-Key: " + forged, "X-API-Key: " + key),
                List.of("X-API-Key: " + key, "X-API-Key: " + key),
                List.of("X-API-Key: " + key, "x-api-key: " + key),
                // (Leading and trailing bytes up to 0x20 never reach Stockade: the JDK server strips them.)
                List.of("X-API-Key: " + key.substring(0, 10) + "\u000b" + key.substring(10)),
                List.of("X-API-Key: " + key.substring(0, 10) + "\u000c" + key.substring(10)),
                List.of("X-API-Key: " + key.substring(0, 10) + "\u007f" + key.substring(10)),
                List.of("X-API-Key: " + key + "\u000b" + key),
                List.of("X-API-Key: " + key, "Authorization: Bearer " + forged),
                List.of("X-API-Key: " + key, "Authorization: Basic dXNlcjo=", "Authorization: Basic cm9vdDo="))) {
            refused(raw("GET", "/v2/sandboxes", h, null), false, h);
            // A write refused for ambiguity changes nothing.
            refused(raw("POST", "/v2/sandboxes", h, "{\"templateID\":\"base\"}"), false, h);
        }
        assertEquals(1, c.call("GET", "/v2/sandboxes", null).json().size(), "no sandbox was created");
        // Each refusal is in the audit log as the refused authentication it is (a GET included).
        String log = c.call("GET", "/admin/audit?action=sandbox.list&limit=1000", null).body();
        assertTrue(log.contains("\"status\":400"), log);
    }

    @Test
    void sandboxTokensAndIdsMustBeOneAndUnambiguous() {
        String token = box.token();
        // One of each, as the SDKs send them: accepted.
        assertEquals(200, raw("GET", "/files?path=/etc/hostname", envd("X-Access-Token: " + token), null).status());
        for (List<String> h : List.of(
                envd("X-Access-Token: " + token, "X-Access-Token: forged"),
                envd("X-Access-Token: forged", "X-Access-Token: " + token),
                envd("X-Access-Token: " + token + "\u000b" + token),
                envd("X-Access-Token: " + token, "E2b-Sandbox-Id: " + box.id()),
                envd("X-Access-Token: " + token, "E2b-Sandbox-Port: 49999"),
                envd("X-Access-Token: " + token, "Authorization: Basic cm9vdDo=", "Authorization: Basic dXNlcjo="),
                envd("X-Access-Token: " + token, "E2B-Traffic-Access-Token: forged"))) {
            refused(raw("GET", "/files?path=/etc/hostname", h, null), false, h);
            refused(raw("POST", "/filesystem.Filesystem/Stat", h, "{\"path\":\"/etc\"}"), true, h);
        }
        // The code interpreter SDK's two token headers, when they agree, are one credential.
        assertEquals(200, raw("GET", "/files?path=/etc/hostname", envd("X-Access-Token: " + token,
                "E2B-Traffic-Access-Token: " + token), null).status());
    }

    static RawClient.Response create(Map<String, Object> body) {
        RawClient.Response r = c.call("POST", "/v2/sandboxes", body);
        if (r.status() == 201) c.kill(new RawClient.Box(r.json().path("sandboxID").asText(), null));
        return r;
    }

    static void refusedNaming(RawClient.Response r, String field) {
        ApiAssertions.assertError(r, 400);
        assertTrue(r.json().path("message").asText().contains(field), () -> field + " not named: " + r.body());
    }

    @Test
    void createRefusesUnknownAndUnsupportedFieldsNamingThem() {
        Map<String, Object> base = Map.of("templateID", "base", "timeout", 30);
        refusedNaming(create(with(base, "volumeMount", List.of())), "volumeMount");
        refusedNaming(create(with(base, "templateId", "base")), "templateId");
        refusedNaming(create(with(base, "volumeMounts", List.of(Map.of("name", "v", "path", "/")))), "volumeMounts");
        refusedNaming(create(with(base, "volumeMounts", List.of(Map.of("name", "../../../", "path", "/mnt/v")))), "volumeMounts");
        refusedNaming(create(with(base, "mcp", "github")), "mcp");
        refusedNaming(create(with(base, "iam", Map.of("tokens", Map.of("aws", Map.of("audience", "a", "tokenType", "t"))))), "iam");
        refusedNaming(create(with(base, "autoResume", Map.of("enabled", true))), "autoResume");
        refusedNaming(create(with(base, "secure", "yes")), "secure");
        // What E2B's SDKs send by default (Python 2.45: secure, allow_internet_access, empty metadata and
        // envVars; JS: an empty volumeMounts for an empty map; autoResume off) creates a sandbox.
        Map<String, Object> sdkDefaults = new LinkedHashMap<>(base);
        sdkDefaults.putAll(Map.of("secure", true, "allow_internet_access", true, "metadata", Map.of(), "envVars", Map.of(),
                "autoPause", false, "volumeMounts", List.of(), "autoResume", Map.of("enabled", false)));
        sdkDefaults.put("mcp", null);
        RawClient.Response ok = create(sdkDefaults);
        assertEquals(201, ok.status(), ok::body);
    }

    static Map<String, Object> with(Map<String, Object> base, String k, Object v) {
        Map<String, Object> m = new HashMap<>(base);
        m.put(k, v);
        return m;
    }

    @Test
    void duplicateJsonKeysAreRefusedEverywhere() {
        Map<String, String> key = Map.of("X-API-Key", TestServer.KEY);
        refusedNaming(c.call("POST", "/v2/sandboxes", "{\"templateID\":\"base\",\"timeout\":30,\"timeout\":3000}", key), "timeout");
        refusedNaming(c.call("POST", "/v2/sandboxes", "{\"templateID\":\"base\",\"metadata\":{\"a\":\"1\",\"a\":\"2\"}}", key), "a");
        refusedNaming(c.call("POST", "/sandboxes/" + box.id() + "/timeout", "{\"timeout\":60,\"timeout\":1}", key), "timeout");
        Map<String, String> envd = new HashMap<>(c.envd(box));
        envd.put("Content-Type", "application/json");
        RawClient.Response rpc = c.call("POST", "/filesystem.Filesystem/Stat", "{\"path\":\"/tmp\",\"path\":\"/etc\"}", envd);
        assertEquals(400, rpc.status(), rpc::body);
        assertEquals("invalid_argument", rpc.json().path("code").asText(), rpc::body);
        // In a Connect stream's enveloped message too.
        byte[] msg = "{\"process\":{\"cmd\":\"/bin/echo\",\"cmd\":\"/bin/true\"}}".getBytes(StandardCharsets.UTF_8);
        RawClient.Streamed s = c.streamRaw(box, "process.Process/Start", RawClient.envelope(0, msg),
                Map.of("Content-Type", "application/connect+json"), null);
        JsonNode error = s.status() == 200 ? s.error() : s.errorBody();
        assertEquals("invalid_argument", error.path("code").asText(), String.valueOf(error));
        assertEquals(-1, s.pid(), "no process started");
    }

    @Test
    void bodiesThatAreNotJsonAre415() {
        for (String type : List.of("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                "application/xml", "")) {
            Map<String, String> h = Map.of("X-API-Key", TestServer.KEY, "Content-Type", type);
            RawClient.Response r = c.call("POST", "/v2/sandboxes", "{\"templateID\":\"base\",\"timeout\":30}", h);
            if (r.status() == 201) c.kill(new RawClient.Box(r.json().path("sandboxID").asText(), null));
            ApiAssertions.assertError(r, 415);
            ApiAssertions.assertError(c.call("POST", "/sandboxes/" + box.id() + "/timeout", "{\"timeout\":300}", h), 415);
            Map<String, String> envd = new HashMap<>(c.envd(box));
            envd.put("Content-Type", type);
            RawClient.Response rpc = c.call("POST", "/filesystem.Filesystem/Stat", "{\"path\":\"/tmp\"}", envd);
            assertEquals(415, rpc.status(), rpc::body);
            assertEquals("invalid_argument", rpc.json().path("code").asText(), rpc::body);
            // A Connect stream's enveloped JSON too: refused before any process starts.
            byte[] start = "{\"process\":{\"cmd\":\"/bin/echo\",\"args\":[\"x\"]}}".getBytes(StandardCharsets.UTF_8);
            RawClient.Streamed s = c.streamRaw(box, "process.Process/Start", RawClient.envelope(0, start),
                    Map.of("Content-Type", type), null);
            assertEquals(415, s.status(), () -> String.valueOf(s.errorBody()));
            assertEquals(-1, s.pid(), "no process started");
        }
        // JSON with a charset parameter is JSON.
        Map<String, String> json = Map.of("X-API-Key", TestServer.KEY, "Content-Type", "application/json; charset=utf-8");
        assertEquals(200, c.call("POST", "/sandboxes/" + box.id() + "/timeout", "{\"timeout\":300}", json).status() / 100 * 100);
    }

    @Test
    void pseudoFilesAreA4xxNeverA500() {
        Map<String, String> envd = c.envd(box);
        for (int fd = 0; fd <= 9; fd++) {
            for (String path : List.of("/proc/self/fd/" + fd, "/proc/1/fd/" + fd)) {
                RawClient.Response r = c.call("GET", "/files?path=" + path, null, envd);
                if (r.status() == 200) continue; // a readable regular file behind the descriptor
                assertTrue(r.status() >= 400 && r.status() < 500, () -> path + ": " + r.status() + " " + r.body());
                ApiAssertions.assertError(r, r.status());
            }
        }
        assertFalse(c.run(box, "echo alive").stdout().isEmpty(), "the sandbox still runs commands");
    }
}
