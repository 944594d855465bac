package dev.stockade.server.api;

import dev.stockade.server.core.Sandbox;
import dev.stockade.server.error.StockadeError;
import java.nio.charset.StandardCharsets;
import java.util.Base64;
import java.util.Locale;

/** An authorised in-sandbox request: the sandbox and the user it acts as. */
record EnvdContext(Sandbox sandbox, String user) {
    static final String DEFAULT_USER = "user";

    /**
     * The user from E2B's header {@code Authorization: Basic base64(user:)}; the E2B SDKs send it
     * to choose who runs a command. Only the sandbox's own users exist: "user" and "root". None given:
     * {@code fallback} (a built template's USER), else {@link #DEFAULT_USER}.
     */
    static String userFrom(String authorization, String queryUser, String fallback) {
        String user = null;
        if (queryUser != null && !queryUser.isEmpty()) {
            user = queryUser;
        } else if (authorization != null && authorization.regionMatches(true, 0, "Basic ", 0, 6)) {
            try {
                String decoded = new String(Base64.getDecoder().decode(authorization.substring(6).trim()), StandardCharsets.UTF_8);
                int colon = decoded.indexOf(':');
                user = colon < 0 ? decoded : decoded.substring(0, colon);
            } catch (IllegalArgumentException e) {
                throw StockadeError.invalid("the Authorization header is not valid Basic credentials");
            }
        }
        if (user == null || user.isEmpty()) return fallback != null ? fallback : DEFAULT_USER;
        String u = user.toLowerCase(Locale.ROOT);
        if (!u.equals("user") && !u.equals("root")) {
            // envd answers an unknown user with unauthenticated / 401 (docs/e2b-wire.md §2, §8).
            throw new StockadeError(StockadeError.Code.UNAUTHENTICATED,
                    "user '" + user + "' does not exist in the sandbox: use 'user' or 'root'");
        }
        return u;
    }
}
