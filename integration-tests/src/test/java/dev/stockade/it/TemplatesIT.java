package dev.stockade.it;

import static dev.stockade.conformance.ApiAssertions.assertError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.conformance.RawClient;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * E2B's Template API through a real server with raw HTTP, as the e2b 2.51 SDKs call it (issue 17,
 * SPECIFICATION S17.*a): build requests, the files endpoint and its signed upload URL (no API key),
 * starting and polling builds (paging, the empty page after the end), ENV/WORKDIR/USER builds whose
 * alias then creates sandboxes with the build's environment, RUN/COPY and image builds failing at
 * their step, aliases, tags, list, delete, %-encoded names, and tenant isolation (404, never 403).
 */
class TemplatesIT extends OneServerPerClass {
    static RawClient beta;

    @BeforeAll
    static void betaTenant() {
        TenantsIT.createTenant(c, "tplbeta", null);
        beta = new RawClient(c.base, TenantsIT.createKey(c, "tplbeta", false).secret());
    }

    record Requested(String templateId, String buildId) {}

    static Requested request(RawClient client, Map<String, Object> body) {
        RawClient.Response r = client.call("POST", "/v3/templates", body);
        assertEquals(202, r.status(), r::body);
        for (String f : List.of("templateID", "buildID", "public", "names", "tags", "aliases")) assertTrue(r.json().has(f), f + ": " + r.body());
        assertTrue(r.json().get("templateID").asText().matches("[a-z0-9]{20}"), r::body);
        assertTrue(r.json().get("buildID").asText().matches("[0-9a-f-]{36}"), r::body);
        assertFalse(r.json().get("public").asBoolean());
        return new Requested(r.json().get("templateID").asText(), r.json().get("buildID").asText());
    }

    static JsonNode status(RawClient client, Requested b, String query) {
        RawClient.Response r = client.call("GET", "/templates/" + b.templateId() + "/builds/" + b.buildId() + "/status" + query, null);
        assertEquals(200, r.status(), r::body);
        assertTrue(r.json().get("logs").isArray() && r.json().get("logEntries").isArray(), r::body);
        return r.json();
    }

    static JsonNode waitFor(RawClient client, Requested b) throws InterruptedException {
        for (int i = 0; i < 200; i++) {
            JsonNode s = status(client, b, "");
            String st = s.get("status").asText();
            if (st.equals("ready") || st.equals("error")) return s;
            assertEquals("building", st, s::toString);
            Thread.sleep(100);
        }
        throw new AssertionError("the build did not end");
    }

    static void start(RawClient client, Requested b, Map<String, Object> body) {
        RawClient.Response r = client.call("POST", "/v2/templates/" + b.templateId() + "/builds/" + b.buildId(), body);
        assertEquals(202, r.status(), r::body);
        assertEquals("", r.body());
        assertEquals("0", r.headers().firstValue("Content-Length").orElse("?"), "openapi-fetch reads an empty 2xx body only with Content-Length: 0");
    }

    static Map<String, Object> step(String type, String... args) {
        return Map.of("type", type, "args", List.of(args), "force", false);
    }

