package dev.stockade.server.api;

import org.eclipse.jetty.http.HttpFields;
import dev.stockade.server.error.StockadeError;
import java.util.List;
import java.util.Objects;

/**
 * Refuses a request whose credentials or routing headers say two things at once, before anything reads
 * them: the router reads one value per header ({@code getFirst}), so a second {@code X-API-Key} (a forged
 * one after a valid one, or the reverse), a key with a control character that trimming would hide, or an
 * {@code Authorization: Bearer} that names another key than {@code X-API-Key} would otherwise be
 * answered for whichever value came first. Ambiguity is a 400, like a duplicate {@code Content-Length}.
 * The official SDKs send one of each (docs/e2b-wire.md §2), so nothing they send is refused. Called by
 * {@link Router} on the request's virtual thread.
 */
final class CredentialHeaders {
    /** Headers that authenticate a request or choose the sandbox (and so the plane) it is for. */
    static final List<String> SINGLE = List.of("X-API-Key", "Authorization", "X-Access-Token",
            "E2B-Traffic-Access-Token", "E2b-Sandbox-Id", "E2b-Sandbox-Port");

    private CredentialHeaders() {}

    static void requireUnambiguous(HttpFields headers) {
        for (String name : SINGLE) {
            List<String> values = headers.getValuesList(name);
            if (values.isEmpty()) continue;
            if (values.size() > 1) {
                throw StockadeError.invalid("the request carries " + values.size() + " " + name
                        + " headers: send it once (an ambiguous credential is never used)");
            }
            String v = values.getFirst();
            for (int i = 0; i < v.length(); i++) {
                char ch = v.charAt(i);
                if (ch < 0x20 || ch == 0x7f) {
                    throw StockadeError.invalid(name + " contains the control character U+" + String.format("%04X", (int) ch)
                            + " at position " + i + ": a credential or sandbox header holds no control characters");
                }
            }
        }
        String key = headers.get("X-API-Key");
        String auth = headers.get("Authorization");
        if (key != null && auth != null && auth.regionMatches(true, 0, "Bearer ", 0, 7)
                && !auth.substring(7).trim().equals(key.trim())) {
            throw StockadeError.invalid("X-API-Key and Authorization: Bearer name different credentials: send one");
        }
        String token = headers.get("X-Access-Token");
        String traffic = headers.get("E2B-Traffic-Access-Token");
        if (token != null && traffic != null && !Objects.equals(token.trim(), traffic.trim())) {
            throw StockadeError.invalid("X-Access-Token and E2B-Traffic-Access-Token differ: a sandbox has one token");
        }
    }
}
