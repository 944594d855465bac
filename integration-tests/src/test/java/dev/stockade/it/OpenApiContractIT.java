package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.stockade.conformance.RawClient;
import dev.stockade.conformance.TestServer;
import dev.stockade.server.api.Routes;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * api/openapi.yaml against the server's route table and the running server: the table's routes and
 * the documented operations are the same set; every documented operation is called, answers with a
 * documented status (a success, unless it documents none: the recognised but unsupported RPCs), and
 * its JSON carries the schema's required fields; every operation this test knows is documented. A
 * route added to the server without the spec (or the reverse) fails here.
 */
class OpenApiContractIT {
    static TestServer ts;
    static JsonNode spec;
    static Path wheelhouse;

    @BeforeAll
    static void up() throws Exception {
        wheelhouse = java.nio.file.Files.createTempDirectory("stockade-contract-wheels");
        dev.stockade.server.packages.TestWheels.write(wheelhouse, "contractpkg", "1.0", null);
        ts = new TestServer(c -> c.withPackages(new dev.stockade.server.packages.PackageConfig(wheelhouse, null, null, null)));
        Path file = Path.of(System.getProperty("stockade.repo", "..")).resolve("api/openapi.yaml");
        spec = new ObjectMapper(new YAMLFactory()).readTree(file.toFile());
    }

    @AfterAll
    static void down() {
        try {
            ts.close();
        } finally {
            TestServer.deleteTree(wheelhouse);
        }
    }

    record Call(String method, String path, Function<RawClient.Box, RawClient.Response> send) {}

    @Test
    void theRouteTableIsWhatIsDocumented() {
        TreeSet<String> documented = new TreeSet<>();
        List<String> methods = List.of("get", "head", "post", "put", "delete", "patch", "options");
        spec.get("paths").fields().forEachRemaining(p -> p.getValue().fieldNames().forEachRemaining(m -> {
            if (methods.contains(m)) documented.add(m.toUpperCase(java.util.Locale.ROOT) + " " + p.getKey());
        }));
        TreeSet<String> table = new TreeSet<>();
        for (Routes.Declared r : Routes.declared()) table.add(r.method() + " " + r.path());
        assertEquals(documented, table, "operations in api/openapi.yaml vs routes in Routes");
        // Each route names its audit action (the audit log filters on it).
        for (Routes.Declared r : Routes.declared()) assertTrue(r.action().matches("[a-z]+(\\.[A-Za-z]+)+"), r.toString());
    }

