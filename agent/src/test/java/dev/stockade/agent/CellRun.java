package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.fail;

import dev.stockade.protocol.CellEvent;
import dev.stockade.protocol.link.EventStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/** A cell's stream read to its end, with a deadline so that a broken agent fails the test. */
record CellRun(List<CellEvent> events, List<Long> arrivalNanos, String stdout, String stderr, CellEvent.End end) {

    static CellRun collect(EventStream<CellEvent> stream, Duration max) {
        List<CellEvent> events = new ArrayList<>();
        List<Long> times = new ArrayList<>();
        StringBuilder out = new StringBuilder();
        StringBuilder err = new StringBuilder();
        long deadline = System.nanoTime() + max.toNanos();
        try (stream) {
            while (System.nanoTime() < deadline) {
                Optional<CellEvent> next = stream.next(Duration.ofMillis(100));
                if (next.isEmpty()) {
                    continue;
                }
                CellEvent event = next.get();
                events.add(event);
                times.add(System.nanoTime());
                switch (event) {
                    case CellEvent.Stdout(String text) -> out.append(text);
                    case CellEvent.Stderr(String text) -> err.append(text);
                    case CellEvent.End end -> {
                        return new CellRun(events, times, out.toString(), err.toString(), end);
                    }
                    default -> { }
                }
            }
        }
        return fail("the cell did not end within " + max + "; events so far: " + events);
    }

    List<CellEvent.Result> results() {
        return events.stream().filter(e -> e instanceof CellEvent.Result).map(e -> (CellEvent.Result) e).toList();
    }

    /** The main result's text, or null when the cell had none. */
    String value() {
        return results().stream().filter(CellEvent.Result::isMainResult).map(r -> (String) r.data().get("text"))
                .findFirst().orElse(null);
    }

    CellEvent.Error error() {
        return events.stream().filter(e -> e instanceof CellEvent.Error).map(e -> (CellEvent.Error) e)
                .findFirst().orElse(null);
    }

    @Override
    public String toString() {
        return "CellRun[end=" + end + ", stdout=" + stdout + ", stderr=" + stderr + ", events=" + events + "]";
    }
}