    @Test
    void anEnvWorkdirUserBuildFromBaseBecomesReadyAndItsAliasCreatesSandboxesWithItsEnvironment() throws Exception {
        Requested b = request(c, Map.of("name", "it-env", "tags", List.of("extra"), "cpuCount", 1, "memoryMB", 512));
        assertEquals("waiting", status(c, b, "").get("status").asText());
        Requested again = request(c, Map.of("name", "IT-ENV:v2 "));
        assertEquals(b.templateId(), again.templateId(), "same alias, same template");
        assertNotEquals(b.buildId(), again.buildId());

        start(c, b, Map.of("fromTemplate", "base", "force", false, "startCmd", "sleep 1", "readyCmd", "true",
                "steps", List.of(
                        step("ENV", "A", "1", "B", "$A-x", "P", "${PATH}:/opt", "Q", "$(id)`x`"),
                        Map.of("type", "WORKDIR", "args", List.of("/srv"), "force", true, "unknownKey", 1),
                        step("WORKDIR", "app"),
                        step("USER", "root"))));
        JsonNode done = waitFor(c, b);
        assertEquals("ready", done.get("status").asText(), done::toString);
        assertFalse(done.has("reason"), done::toString);
        // The whole log, one entry a page; then the page after the end is empty.
        List<JsonNode> entries = new ArrayList<>();
        for (int offset = 0; ; offset++) {
            JsonNode page = status(c, b, "?logsOffset=" + offset + "&limit=1");
            if (page.get("logEntries").isEmpty()) break;
            assertEquals(1, page.get("logEntries").size());
            entries.add(page.get("logEntries").get(0));
        }
        assertTrue(entries.size() >= 6, entries::toString);
        for (JsonNode e : entries) {
            Instant.parse(e.get("timestamp").asText());
            assertTrue(List.of("debug", "info", "warn", "error").contains(e.get("level").asText()), e::toString);
        }
        assertEquals(entries.size(), status(c, b, "").get("logEntries").size());
        assertTrue(status(c, b, "?logsOffset=" + entries.size()).get("logEntries").isEmpty());
        assertTrue(status(c, b, "?level=warn").get("logEntries").size() >= 1, "startCmd is recorded, not run: a warning says so");
        assertError(c.call("GET", "/templates/" + b.templateId() + "/builds/" + b.buildId() + "/status?limit=101", null), 400);
        assertError(c.call("GET", "/templates/" + b.templateId() + "/builds/" + b.buildId() + "/status?logsOffset=-1", null), 400);
        assertError(c.call("GET", "/templates/" + b.templateId() + "/builds/" + b.buildId() + "/status?level=trace", null), 400);
        // A started build cannot be started again.
        assertError(c.call("POST", "/v2/templates/" + b.templateId() + "/builds/" + b.buildId(), Map.of("fromTemplate", "base")), 409);

        RawClient.Box box = c.create(Map.of("templateID", "it-env", "timeout", 60, "envVars", Map.of("B", "override")));
        try {
            RawClient.Response got = c.call("GET", "/sandboxes/" + box.id(), null);
            assertEquals(b.templateId(), got.json().path("templateID").asText(), got::body);
            assertEquals("it-env", got.json().path("alias").asText(), got::body);
            String env = c.run(box, "env").stdout();
            assertTrue(env.contains("\nA=1\n") || env.startsWith("A=1\n"), env);
            assertTrue(env.contains("B=override\n"), env);
            assertTrue(env.contains("P=/home/user/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt\n"), env);
            assertTrue(env.contains("Q=$(id)`x`\n"), "no command substitution: " + env);
            assertEquals("root\n", c.run(box, "whoami").stdout(), "the build's USER: commands naming no user run as it");
            assertEquals("user\n", c.run(box, "whoami", "user").stdout());
        } finally {
            c.kill(box);
        }
        // By tag, and through the tag list.
        RawClient.Box tagged = c.create(Map.of("templateID", "it-env:extra", "timeout", 60));
        try {
            assertEquals("1\n", c.run(tagged, "echo $A").stdout());
        } finally {
            c.kill(tagged);
        }
        RawClient.Response tags = c.call("GET", "/templates/" + b.templateId() + "/tags", null);
        assertEquals(200, tags.status(), tags::body);
        List<String> names = new ArrayList<>();
        for (JsonNode t : tags.json()) {
            names.add(t.get("tag").asText());
            assertEquals(b.buildId(), t.get("buildID").asText());
            Instant.parse(t.get("createdAt").asText());
        }
        assertEquals(List.of("default", "extra"), names);
        // v2 was requested, never started: creating from it finds no ready build.
        assertError(c.call("POST", "/sandboxes", Map.of("templateID", "it-env:v2", "timeout", 60)), 400);
    }