    @Test
    void everyDocumentedOperationAnswersAsDocumented() {
        RawClient c = ts.client;
        RawClient.Box box = c.create();
        RawClient.Box victim = c.create();
        try {
            c.run(box, "mkdir -p /home/user/d && echo hi > /home/user/f.txt && sleep 30 > /dev/null &");
            Map<String, Call> calls = new LinkedHashMap<>();
            calls.put("createSandbox", new Call("post", "/v2/sandboxes", b -> {
                RawClient.Response r = c.call("POST", "/v2/sandboxes", Map.of("templateID", "base", "timeout", 30));
                if (r.status() == 201) c.call("DELETE", "/sandboxes/" + r.json().get("sandboxID").asText(), null);
                return r;
            }));
            calls.put("createSandboxV1", new Call("post", "/sandboxes", b -> {
                RawClient.Response r = c.call("POST", "/sandboxes", Map.of("templateID", "code-interpreter-v1", "timeout", 30));
                if (r.status() == 201) c.call("DELETE", "/sandboxes/" + r.json().get("sandboxID").asText(), null);
                return r;
            }));
            calls.put("listSandboxes", new Call("get", "/v2/sandboxes", b -> c.call("GET", "/v2/sandboxes?limit=1", null)));
            calls.put("listSandboxesV1", new Call("get", "/sandboxes", b -> c.call("GET", "/sandboxes", null)));
            calls.put("getSandbox", new Call("get", "/sandboxes/{sandboxID}", b -> c.call("GET", "/sandboxes/" + b.id(), null)));
            calls.put("setSandboxTimeout", new Call("post", "/sandboxes/{sandboxID}/timeout",
                    b -> c.call("POST", "/sandboxes/" + b.id() + "/timeout", Map.of("timeout", 120))));
            calls.put("refreshSandbox", new Call("post", "/sandboxes/{sandboxID}/refreshes",
                    b -> c.call("POST", "/sandboxes/" + b.id() + "/refreshes", Map.of("duration", 120))));
            calls.put("connectSandboxV1", new Call("post", "/sandboxes/{sandboxID}/connect",
                    b -> c.call("POST", "/sandboxes/" + b.id() + "/connect", Map.of("timeout", 120))));
            calls.put("connectSandbox", new Call("post", "/v2/sandboxes/{sandboxID}/connect",
                    b -> c.call("POST", "/v2/sandboxes/" + b.id() + "/connect", Map.of())));
            calls.put("getSandboxMetrics", new Call("get", "/sandboxes/{sandboxID}/metrics", b -> {
                // The box has lived a while by now (creates above); wait for its first sample if not.
                RawClient.Response r = c.call("GET", "/sandboxes/" + b.id() + "/metrics", null);
                for (int i = 0; i < 40 && r.status() == 200 && r.json().isEmpty(); i++) {
                    try {
                        Thread.sleep(250);
                    } catch (InterruptedException e) {
                        throw new IllegalStateException(e);
                    }
                    r = c.call("GET", "/sandboxes/" + b.id() + "/metrics", null);
                }
                assertTrue(r.json().size() > 0, r.body());
                return r;
            }));
            String[] snapshot = new String[1];
            calls.put("createSnapshot", new Call("post", "/sandboxes/{sandboxID}/snapshots", b -> {
                RawClient.Response r = c.call("POST", "/sandboxes/" + b.id() + "/snapshots", Map.of("name", "contract-snap"));
                if (r.status() == 201) snapshot[0] = r.json().get("snapshotID").asText();
                return r;
            }));
            calls.put("listSnapshots", new Call("get", "/snapshots", b -> c.call("GET", "/snapshots?limit=5", null)));
            calls.put("listRuntimes", new Call("get", "/runtimes", b -> {
                RawClient.Response r = c.call("GET", "/runtimes", null);
                assertEquals("runc", r.json().path(0).path("name").asText(), r.body());
                assertTrue(r.body().contains("\"pause\"") && r.body().contains("\"snapshot\""), r.body());
                return r;
            }));
            // E2B's Template API (issue 17): request, upload, start, poll until ready, then its names.
            String[] tpl = new String[2];
            String hash = "ab".repeat(32);
            String[] uploadUrl = new String[1];
            calls.put("requestTemplateBuild", new Call("post", "/v3/templates", b -> {
                RawClient.Response r = c.call("POST", "/v3/templates", Map.of("name", "contract-tpl:v1"));
                tpl[0] = r.json().get("templateID").asText();
                tpl[1] = r.json().get("buildID").asText();
                return r;
            }));
            calls.put("templateFilesUpload", new Call("get", "/templates/{templateID}/files/{hash}", b -> {
                RawClient.Response r = c.call("GET", "/templates/" + tpl[0] + "/files/" + hash, null);
                uploadUrl[0] = r.json().get("url").asText();
                return r;
            }));
            calls.put("templateFilesPut", new Call("put", "/templates/{templateID}/files/{hash}",
                    b -> c.call("PUT", uploadUrl[0], new byte[] {1, 2, 3}, Map.of("Content-Type", "application/octet-stream"))));
            calls.put("startTemplateBuild", new Call("post", "/v2/templates/{templateID}/builds/{buildID}",
                    b -> c.call("POST", "/v2/templates/" + tpl[0] + "/builds/" + tpl[1], Map.of("fromTemplate", "base",
                            "steps", List.of(Map.of("type", "ENV", "args", List.of("A", "1")))))));
            calls.put("templateBuildStatus", new Call("get", "/templates/{templateID}/builds/{buildID}/status", b -> {
                RawClient.Response r = c.call("GET", "/templates/" + tpl[0] + "/builds/" + tpl[1] + "/status", null);
                for (int i = 0; i < 100 && !r.json().path("status").asText().equals("ready"); i++) {
                    try {
                        Thread.sleep(50);
                    } catch (InterruptedException e) {
                        throw new IllegalStateException(e);
                    }
                    r = c.call("GET", "/templates/" + tpl[0] + "/builds/" + tpl[1] + "/status", null);
                }
                assertEquals("ready", r.json().path("status").asText(), r.body());
                return r;
            }));
            calls.put("templateAlias", new Call("get", "/templates/aliases/{alias}",
                    b -> c.call("GET", "/templates/aliases/contract-tpl", null)));
            calls.put("assignTemplateTags", new Call("post", "/templates/tags",
                    b -> c.call("POST", "/templates/tags", Map.of("target", "contract-tpl:v1", "tags", List.of("prod")))));
            calls.put("templateTags", new Call("get", "/templates/{templateID}/tags",
                    b -> c.call("GET", "/templates/" + tpl[0] + "/tags", null)));
            calls.put("deleteTemplateTags", new Call("delete", "/templates/tags",
                    b -> c.call("DELETE", "/templates/tags", Map.of("name", "contract-tpl", "tags", List.of("prod")))));
            calls.put("listTemplates", new Call("get", "/templates", b -> c.call("GET", "/templates", null)));
            calls.put("listTemplatesV2", new Call("get", "/v2/templates", b -> c.call("GET", "/v2/templates", null)));
            calls.put("deleteSnapshot", new Call("delete", "/templates/{templateID}",
                    b -> c.call("DELETE", "/templates/" + snapshot[0], null)));
            calls.put("pauseSandbox", new Call("post", "/sandboxes/{sandboxID}/pause", b -> {
                RawClient.Response r = c.call("POST", "/sandboxes/" + victim.id() + "/pause", Map.of());
                return r;
            }));
            calls.put("killSandbox", new Call("delete", "/sandboxes/{sandboxID}",
                    b -> c.call("DELETE", "/sandboxes/" + victim.id(), null)));
            calls.put("processStart", new Call("post", "/process.Process/Start", b -> {
                RawClient.Run run = c.run(b, "echo contract");
                assertEquals("contract\n", run.stdout());
                return new RawClient.Response(200, null, "", null);
            }));
            calls.put("processList", new Call("post", "/process.Process/List", b -> c.rpc(b, "process.Process/List", Map.of())));
            calls.put("processConnect", new Call("post", "/process.Process/Connect", b -> {
                int pid = startCat(c, b);
                // A finished attach is not needed: a Connect to an unknown pid must still answer with a stream.
                RawClient.Run r = c.stream(b, "process.Process/Connect", Map.of("process", Map.of("pid", 999999)), null);
                assertTrue(r.error() != null, "attach to an unknown pid ends with an error frame");
                assertTrue(pid > 0);
                return new RawClient.Response(200, null, "", null);
            }));
            calls.put("processSendInput", new Call("post", "/process.Process/SendInput", b -> {
                int pid = startCat(c, b);
                return c.rpc(b, "process.Process/SendInput", Map.of("process", Map.of("pid", pid),
                        "input", Map.of("stdin", Base64.getEncoder().encodeToString("x\n".getBytes()))));
            }));
            calls.put("processCloseStdin", new Call("post", "/process.Process/CloseStdin", b -> {
                int pid = startCat(c, b);
                return c.rpc(b, "process.Process/CloseStdin", Map.of("process", Map.of("pid", pid)));
            }));
            calls.put("processSendSignal", new Call("post", "/process.Process/SendSignal", b -> {
                int pid = startCat(c, b);
                return c.rpc(b, "process.Process/SendSignal", Map.of("process", Map.of("pid", pid), "signal", "SIGNAL_SIGKILL"));
            }));
            calls.put("processUpdate", new Call("post", "/process.Process/Update", b -> {
                int pid = startTagged(c, b, Map.of("process", Map.of("cmd", "/bin/cat"), "pty", Map.of("size", Map.of("cols", 80, "rows", 24))));
                return c.rpc(b, "process.Process/Update", Map.of("process", Map.of("pid", pid),
                        "pty", Map.of("size", Map.of("cols", 100, "rows", 30))));
            }));
            calls.put("processStreamInput", new Call("post", "/process.Process/StreamInput", b -> {
                int pid = startCat(c, b);
                byte[] start = RawClient.envelope(0, ("{\"start\":{\"process\":{\"pid\":" + pid + "}}}").getBytes());
                byte[] data = RawClient.envelope(0, "{\"data\":{\"input\":{\"stdin\":\"eAo=\"}}}".getBytes());
                byte[] body = java.nio.ByteBuffer.allocate(start.length + data.length).put(start).put(data).array();
                RawClient.Streamed s = c.streamRaw(b, "process.Process/StreamInput", body, Map.of(), null);
                assertTrue(s.endedCleanly() && s.error() == null, "StreamInput: " + s.frames());
                return new RawClient.Response(s.status(), null, "", null);
            }));
            calls.put("fsWatchDir", new Call("post", "/filesystem.Filesystem/WatchDir", b -> {
                // A stream that ends by itself: a missing directory ends it with not_found (the rest: watch.test.js).
                RawClient.Run r = c.stream(b, "filesystem.Filesystem/WatchDir", Map.of("path", "/home/user/no-such-dir"), null);
                assertEquals("not_found", r.error().path("code").asText(), String.valueOf(r.error()));
                return new RawClient.Response(200, null, "", null);
            }));
            calls.put("fsCreateWatcher", new Call("post", "/filesystem.Filesystem/CreateWatcher",
                    b -> c.rpc(b, "filesystem.Filesystem/CreateWatcher", Map.of("path", "/home/user"))));
            calls.put("fsGetWatcherEvents", new Call("post", "/filesystem.Filesystem/GetWatcherEvents", b -> {
                String id = c.rpc(b, "filesystem.Filesystem/CreateWatcher", Map.of("path", "/tmp")).json().path("watcherId").asText();
                return c.rpc(b, "filesystem.Filesystem/GetWatcherEvents", Map.of("watcherId", id));
            }));
            calls.put("fsRemoveWatcher", new Call("post", "/filesystem.Filesystem/RemoveWatcher", b -> {
                String id = c.rpc(b, "filesystem.Filesystem/CreateWatcher", Map.of("path", "/tmp")).json().path("watcherId").asText();
                return c.rpc(b, "filesystem.Filesystem/RemoveWatcher", Map.of("watcherId", id));
            }));
            calls.put("fsStat", new Call("post", "/filesystem.Filesystem/Stat", b -> c.rpc(b, "filesystem.Filesystem/Stat", Map.of("path", "/home/user/f.txt"))));
            calls.put("fsListDir", new Call("post", "/filesystem.Filesystem/ListDir", b -> c.rpc(b, "filesystem.Filesystem/ListDir", Map.of("path", "/home/user", "depth", 2))));
            calls.put("fsMakeDir", new Call("post", "/filesystem.Filesystem/MakeDir", b -> c.rpc(b, "filesystem.Filesystem/MakeDir", Map.of("path", "/home/user/new/dir"))));
            calls.put("fsMove", new Call("post", "/filesystem.Filesystem/Move", b -> c.rpc(b, "filesystem.Filesystem/Move", Map.of("source", "/home/user/f.txt", "destination", "/home/user/g.txt"))));
            calls.put("fsRemove", new Call("post", "/filesystem.Filesystem/Remove", b -> c.rpc(b, "filesystem.Filesystem/Remove", Map.of("path", "/home/user/d"))));
            calls.put("filesUpload", new Call("post", "/files", b -> c.upload(b, "/home/user/up.bin", new byte[] {1, 2, 3})));
            calls.put("filesDownload", new Call("get", "/files", b -> {
                var r = c.download(b, "/home/user/up.bin");
                return new RawClient.Response(r.statusCode(), null, "", r.headers());
            }));
            // Network and packages (Stockade extensions; the PUT is E2B's updateNetwork).
            calls.put("updateSandboxNetwork", new Call("put", "/sandboxes/{sandboxID}/network",
                    b -> c.call("PUT", "/sandboxes/" + b.id() + "/network", Map.of("allowOut", java.util.List.of("example.com")))));
            calls.put("getSandboxNetwork", new Call("get", "/sandboxes/{sandboxID}/network",
                    b -> c.call("GET", "/sandboxes/" + b.id() + "/network", null)));
            calls.put("getSandboxNetworkLog", new Call("get", "/sandboxes/{sandboxID}/network/log",
                    b -> c.call("GET", "/sandboxes/" + b.id() + "/network/log?limit=10", null)));
            calls.put("installPackages", new Call("post", "/sandboxes/{sandboxID}/packages",
                    b -> c.call("POST", "/sandboxes/" + b.id() + "/packages", Map.of("packages", java.util.List.of("contractpkg")))));
            calls.put("getMetrics", new Call("get", "/metrics", b -> c.call("GET", "/metrics", null)));
            // The admin API (the test server's key is the default tenant's admin key).
            String tenant = "contract" + Long.toString(System.nanoTime() % 1_000_000, 36);
            calls.put("createTenant", new Call("post", "/admin/tenants",
                    b -> c.call("POST", "/admin/tenants", Map.of("name", tenant, "quota", Map.of("sandboxes", 3)))));
            calls.put("listTenants", new Call("get", "/admin/tenants", b -> c.call("GET", "/admin/tenants", null)));
            calls.put("getTenant", new Call("get", "/admin/tenants/{tenant}", b -> c.call("GET", "/admin/tenants/" + tenant, null)));
            calls.put("setTenantQuota", new Call("put", "/admin/tenants/{tenant}/quota",
                    b -> c.call("PUT", "/admin/tenants/" + tenant + "/quota", Map.of("createsPerMinute", 60))));
            calls.put("createKey", new Call("post", "/admin/keys",
                    b -> c.call("POST", "/admin/keys", Map.of("tenant", tenant, "label", "contract"))));
            calls.put("listKeys", new Call("get", "/admin/keys", b -> c.call("GET", "/admin/keys?tenant=" + tenant, null)));
            calls.put("revokeKey", new Call("delete", "/admin/keys/{keyID}", b -> {
                String id = c.call("POST", "/admin/keys", Map.of("tenant", tenant)).json().get("id").asText();
                return c.call("DELETE", "/admin/keys/" + id, null);
            }));
            calls.put("readAudit", new Call("get", "/admin/audit", b -> c.call("GET", "/admin/audit?limit=5", null)));
            // The code interpreter (port 49999).
            calls.put("codeExecute", new Call("post", "/execute", b -> {
                RawClient.Cell cell = c.execute(b, "6 * 7");
                assertEquals("42", cell.text());
                return new RawClient.Response(cell.status(), null, "", null);
            }));
            calls.put("codeCreateContext", new Call("post", "/contexts", b -> c.codeCall(b, "POST", "/contexts", Map.of("cwd", "/tmp"))));
            calls.put("codeListContexts", new Call("get", "/contexts", b -> c.codeCall(b, "GET", "/contexts", null)));
            calls.put("codeRestartContext", new Call("post", "/contexts/{contextID}/restart", b -> {
                String id = c.codeCall(b, "POST", "/contexts", Map.of()).json().get("id").asText();
                return c.codeCall(b, "POST", "/contexts/" + id + "/restart", null);
            }));
            calls.put("codeRemoveContext", new Call("delete", "/contexts/{contextID}", b -> {
                String id = c.codeCall(b, "POST", "/contexts", Map.of()).json().get("id").asText();
                return c.codeCall(b, "DELETE", "/contexts/" + id, null);
            }));

            TreeSet<String> documented = new TreeSet<>();
            spec.get("paths").fields().forEachRemaining(p -> p.getValue().fields().forEachRemaining(m -> {
                if (m.getValue().has("operationId")) documented.add(m.getValue().get("operationId").asText());
            }));
            assertEquals(documented, new TreeSet<>(calls.keySet()), "operations documented vs exercised");

            List<String> problems = new ArrayList<>();
            for (var e : calls.entrySet()) {
                Call call = e.getValue();
                JsonNode op = spec.get("paths").get(call.path()).get(call.method());
                RawClient.Response r = call.send().apply(box);
                JsonNode responses = op.get("responses");
                if (!responses.has(Integer.toString(r.status()))) {
                    problems.add(e.getKey() + ": status " + r.status() + " is not documented (" + r.body() + ")");
                    continue;
                }
                boolean documentsSuccess = false;
                for (var it = responses.fieldNames(); it.hasNext(); ) documentsSuccess |= it.next().startsWith("2");
                if (documentsSuccess && r.status() >= 300) {
                    problems.add(e.getKey() + ": expected success, got " + r.status() + " " + r.body());
                }
                JsonNode schema = responses.get(Integer.toString(r.status())).path("content").path("application/json").path("schema");
                if (r.json() != null && !schema.isMissingNode()) checkRequired(e.getKey(), schema, r.json(), problems);
            }
            assertEquals(List.of(), problems);
            // Undocumented routes are not answered.
            assertEquals(404, c.call("GET", "/sandboxes/" + box.id() + "/bogus", null).status());
            assertEquals(404, c.call("GET", "/v3/anything", null).status());
        } finally {
            c.kill(box);
            c.call("DELETE", "/sandboxes/" + victim.id(), null);
        }
    }

