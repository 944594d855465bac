package dev.stockade.server.egress;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * A secret the sandbox never sees: it holds {@code placeholder} instead, and the egress proxy puts
 * {@code value} in its place only in requests to {@code hosts}. The placeholder sent anywhere else
 * gets the request refused. Only the request line and header values are rewritten, never bodies.
 *
 * @param name what users call the secret; appears in decisions (the value never does)
 * @param placeholder {@code stockade-secret-} followed by 32 lowercase hex characters
 * @param value the real value; no control characters, since it lands in a request line or header
 * @param hosts where the value may go: exact hosts or {@code *.} wildcards, no ports
 */
public record SecretBinding(String name, String placeholder, String value, List<String> hosts) {
    /** Every placeholder starts with this. */
    public static final String PREFIX = "stockade-secret-";
    static final Pattern PLACEHOLDER = Pattern.compile("stockade-secret-[0-9a-f]{32}");

    public SecretBinding {
        if (name == null || name.isBlank() || name.length() > 128 || !HttpHead.isFieldValue(name)) {
            throw new IllegalArgumentException("a secret needs a name of 1 to 128 printable characters");
        }
        if (placeholder == null || !PLACEHOLDER.matcher(placeholder).matches()) {
            throw new IllegalArgumentException("secret " + name + ": the placeholder must be '" + PREFIX
                    + "' followed by 32 lowercase hex characters");
        }
        if (value == null || value.isEmpty() || value.length() > 8192 || !HttpHead.isFieldValue(value)
                || value.indexOf('\t') >= 0 || value.chars().anyMatch(c -> c > 0x7e)) {
            throw new IllegalArgumentException("secret " + name + ": the value must be 1 to 8192 printable ASCII "
                    + "characters (it is sent in request lines and headers)");
        }
        if (hosts == null || hosts.isEmpty()) {
            throw new IllegalArgumentException("secret " + name + " is bound to no host: name where it may be sent");
        }
        List<String> normalized = new ArrayList<>();
        for (String h : hosts) {
            EgressRule rule;
            try {
                rule = EgressRule.parse(h, false);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("secret " + name + ": " + e.getMessage(), e);
            }
            normalized.add(rule.text());
        }
        hosts = List.copyOf(normalized);
    }

    /** Whether the value may be sent to {@code host} (normalized). */
    public boolean admits(String host) {
        for (String h : hosts) {
            EgressRule rule = EgressRule.parse(h, false);
            if (rule.matchesName(host)) {
                return true;
            }
        }
        return false;
    }

    /** Never prints the value. */
    @Override
    public String toString() {
        return "SecretBinding[name=" + name + ", placeholder=" + placeholder + ", hosts=" + hosts + ", value=<hidden>]";
    }
}
