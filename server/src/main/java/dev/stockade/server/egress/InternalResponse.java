package dev.stockade.server.egress;

import java.io.ByteArrayInputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * An {@link InternalSite}'s answer. The proxy sends it with {@code Connection: close} and closes
 * {@link #body()} afterwards.
 *
 * @param status HTTP status
 * @param headers response headers (Content-Type and the like); the proxy sets Content-Length
 *     from {@link #length()} and Connection itself
 * @param length body length in bytes, or -1 if unknown (the proxy then ends the body by closing)
 * @param body the body (empty for HEAD)
 */
public record InternalResponse(int status, Map<String, String> headers, long length, InputStream body) {
    /**
     * A header whose value the proxy sends as the status line's reason phrase (and drops): how a
     * site explains a refusal to clients that print only the phrase, such as pip.
     */
    public static final String REASON_HEADER = "X-Stockade-Reason";

    public InternalResponse {
        headers = Map.copyOf(headers);
    }

    /** A short text answer, e.g. a 403 that names the policy and the package. */
    public static InternalResponse text(int status, String message) {
        byte[] b = (message.endsWith("\n") ? message : message + "\n").getBytes(StandardCharsets.UTF_8);
        return new InternalResponse(status, Map.of("Content-Type", "text/plain; charset=utf-8"), b.length,
                new ByteArrayInputStream(b));
    }
}