    @Test
    void runAndCopyStepsImagesAndUnknownBasesFailAtTheirStep() throws Exception {
        Requested run = request(c, Map.of("name", "it-run"));
        start(c, run, Map.of("fromTemplate", "base", "steps", List.of(step("RUN", "echo hi", "root"), step("ENV", "A", "1"))));
        JsonNode s = waitFor(c, run);
        assertEquals("error", s.get("status").asText(), s::toString);
        assertEquals("1", s.at("/reason/step").asText(), s::toString);
        assertTrue(s.at("/reason/message").asText().startsWith("RUN/COPY steps are not built yet"), s::toString);
        assertTrue(s.at("/reason/logEntries").isArray(), s::toString);

        Requested copy = request(c, Map.of("name", "it-run"));
        start(c, copy, Map.of("fromTemplate", "base", "steps", List.of(step("ENV", "A", "1"),
                Map.of("type", "COPY", "args", List.of("a", "/b", "", ""), "filesHash", "a".repeat(64), "gzip", false))));
        assertEquals("2", waitFor(c, copy).at("/reason/step").asText());

        Requested image = request(c, Map.of("name", "it-run"));
        start(c, image, Map.of("fromImage", "ubuntu:22.04", "steps", List.of()));
        s = waitFor(c, image);
        assertEquals("base", s.at("/reason/step").asText(), s::toString);
        assertEquals("building from an image is not supported yet; use fromTemplate('base')", s.at("/reason/message").asText());

        Requested unknown = request(c, Map.of("name", "it-run"));
        start(c, unknown, Map.of("fromTemplate", "no-such-template"));
        assertEquals("base", waitFor(c, unknown).at("/reason/step").asText());

        Requested user = request(c, Map.of("name", "it-run"));
        start(c, user, Map.of("fromTemplate", "base", "steps", List.of(step("ENV", "A", "1"), step("USER", "bob"))));
        assertEquals("2", waitFor(c, user).at("/reason/step").asText());
        // A failed template cannot be created from, or built on.
        assertError(c.call("POST", "/sandboxes", Map.of("templateID", "it-run", "timeout", 60)), 400);
    }

    @Test
    void aBuildFromATenantsReadyTemplateInheritsItsConfig() throws Exception {
        Requested parent = request(c, Map.of("name", "it-parent"));
        start(c, parent, Map.of("fromTemplate", "base", "steps", List.of(step("ENV", "X", "from-parent"))));
        assertEquals("ready", waitFor(c, parent).get("status").asText());
        Requested child = request(c, Map.of("name", "it-child"));
        start(c, child, Map.of("fromTemplate", "it-parent", "steps", List.of(step("ENV", "Y", "$X+child"))));
        assertEquals("ready", waitFor(c, child).get("status").asText());
        RawClient.Box box = c.create(Map.of("templateID", "it-child", "timeout", 60));
        try {
            assertEquals("from-parent from-parent+child\n", c.run(box, "echo $X $Y").stdout());
            assertEquals("user\n", c.run(box, "whoami").stdout(), "no USER step: the default user");
        } finally {
            c.kill(box);
        }
        // Another tenant cannot build on it.
        Requested foreign = request(beta, Map.of("name", "it-foreign"));
        start(beta, foreign, Map.of("fromTemplate", "it-parent"));
        assertEquals("base", waitFor(beta, foreign).at("/reason/step").asText());
    }

