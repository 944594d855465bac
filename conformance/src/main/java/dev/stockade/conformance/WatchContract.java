package dev.stockade.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Directory watching (envd's WatchDir and its polled form) in the runtime's kernel: the agent's
 * inotify must report changes as envd names them and check the user's permissions, which gVisor's
 * user-space inotify does not do by itself. The SDK's stream is tested in tests/e2b-js (watch.test.js).
 */
public abstract class WatchContract extends RuntimeContract {
    RawClient.Box box;

    @BeforeAll
    void up() {
        startServer();
        box = c.create(Map.of("templateID", "base", "timeout", 300));
    }

    @AfterAll
    void down() {
        try {
            if (box != null) c.kill(box);
        } finally {
            stopServer();
        }
    }

    private JsonNode rpc(String method, Map<String, Object> body, int status) {
        RawClient.Response r = c.rpc(box, "filesystem.Filesystem/" + method, body);
        assertEquals(status, r.status(), r::body);
        return r.json();
    }

    @Test
    void changesAreReportedWithEnvdsNamesAndKindsAsTheUser() throws InterruptedException {
        assertEquals(0, c.run(box, "mkdir -p /home/user/w/old").exitCode());
        String id = rpc("CreateWatcher", Map.of("path", "w", "recursive", true), 200).path("watcherId").asText();
        assertEquals(200, c.upload(box, "/home/user/w/a.txt", "one".getBytes()).status());
        assertEquals(0, c.run(box, "mkdir /home/user/w/new && sleep 0.2 && echo x > /home/user/w/new/b.txt"
                + " && chmod 600 /home/user/w/a.txt && mv /home/user/w/a.txt /home/user/w/c.txt && rm /home/user/w/old -r").exitCode());
        List<String> seen = new ArrayList<>();
        List<String> wanted = List.of("CREATE a.txt", "WRITE a.txt", "CREATE new", "CREATE new/b.txt", "WRITE new/b.txt",
                "CHMOD a.txt", "RENAME a.txt", "CREATE c.txt", "REMOVE old");
        long deadline = System.nanoTime() + 10_000_000_000L;
        while (!seen.containsAll(wanted) && System.nanoTime() < deadline) {
            for (JsonNode e : rpc("GetWatcherEvents", Map.of("watcherId", id), 200).path("events")) {
                seen.add(e.path("type").asText().replace("EVENT_TYPE_", "") + " " + e.path("name").asText());
            }
            Thread.sleep(100);
        }
        assertTrue(seen.containsAll(wanted), "seen " + seen);
        assertTrue(seen.stream().noneMatch(s -> s.contains("stockade-tmp")), seen.toString());
        rpc("RemoveWatcher", Map.of("watcherId", id), 200);
        assertEquals("not_found", rpc("GetWatcherEvents", Map.of("watcherId", id), 404).path("code").asText());
    }

    @Test
    void aDirectoryTheUserMayNotReadIsRefusedAndMissingOnesAreNotFound() {
        JsonNode denied = rpc("CreateWatcher", Map.of("path", "/root"), 400);
        assertTrue(denied.path("message").asText().contains("Permission denied"), denied.toString());
        RawClient.Run stream = c.stream(box, "filesystem.Filesystem/WatchDir", Map.of("path", "/root"), null);
        assertEquals("invalid_argument", stream.error().path("code").asText(), String.valueOf(stream.error()));
        stream = c.stream(box, "filesystem.Filesystem/WatchDir", Map.of("path", "/home/user/nowhere"), null);
        assertEquals("not_found", stream.error().path("code").asText(), String.valueOf(stream.error()));
        // The sandbox's root may watch its own home.
        RawClient.Response asRoot = c.rpc(box, "filesystem.Filesystem/CreateWatcher", Map.of("path", "/root"),
                Map.of("Authorization", "Basic " + java.util.Base64.getEncoder().encodeToString("root:".getBytes())));
        assertEquals(200, asRoot.status(), asRoot::body);
        rpc("RemoveWatcher", Map.of("watcherId", asRoot.json().path("watcherId").asText()), 200);
    }
}
