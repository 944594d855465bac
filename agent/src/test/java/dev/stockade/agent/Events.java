package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.fail;

import dev.stockade.protocol.AgentEvent;
import dev.stockade.protocol.link.EventStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** A process stream read to its end, with a deadline so that a broken agent fails the test. */
record Events(List<AgentEvent> all, byte[] stdout, byte[] stderr, AgentEvent.Ended ended) {

    static Events collect(EventStream<AgentEvent> stream, Duration max) {
        List<AgentEvent> all = new ArrayList<>();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        long deadline = System.nanoTime() + max.toNanos();
        try (stream) {
            while (System.nanoTime() < deadline) {
                Optional<AgentEvent> next = stream.next(Duration.ofMillis(100));
                if (next.isEmpty()) {
                    continue;
                }
                AgentEvent event = next.get();
                all.add(event);
                switch (event) {
                    case AgentEvent.Started s -> { }
                    case AgentEvent.Stdout(byte[] data) -> out.writeBytes(data);
                    case AgentEvent.Stderr(byte[] data) -> err.writeBytes(data);
                    case AgentEvent.Terminal(byte[] data) -> out.writeBytes(data);
                    case AgentEvent.Ended ended -> {
                        return new Events(all, out.toByteArray(), err.toByteArray(), ended);
                    }
                }
            }
        }
        return fail("the process did not end within " + max + "; events so far: " + all);
    }

    String out() {
        return new String(stdout, StandardCharsets.UTF_8);
    }

    String err() {
        return new String(stderr, StandardCharsets.UTF_8);
    }
}
