package dev.stockade.sdk.internal;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Base64;

/**
 * The messages of {@code process.Process/Start} and {@code /Connect} streams:
 * {@code {"event": {"start"|"data"|"end"|"keepalive": {...}}}}. Protobuf JSON leaves out zero
 * values, so a missing field reads as 0, false or null.
 */
public sealed interface ProcessEvent {

    record Start(int pid) implements ProcessEvent {}

    /** One chunk of output; exactly one of the two is non-null. */
    record Data(byte[] stdout, byte[] stderr) implements ProcessEvent {}

    /** The process ended; {@code outcome} and {@code reason} are Stockade's extension, null elsewhere. */
    record End(int exitCode, boolean exited, String status, String error, String outcome, String reason)
            implements ProcessEvent {}

    record Keepalive() implements ProcessEvent {}

    /** An event kind this SDK does not know (e.g. pty output); ignored by readers. */
    record Other(String kind) implements ProcessEvent {}

    static ProcessEvent parse(JsonNode message) {
        JsonNode event = message.path("event");
        if (event.has("start")) return new Start((int) Json.number(event.get("start"), "pid"));
        if (event.has("data")) {
            JsonNode d = event.get("data");
            if (d.hasNonNull("stdout")) return new Data(decode(d.get("stdout")), null);
            if (d.hasNonNull("stderr")) return new Data(null, decode(d.get("stderr")));
            return new Other("data");
        }
        if (event.has("end")) {
            JsonNode e = event.get("end");
            return new End((int) Json.number(e, "exitCode"), e.path("exited").asBoolean(false), Json.text(e, "status"),
                    Json.text(e, "error"), Json.text(e, "outcome"), Json.text(e, "reason"));
        }
        if (event.has("keepalive")) return new Keepalive();
        var names = event.fieldNames();
        return new Other(names.hasNext() ? names.next() : "");
    }

    private static byte[] decode(JsonNode base64) {
        try {
            return Base64.getDecoder().decode(base64.asText());
        } catch (IllegalArgumentException e) {
            // protobuf JSON parsers also accept URL-safe base64
            return Base64.getUrlDecoder().decode(base64.asText());
        }
    }
}
