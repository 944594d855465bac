package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.conformance.RawClient;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The envd requests of the E2B Python SDK (2.45, connectrpc 0.11 over pyqwest) as they reach the
 * server, byte for byte where it matters, so that CI covers what differs from the JS SDK (CI has no
 * copy of the Python SDK; tests/e2b-py runs it for real). Recorded from the SDK on the wire:
 * <ul>
 *   <li>server-streaming RPCs (process.Process/Start) send their one request envelope as a chunked
 *       body (no Content-Length), with {@code Connect-Accept-Encoding}/{@code Connect-Content-Encoding:
 *       identity}, {@code Connect-Timeout-Ms} and {@code Accept-Encoding: gzip};</li>
 *   <li>unary RPCs carry {@code Content-Encoding: identity} and {@code Accept-Encoding: identity};</li>
 *   <li>JSON is Python's {@code json.dumps} (spaces after separators);</li>
 *   <li>an error body must be Connect's JSON with a string {@code code}: the SDK treats any other error
 *       answer as a proxy's plain HTTP error (its {@code plain_http_error});</li>
 *   <li>{@code files.write} is an httpx multipart part named {@code file} whose filename is the full path.</li>
 * </ul>
 */
class E2bPythonSdkWireIT extends OneServerPerClass {

    private static Map<String, String> unaryHeaders() {
        return Map.of("User-Agent", "connectrpc/0.11.1", "Connect-Protocol-Version", "1", "Accept-Encoding", "identity",
                "Content-Encoding", "identity", "Connect-Timeout-Ms", "60000");
    }

    @Test
    void startWithAChunkedBodyAndConnectPythonsHeadersStreamsTheCommand() {
        RawClient.Box b = c.create(Map.of("templateID", "base", "secure", true, "allow_internet_access", true, "envVars", Map.of()));
        try {
            String start = "{\"process\": {\"cmd\": \"/bin/bash\", \"args\": [\"-l\", \"-c\", \"echo $A; echo oops >&2; exit 3\"],"
                    + " \"envs\": {\"A\": \"from python\"}, \"cwd\": \"/home/user\"}, \"stdin\": false}";
            Map<String, String> h = new HashMap<>(Map.of("User-Agent", "connectrpc/0.11.1", "Connect-Accept-Encoding", "identity",
                    "Connect-Content-Encoding", "identity", "Connect-Timeout-Ms", "60000", "Accept-Encoding", "gzip"));
            RawClient.Streamed s = c.streamChunked(b, "process.Process/Start",
                    RawClient.envelope(0, start.getBytes(StandardCharsets.UTF_8)), h, null);
            assertEquals(200, s.status(), () -> String.valueOf(s.errorBody()));
            assertTrue(s.contentType().startsWith("application/connect+json"), s.contentType());
            assertTrue(s.pid() > 0, "the first event is start with the pid");
            assertEquals("from python\n", s.out());
            assertEquals("oops\n", s.err());
            assertEquals(3, s.end().path("exitCode").asInt(), s.end()::toString);
            assertTrue(s.endedCleanly() && s.error() == null, "the stream ends with an end-of-stream message and no error");
        } finally {
            c.kill(b);
        }
    }

