package dev.stockade.server.api;

import dev.stockade.server.core.Sandbox;
import dev.stockade.server.core.SandboxManager;
import dev.stockade.server.error.StockadeError;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.util.Base64;
import java.util.List;
import java.util.Map;

/**
 * Verifies E2B's signed file URLs ({@code sandbox.downloadUrl()} / {@code uploadUrl()} of a secure
 * sandbox): {@code /files?path=P&username=U&signature=v1_S[&signature_expiration=E]} where the SDK
 * computed {@code S = base64(sha256("P:OP:U:TOKEN[:E]"))} without padding, OP being {@code read}
 * for a GET and {@code write} for a POST, U the username ("" when the URL has none) and TOKEN the
 * sandbox's envdAccessToken. The URL carries no credential and, in Stockade's single-URL mode, no
 * sandbox id either (the SDK puts E2B's sandbox host name nowhere in it), so the sandbox is the one
 * running sandbox whose token reproduces the signature: that costs one SHA-256 per running sandbox
 * and tells a caller without a valid signature nothing (every candidate is hashed and compared in
 * constant time, whatever matches). With an {@code E2b-Sandbox-Id} header only that sandbox is tried.
 * An expired signature is refused only after it was found valid, with E2B's exact body, so the
 * expiry answer is no oracle either. Called by {@link Router} on the request's virtual thread.
 */
final class SignedFileUrls {
    /** envd's answer for a valid signature past its expiration (the SDK tests compare it exactly). */
    static final String EXPIRED = "signature is already expired";

    private final SandboxManager manager;
    private final Clock clock;

    SignedFileUrls(SandboxManager manager, Clock clock) {
        this.manager = manager;
        this.clock = clock;
    }

    /** Whether the request is a signed /files URL (a query key {@code signature}); never throws. */
    static boolean requested(Request r) {
        if (!"/files".equals(r.path())) return false;
        String raw = r.rawQuery();
        if (raw == null) return false;
        for (String pair : raw.split("&")) {
            if (pair.equals("signature") || pair.startsWith("signature=")) return true;
        }
        return false;
    }

    /**
     * The running sandbox whose token signed this URL for this operation, path and user; otherwise
     * UNAUTHENTICATED (401), with {@link #EXPIRED} when the signature is valid but past its time.
     *
     * @param sandboxId the E2b-Sandbox-Id header, or null to try every running sandbox
     */
    Sandbox verify(Request r, String sandboxId) {
        Map<String, String> q = r.query();
        String given = q.get("signature");
        String expiration = q.get("signature_expiration");
        String operation = switch (r.method()) {
            case "GET" -> "read";
            case "POST" -> "write";
            default -> throw StockadeError.invalid(r.method() + " is not allowed on /files");
        };
        if (given == null || !given.startsWith("v1_")) throw invalid();
        Long expiresAt = null;
        if (expiration != null) {
            try {
                expiresAt = Long.parseLong(expiration);
            } catch (NumberFormatException e) {
                throw invalid();
            }
        }
        String prefix = q.getOrDefault("path", "") + ":" + operation + ":" + q.getOrDefault("username", "") + ":";
        String suffix = expiration == null ? "" : ":" + expiration;
        byte[] want = given.getBytes(StandardCharsets.UTF_8);
        List<Sandbox> candidates;
        if (sandboxId != null) {
            Sandbox sb = manager.find(sandboxId);
            candidates = sb == null ? List.of() : List.of(sb);
        } else {
            candidates = manager.list();
        }
        Sandbox match = null;
        for (Sandbox sb : candidates) {
            if (!sb.isRunning()) continue;
            // No early exit: the time taken depends on the number of sandboxes, never on which matched.
            if (MessageDigest.isEqual(want, sign(prefix + sb.accessToken() + suffix)) && match == null) match = sb;
        }
        if (match == null) throw invalid();
        if (expiresAt != null && expiresAt < clock.instant().getEpochSecond()) {
            r.auditSandbox = match.id();
            throw new StockadeError(StockadeError.Code.UNAUTHENTICATED, EXPIRED);
        }
        return match;
    }

    /** {@code v1_} and the unpadded standard base64 of the SHA-256 of {@code raw} (UTF-8). */
    static byte[] sign(String raw) {
        try {
            byte[] hash = MessageDigest.getInstance("SHA-256").digest(raw.getBytes(StandardCharsets.UTF_8));
            return ("v1_" + Base64.getEncoder().withoutPadding().encodeToString(hash)).getBytes(StandardCharsets.UTF_8);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }

    private static StockadeError invalid() {
        return new StockadeError(StockadeError.Code.UNAUTHENTICATED, "the file URL's signature is not valid for this"
                + " operation, path and user of any running sandbox: sign it again with downloadUrl()/uploadUrl()");
    }
}