    private static int startCat(RawClient c, RawClient.Box b) {
        return startTagged(c, b, Map.of("process", Map.of("cmd", "/bin/cat"), "stdin", true));
    }

    /** Starts {@code request} (a StartRequest without tag) in the background; its pid. */
    private static int startTagged(RawClient c, RawClient.Box b, Map<String, Object> request) {
        String tag = "cat-" + System.nanoTime();
        Map<String, Object> tagged = new java.util.HashMap<>(request);
        tagged.put("tag", tag);
        Thread.ofVirtual().start(() -> c.start(b, tagged, null));
        for (int i = 0; i < 100; i++) {
            for (JsonNode p : c.rpc(b, "process.Process/List", Map.of()).json().get("processes")) {
                if (tag.equals(p.path("tag").asText())) return p.get("pid").asInt();
            }
            try {
                Thread.sleep(50);
            } catch (InterruptedException ex) {
                throw new IllegalStateException(ex);
            }
        }
        throw new AssertionError("cat did not start");
    }

    private static void checkRequired(String op, JsonNode schema, JsonNode value, List<String> problems) {
        JsonNode s = resolve(schema);
        for (JsonNode part : s.path("allOf")) checkRequired(op, part, value, problems);
        if (s.path("type").asText().equals("array")) {
            for (JsonNode item : value) checkRequired(op, s.get("items"), item, problems);
            return;
        }
        for (JsonNode req : s.path("required")) {
            if (!value.has(req.asText())) problems.add(op + ": response lacks required field " + req.asText() + ": " + value);
        }
    }

    private static JsonNode resolve(JsonNode schema) {
        if (schema.has("$ref")) {
            String name = schema.get("$ref").asText().substring("#/components/schemas/".length());
            return spec.get("components").get("schemas").get(name);
        }
        return schema;
    }
}