    /**
     * envd ends a command's stream with {@code deadline_exceeded} (no end event) when the request's
     * Connect-Timeout-Ms passes: the async Python SDK learns of the timeout only from the server (its
     * client-side timer runs in another task), and raises TimeoutException from it.
     */
    @Test
    void theRequestsDeadlineEndsTheStreamWithDeadlineExceeded() {
        RawClient.Box b = c.create(Map.of("templateID", "base"));
        try {
            String start = "{\"process\": {\"cmd\": \"/bin/bash\", \"args\": [\"-l\", \"-c\", \"sleep 20\"], \"envs\": {}}, \"stdin\": false}";
            Map<String, String> h = Map.of("User-Agent", "connectrpc/0.11.1", "Connect-Accept-Encoding", "identity",
                    "Connect-Content-Encoding", "identity", "Connect-Timeout-Ms", "1500");
            long t0 = System.nanoTime();
            RawClient.Streamed s = c.streamChunked(b, "process.Process/Start",
                    RawClient.envelope(0, start.getBytes(StandardCharsets.UTF_8)), h, null);
            double secs = (System.nanoTime() - t0) / 1e9;
            assertEquals(200, s.status(), () -> String.valueOf(s.errorBody()));
            assertTrue(s.pid() > 0);
            assertEquals(null, s.end(), "no end event, as envd");
            assertEquals("deadline_exceeded", s.error().path("code").asText(), () -> String.valueOf(s.error()));
            assertTrue(secs >= 1.4 && secs < 5, "ended at the 1.5 s deadline, took " + secs + " s");
            RawClient.Run left = c.run(b, "pgrep -x sleep || true");
            assertEquals("", left.stdout(), "the command was killed at its deadline");
        } finally {
            c.kill(b);
        }
    }

    @Test
    void unaryCallsWithIdentityEncodingsAnswerPlainConnectJson() {
        RawClient.Box b = c.create(Map.of("templateID", "base"));
        try {
            RawClient.Response list = c.rpc(b, "process.Process/List", "{}", unaryHeaders());
            assertEquals(200, list.status(), list::body);
            assertTrue(list.headers().firstValue("Content-Type").orElse("").startsWith("application/json"));
            assertEquals("identity", list.headers().firstValue("Content-Encoding").orElse("identity"));
            assertTrue(list.json().has("processes") || list.json().isEmpty(), list::body);

            RawClient.Response dir = c.rpc(b, "filesystem.Filesystem/MakeDir", "{\"path\": \"/home/user/py dir\"}", unaryHeaders());
            assertEquals(200, dir.status(), dir::body);
            RawClient.Response stat = c.rpc(b, "filesystem.Filesystem/Stat", "{\"path\": \"/home/user/py dir\"}", unaryHeaders());
            assertEquals(200, stat.status(), stat::body);
            assertEquals("FILE_TYPE_DIRECTORY", stat.json().path("entry").path("type").asText(), stat::body);

            // A Connect error: JSON whose code is a string, which the SDK hands to connectrpc (→ NOT_FOUND,
            // the SDK's FileNotFoundException); any other error body it would take for a proxy's.
            RawClient.Response missing = c.rpc(b, "filesystem.Filesystem/Stat", "{\"path\": \"/home/user/none\"}", unaryHeaders());
            assertEquals(404, missing.status(), missing::body);
            assertTrue(missing.headers().firstValue("Content-Type").orElse("").startsWith("application/json"));
            JsonNode code = missing.json().path("code");
            assertTrue(code.isTextual(), missing::body);
            assertEquals("not_found", code.asText(), missing::body);
        } finally {
            c.kill(b);
        }
    }

    @Test
    void filesWriteAsHttpxSendsItAndReadBack() {
        RawClient.Box b = c.create(Map.of("templateID", "base"));
        try {
            String boundary = "74355938839fe96e9578d4dfcfce0e69";
            String body = "--" + boundary + "\r\n"
                    + "Content-Disposition: form-data; name=\"file\"; filename=\"/home/user/x.txt\"\r\n"
                    + "Content-Type: text/plain\r\n\r\n"
                    + "content from python\r\n"
                    + "--" + boundary + "--\r\n";
            Map<String, String> h = new HashMap<>(c.envd(b));
            h.put("Content-Type", "multipart/form-data; boundary=" + boundary);
            h.put("User-Agent", "e2b-python-sdk/2.45.1");
            RawClient.Response w = c.call("POST", "/files?path=%2Fhome%2Fuser%2Fx.txt", body, h);
            assertEquals(200, w.status(), w::body);
            assertEquals("x.txt", w.json().get(0).path("name").asText(), w::body);
            assertEquals("content from python", new String(c.download(b, "/home/user/x.txt").body(), StandardCharsets.UTF_8));
        } finally {
            c.kill(b);
        }
    }
}