    @Test
    void badRequestsAre400AndBuiltInNamesCannotBeBuiltTaggedOrDeleted() {
        assertError(c.call("POST", "/v3/templates", Map.of()), 400);
        assertError(c.call("POST", "/v3/templates", Map.of("name", "Bad Name!")), 400);
        assertError(c.call("POST", "/v3/templates", Map.of("name", "ok:bad tag")), 400);
        assertError(c.call("POST", "/v3/templates", Map.of("name", "ok", "tags", List.of(":x"))), 400);
        assertError(c.call("POST", "/v3/templates", Map.of("name", "ok", "tags", "notalist")), 400);
        assertError(c.call("POST", "/v3/templates", Map.of("name", "other-tenant/ok")), 400);
        assertError(c.call("POST", "/v3/templates", "{not json"), 400);
        assertError(c.call("POST", "/v3/templates", Map.of("name", "base")), 409);
        assertError(c.call("POST", "/v3/templates", Map.of("name", "python-hardened:v1")), 409);
        Requested b = request(c, Map.of("name", "default/it-bad"));
        String startPath = "/v2/templates/" + b.templateId() + "/builds/" + b.buildId();
        assertError(c.call("POST", startPath, Map.of("fromTemplate", "base", "fromImage", "x")), 400);
        assertError(c.call("POST", startPath, Map.of("steps", List.of())), 400);
        assertError(c.call("POST", startPath, Map.of("fromTemplate", "base", "steps", List.of(Map.of("args", List.of())))), 400);
        assertError(c.call("POST", startPath, Map.of("fromTemplate", "base", "steps", "x")), 400);
        assertError(c.call("POST", "/v2/templates/" + b.templateId() + "/builds/00000000-0000-0000-0000-000000000000",
                Map.of("fromTemplate", "base")), 404);
        assertError(c.call("POST", "/templates/tags", Map.of("target", "base", "tags", List.of("x"))), 409);
        assertError(c.call("DELETE", "/templates/base", null), 409);
        assertError(c.call("GET", "/templates/aliases/nope-nope", null), 404);
        assertEquals(200, c.call("GET", "/templates/aliases/base", null).status());
        assertEquals(200, c.call("GET", "/templates/aliases/code-interpreter-v1-hardened", null).status());
        assertError(c.call("GET", "/templates/" + b.templateId() + "/files/ABC", null), 400);
        assertError(c.call("GET", "/templates/nosuchtemplate/files/" + "a".repeat(64), null), 404);
    }

    @Test
    void uploadsGoToTheSignedUrlWithoutAnApiKeyAndATamperedUrlIsRefused() throws Exception {
        Requested b = request(c, Map.of("name", "it-files"));
        String hash = "0123456789abcdef".repeat(4);
        RawClient.Response files = c.call("GET", "/templates/" + b.templateId() + "/files/" + hash, null);
        assertEquals(201, files.status(), files::body);
        assertFalse(files.json().get("present").asBoolean());
        String url = files.json().get("url").asText();
        assertTrue(url.startsWith(c.base.toString().replaceAll("/$", "") + "/templates/" + b.templateId() + "/files/" + hash + "?"), url);
        byte[] archive = "not really a tar.gz, kept as bytes".getBytes(StandardCharsets.UTF_8);

        // Two concurrent PUTs of the same hash both succeed (the SDK may send them for identical COPY steps).
        Thread other = Thread.ofVirtual().start(() -> assertEquals(200, put(url, archive)));
        assertEquals(200, put(url, archive));
        other.join();
        RawClient.Response again = c.call("GET", "/templates/" + b.templateId() + "/files/" + hash, null);
        assertTrue(again.json().get("present").asBoolean(), again::body);
        assertTrue(again.json().has("url"), "forceUpload needs the url even when present");
        java.nio.file.Path stored = ts.dataDir.resolve("template-files/default/" + hash);
        assertEquals(new String(archive, StandardCharsets.UTF_8), java.nio.file.Files.readString(stored));

        assertEquals(401, put(url.replace(hash, "f" + hash.substring(1)), archive), "another hash");
        assertEquals(401, put(url.replace("tenant=default", "tenant=tplbeta"), archive), "another tenant");
        assertEquals(401, put(url.replaceAll("expires=[0-9]+", "expires=99999999999"), archive), "another expiry");
        assertEquals(401, put(url.replaceAll("&signature=.*", ""), archive), "no signature");
        // Chunked (no Content-Length), and a declared size over the limit.
        HttpResponse<String> chunked = c.http.send(HttpRequest.newBuilder(URI.create(url))
                .PUT(HttpRequest.BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(archive))).build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(400, chunked.statusCode(), chunked.body());
        assertEquals(413, rawStatus(URI.create(url), "PUT", 8L << 30));
        // Another tenant does not see the template or the upload.
        assertError(beta.call("GET", "/templates/" + b.templateId() + "/files/" + hash, null), 404);
    }

