package dev.stockade.sdk.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class ProcessEventTest {

    private static ProcessEvent parse(String json) {
        return ProcessEvent.parse(Json.parse(json.getBytes(StandardCharsets.UTF_8), "test"));
    }

    @Test
    void parsesEveryKind() {
        assertEquals(new ProcessEvent.Start(42), parse("{\"event\":{\"start\":{\"pid\":42}}}"));
        ProcessEvent.Data d = (ProcessEvent.Data) parse("{\"event\":{\"data\":{\"stdout\":\"aGk=\"}}}");
        assertArrayEquals("hi".getBytes(), d.stdout());
        assertNull(d.stderr());
        d = (ProcessEvent.Data) parse("{\"event\":{\"data\":{\"stderr\":\"aGk=\"}}}");
        assertArrayEquals("hi".getBytes(), d.stderr());
        assertInstanceOf(ProcessEvent.Keepalive.class, parse("{\"event\":{\"keepalive\":{}}}"));
        assertEquals(new ProcessEvent.Other("pty"), parse("{\"event\":{\"pty\":{}}}"));
    }

    @Test
    void endEventWithZeroValuesLeftOut() {
        // protobuf JSON omits exitCode 0 and exited false
        ProcessEvent.End end = (ProcessEvent.End) parse("{\"event\":{\"end\":{\"status\":\"exit status 0\"}}}");
        assertEquals(0, end.exitCode());
        assertFalse(end.exited());
        assertNull(end.outcome());
    }

    @Test
    void endEventWithStockadeExtensions() {
        ProcessEvent.End end = (ProcessEvent.End) parse("{\"event\":{\"end\":{\"exitCode\":137,\"exited\":false,"
                + "\"status\":\"signal: killed\",\"error\":\"memory limit\",\"outcome\":\"oom_killed\","
                + "\"reason\":\"the sandbox ran out of its 512 MiB\"}}}");
        assertEquals(137, end.exitCode());
        assertEquals("oom_killed", end.outcome());
        assertEquals("the sandbox ran out of its 512 MiB", end.reason());
    }

    @Test
    void numbersAsStringsAreAccepted() {
        assertEquals(new ProcessEvent.Start(9), parse("{\"event\":{\"start\":{\"pid\":\"9\"}}}"));
    }
}
