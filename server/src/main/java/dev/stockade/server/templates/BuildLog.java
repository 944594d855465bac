package dev.stockade.server.templates;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * A build's log as E2B's status endpoint pages it ({@code logEntries[logsOffset, logsOffset+limit)}):
 * entries with an RFC 3339 timestamp, a level (debug, info, warn, error), a message and the step
 * ("base", "1".."N", "finalize"). Bounded at {@link #MAX} entries (the last one then says the rest
 * was dropped). Written by the build thread, read by status requests while the build runs;
 * stored as JSON in the build's row when it ends. Thread-safe (synchronized).
 */
public final class BuildLog {
    public static final int MAX = 10_000;
    private static final ObjectMapper JSON = new ObjectMapper();

    /** One entry; {@code level} is one of E2B's LogLevel values. */
    public record Entry(Instant timestamp, String level, String message, String step) {}

    private final List<Entry> entries = new ArrayList<>();
    private boolean truncated;

    public synchronized void add(String level, String step, String message) {
        if (truncated) return;
        if (entries.size() == MAX - 1) {
            entries.add(new Entry(Instant.now(), "warn", "the build log holds at most " + MAX + " entries: the rest was dropped", step));
            truncated = true;
            return;
        }
        entries.add(new Entry(Instant.now(), level, message, step));
    }

    /**
     * Entries {@code [offset, offset+limit)} of those at {@code minLevel} or above (all when null):
     * the offset counts what a client filtering the same way has received. Empty past the end.
     */
    public synchronized List<Entry> page(int offset, int limit, String minLevel) {
        List<Entry> kept = minLevel == null ? entries : entries.stream().filter(e -> rank(e.level()) >= rank(minLevel)).toList();
        if (offset >= kept.size()) return List.of();
        return List.copyOf(kept.subList(offset, Math.min(kept.size(), offset + limit)));
    }

    /** A step's entries at warn level or above (E2B's reason.logEntries). */
    public synchronized List<Entry> warnings(String step) {
        return entries.stream().filter(e -> step.equals(e.step()) && rank(e.level()) >= rank("warn")).toList();
    }

    static int rank(String level) {
        return switch (level) {
            case "debug" -> 0;
            case "info" -> 1;
            case "warn" -> 2;
            default -> 3;
        };
    }

    public synchronized String toJson() {
        return entries(JSON, entries).toString();
    }

    /** Entries as E2B's BuildLogEntry objects. */
    public static ArrayNode entries(ObjectMapper json, List<Entry> entries) {
        ArrayNode a = json.createArrayNode();
        for (Entry e : entries) {
            var n = a.addObject();
            n.put("timestamp", e.timestamp().toString());
            n.put("level", e.level());
            n.put("message", e.message());
            if (e.step() != null) n.put("step", e.step());
        }
        return a;
    }

    public static BuildLog fromJson(String text) {
        BuildLog log = new BuildLog();
        if (text == null) return log;
        try {
            for (JsonNode n : JSON.readTree(text)) {
                log.entries.add(new Entry(Instant.parse(n.path("timestamp").asText()), n.path("level").asText(),
                        n.path("message").asText(), n.hasNonNull("step") ? n.get("step").asText() : null));
            }
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("bug: a stored build log is not JSON: " + e.getMessage(), e);
        }
        return log;
    }
}