    @Test
    void aliasesTagsListAndDeleteArePerTenantAndAcceptPercentEncodedNames() throws Exception {
        Requested b = request(c, Map.of("name", "it-tags:v1"));
        start(c, b, Map.of("fromTemplate", "base", "steps", List.of(step("ENV", "T", "1"))));
        assertEquals("ready", waitFor(c, b).get("status").asText());

        RawClient.Response alias = c.call("GET", "/templates/aliases/it-tags", null);
        assertEquals(200, alias.status(), alias::body);
        assertEquals(b.templateId(), alias.json().get("templateID").asText());
        assertFalse(alias.json().get("public").asBoolean());
        assertEquals(200, c.call("GET", "/templates/aliases/default%2Fit-tags", null).status(), "%2F-encoded namespace");
        assertError(beta.call("GET", "/templates/aliases/it-tags", null), 404);

        RawClient.Response assigned = c.call("POST", "/templates/tags", Map.of("target", "it-tags:v1", "tags", List.of("prod", "Latest")));
        assertEquals(201, assigned.status(), assigned::body);
        assertEquals(b.buildId(), assigned.json().get("buildID").asText());
        assertEquals(List.of("prod", "latest"), List.of(assigned.json().get("tags").get(0).asText(), assigned.json().get("tags").get(1).asText()));
        assertError(c.call("POST", "/templates/tags", Map.of("target", "it-tags:nope", "tags", List.of("x"))), 404);
        assertError(c.call("POST", "/templates/tags", Map.of("target", "it-tags:v1", "tags", List.of("it-tags:"))), 400);
        assertError(c.call("POST", "/templates/tags", Map.of("target", "it-tags:v1")), 400);
        assertError(beta.call("POST", "/templates/tags", Map.of("target", "it-tags:v1", "tags", List.of("x"))), 404);
        RawClient.Box box = c.create(Map.of("templateID", "it-tags:prod", "timeout", 60));
        c.kill(box);

        RawClient.Response byEncodedName = c.call("GET", "/templates/default%2Fit-tags/tags", null);
        assertEquals(200, byEncodedName.status(), byEncodedName::body);
        assertEquals(3, byEncodedName.json().size(), byEncodedName::body); // latest, prod, v1 (a tagged name sets no default)
        assertEquals(200, c.call("GET", "/templates/" + b.templateId() + "/builds/" + b.buildId() + "/status", null).status());
        assertError(c.call("GET", "/templates/it-tags%3Av1/tags", null), 404);

        assertEquals(204, c.call("DELETE", "/templates/tags", Map.of("name", "it-tags", "tags", List.of("prod"))).status());
        assertError(c.call("DELETE", "/templates/tags", Map.of("name", "it-tags", "tags", List.of("prod"))), 404);
        assertError(c.call("DELETE", "/templates/tags", Map.of("name", "it-tags", "tags", List.of("default"))), 400);
        assertError(c.call("DELETE", "/templates/tags", Map.of("name", "it-tags:v1", "tags", List.of("latest"))), 400);
        assertError(beta.call("DELETE", "/templates/tags", Map.of("name", "it-tags", "tags", List.of("latest"))), 404);

        for (String path : List.of("/templates", "/v2/templates")) {
            RawClient.Response list = c.call("GET", path, null);
            assertEquals(200, list.status(), list::body);
            JsonNode mine = null;
            for (JsonNode t : list.json()) if (t.get("templateID").asText().equals(b.templateId())) mine = t;
            assertTrue(mine != null, list::body);
            assertEquals("ready", mine.get("buildStatus").asText());
            assertEquals("it-tags", mine.get("aliases").get(0).asText());
            assertEquals(b.buildId(), mine.get("buildID").asText());
            RawClient.Response theirs = beta.call("GET", path, null);
            assertFalse(theirs.body().contains(b.templateId()) || theirs.body().contains("\"it-tags\""), theirs::body);
        }
        assertError(beta.call("GET", "/templates/" + b.templateId() + "/builds/" + b.buildId() + "/status", null), 404);
        assertError(beta.call("GET", "/templates/" + b.templateId() + "/tags", null), 404);
        assertError(beta.call("DELETE", "/templates/" + b.templateId(), null), 404);

        assertEquals(204, c.call("DELETE", "/templates/it-tags", null).status());
        assertError(c.call("GET", "/templates/" + b.templateId() + "/tags", null), 404);
        assertError(c.call("GET", "/templates/aliases/it-tags", null), 404);
        assertError(c.call("POST", "/sandboxes", Map.of("templateID", "it-tags", "timeout", 60)), 400);
        assertError(c.call("DELETE", "/templates/" + b.templateId(), null), 404);
    }

