package dev.stockade.sdk.internal;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.sdk.AuthenticationException;
import dev.stockade.sdk.InvalidArgumentException;
import dev.stockade.sdk.NotFoundException;
import dev.stockade.sdk.RateLimitException;
import dev.stockade.sdk.SandboxException;
import dev.stockade.sdk.StockadeException;
import dev.stockade.sdk.TimeoutException;
import java.nio.charset.StandardCharsets;
import java.util.Locale;

/**
 * A failure the server reported, before it becomes a public exception. The one place where HTTP
 * statuses and Connect codes turn into the SDK's exception types, following the E2B SDKs' tables
 * so that the same failure has the same type in every SDK.
 *
 * @param connectCode the Connect code ({@code not_found}, ...) when the server sent one, else null
 * @param message the server's message, never null
 * @param httpStatus the HTTP status, or 0 for an error inside a stream
 */
public record RpcError(String connectCode, String message, int httpStatus) {
    private static final int MAX_MESSAGE_CHARS = 2000;

    /**
     * Reads an error body of either shape Stockade and E2B use: Connect's
     * {@code {"code": "not_found", "message": ...}} or the control plane's
     * {@code {"code": 404, "message": ...}}; any other body becomes the message as text.
     */
    public static RpcError fromBody(int httpStatus, byte[] body) {
        String text = body == null ? "" : new String(body, StandardCharsets.UTF_8).strip();
        if (text.startsWith("{")) {
            try {
                JsonNode n = Json.MAPPER.readTree(text);
                String message = n.path("message").asText("");
                JsonNode code = n.get("code");
                String connectCode = code != null && code.isTextual() ? code.asText().toLowerCase(Locale.ROOT) : null;
                if (message.isEmpty()) message = code != null && code.isTextual() ? code.asText() : text;
                return new RpcError(connectCode, clip(message), httpStatus);
            } catch (java.io.IOException | RuntimeException ignored) {
                // not JSON after all: use the text
            }
        }
        return new RpcError(null, clip(text.isEmpty() ? "HTTP " + httpStatus : text), httpStatus);
    }

    /** The {@code error} object of a Connect end-of-stream message. */
    public static RpcError fromEndOfStream(JsonNode error) {
        String code = error.path("code").asText("unknown").toLowerCase(Locale.ROOT);
        return new RpcError(code, clip(error.path("message").asText(code)), 0);
    }

    public boolean is(String code) {
        return code.equals(connectCode) || (connectCode == null && code.equals(codeForStatus(httpStatus)));
    }

    /** The public exception for this failure; {@code what} says what was being done, e.g. "reading /etc/hosts". */
    public StockadeException toException(String what) {
        String text = what + ": " + message + (httpStatus > 0 ? " (HTTP " + httpStatus + ")" : "");
        String code = connectCode != null ? connectCode : codeForStatus(httpStatus);
        return switch (code) {
            case "invalid_argument", "out_of_range" -> new InvalidArgumentException(text, httpStatus, null);
            case "unauthenticated" -> new AuthenticationException(
                    text + ". Check the API key (STOCKADE_API_KEY or E2B_API_KEY).", httpStatus, null);
            case "not_found" -> new NotFoundException(text, httpStatus, null);
            case "resource_exhausted" -> new RateLimitException(text, httpStatus, null);
            case "deadline_exceeded", "canceled" -> new TimeoutException(text, httpStatus, null);
            case "unavailable" -> new TimeoutException(
                    text + ". The sandbox has probably ended: its lifetime ran out or it was killed;"
                            + " extend it with setTimeout.", httpStatus, null);
            default -> new SandboxException(text, httpStatus, null);
        };
    }

    /** The Connect-like code an HTTP status stands for, following the E2B SDKs' HTTP error table. */
    static String codeForStatus(int status) {
        return switch (status) {
            case 400, 413 -> "invalid_argument";
            case 401 -> "unauthenticated";
            case 404 -> "not_found";
            case 409 -> "already_exists";
            case 429 -> "resource_exhausted";
            case 408, 504 -> "deadline_exceeded";
            case 502, 503 -> "unavailable";
            default -> "unknown";
        };
    }

    private static String clip(String s) {
        return s.length() <= MAX_MESSAGE_CHARS ? s : s.substring(0, MAX_MESSAGE_CHARS) + "…";
    }
}
