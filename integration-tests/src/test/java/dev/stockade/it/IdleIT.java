package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.stockade.conformance.RawClient;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The idle policy (create field {@code idleTimeout}, seconds): a sandbox nobody uses ends (or
 * pauses, with autoPause); a background job, a command still streaming, and requests keep it alive
 * — unlike the peers, whose idle timers kill long jobs. Its interpreter contexts do not count.
 */
class IdleIT extends OneServerPerClass {

    @Test
    void anUnusedSandboxEndsButABackgroundJobOrAStreamKeepsOneAlive() throws Exception {
        RawClient.Box unused = create(Map.of("idleTimeout", 2));
        RawClient.Box job = create(Map.of("idleTimeout", 2));
        RawClient.Box streaming = create(Map.of("idleTimeout", 2));
        RawClient.Box pausing = create(Map.of("idleTimeout", 2, "autoPause", true));
        try {
            assertEquals("1", c.execute(unused, "1").text(), "an interpreter context does not count as a job");
            c.run(job, "nohup sleep 30 > /dev/null 2>&1 &");
            Thread streamer = Thread.ofVirtual().start(() -> c.run(streaming, "sleep 6; echo streamed"));
            Thread.sleep(5000);
            assertEquals(404, c.call("GET", "/sandboxes/" + unused.id(), null).status(), "idle for 2 s: ended");
            assertEquals("paused", c.call("GET", "/sandboxes/" + pausing.id(), null).json().path("state").asText(),
                    "with autoPause, idle pauses instead");
            assertEquals("running", c.call("GET", "/sandboxes/" + job.id(), null).json().path("state").asText(),
                    "a background job keeps it alive");
            assertEquals("running", c.call("GET", "/sandboxes/" + streaming.id(), null).json().path("state").asText(),
                    "a command still streaming keeps it alive");
            assertEquals(2, c.call("GET", "/sandboxes/" + job.id(), null).json().path("idleTimeout").asInt());
            streamer.join();
            assertEquals(400, c.call("POST", "/v2/sandboxes", Map.of("templateID", "base", "idleTimeout", 0)).status());
        } finally {
            for (RawClient.Box b : new RawClient.Box[] {unused, job, streaming, pausing}) {
                c.call("DELETE", "/sandboxes/" + b.id(), null);
            }
        }
    }

    private static RawClient.Box create(Map<String, Object> extra) {
        Map<String, Object> body = new java.util.HashMap<>(extra);
        body.put("templateID", "base");
        body.put("timeout", 120);
        return c.create(body);
    }
}