    /** The records live in the store, and a sandbox taken over by the next server keeps its template's env and user. */
    @Test
    void templatesAndTheirSandboxesDefaultsOutliveARestart() throws Exception {
        java.nio.file.Path data = java.nio.file.Files.createTempDirectory(java.nio.file.Path.of("/tmp/stockade-it"), "d");
        java.nio.file.Files.setPosixFilePermissions(data, java.nio.file.attribute.PosixFilePermissions.fromString("rwx--x--x"));
        var config = dev.stockade.server.config.ServerConfig.defaults(data).withApiKey(dev.stockade.conformance.TestServer.KEY);
        RawClient.Box box;
        Requested b;
        var first = dev.stockade.server.StockadeServer.start(config);
        try {
            RawClient one = new RawClient(first.url(), dev.stockade.conformance.TestServer.KEY);
            b = request(one, Map.of("name", "it-restart"));
            start(one, b, Map.of("fromTemplate", "base", "steps", List.of(step("ENV", "A", "kept"), step("USER", "root"))));
            assertEquals("ready", waitFor(one, b).get("status").asText());
            box = one.create(Map.of("templateID", "it-restart", "timeout", 120));
        } finally {
            assertEquals(1, first.stopLeavingSandboxes(5));
        }
        try (var next = dev.stockade.server.StockadeServer.start(config)) {
            RawClient two = new RawClient(next.url(), dev.stockade.conformance.TestServer.KEY);
            assertEquals("kept root\n", two.run(box, "echo $A $(whoami)").stdout(), "taken over with its template's env and user");
            two.kill(box);
            assertEquals("ready", status(two, b, "").get("status").asText());
            assertTrue(status(two, b, "").get("logEntries").size() > 0, "the log is kept with the build");
            assertEquals(200, two.call("GET", "/templates/aliases/it-restart", null).status());
            RawClient.Box again = two.create(Map.of("templateID", "it-restart", "timeout", 60));
            assertEquals("kept\n", two.run(again, "echo $A").stdout());
            two.kill(again);
        }
        dev.stockade.conformance.TestServer.assertNoLeaks(data);
        dev.stockade.conformance.TestServer.deleteTree(data);
    }

    private static int put(String url, byte[] body) {
        try {
            // As the SDK: no API key, no Content-Type, a fixed Content-Length.
            return c.http.send(HttpRequest.newBuilder(URI.create(url)).PUT(HttpRequest.BodyPublishers.ofByteArray(body)).build(),
                    HttpResponse.BodyHandlers.discarding()).statusCode();
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        } catch (InterruptedException e) {
            throw new IllegalStateException(e);
        }
    }

    /** The status line's code of a request that declares a Content-Length it never sends. */
    private static int rawStatus(URI url, String method, long length) throws IOException {
        try (Socket s = new Socket(url.getHost(), url.getPort())) {
            OutputStream out = s.getOutputStream();
            out.write((method + " " + url.getRawPath() + "?" + url.getRawQuery() + " HTTP/1.1\r\nHost: " + url.getHost() + ":"
                    + url.getPort() + "\r\nContent-Length: " + length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = s.getInputStream();
            StringBuilder line = new StringBuilder();
            for (int ch = in.read(); ch >= 0 && ch != '\n'; ch = in.read()) line.append((char) ch);
            return Integer.parseInt(line.toString().split(" ")[1]);
        }
    }
}
