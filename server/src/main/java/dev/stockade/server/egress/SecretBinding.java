package dev.stockade.server.egress;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * A secret the sandbox never sees: it holds {@code placeholder} instead, and the egress proxy puts
 * {@code value} in its place only in requests to {@code hosts}. The placeholder sent anywhere else
 * gets the request refused. Only the request line and header values are rewritten, never bodies.
 *
 * <p>A host entry binds a scheme and a port too, so a value meant for an HTTPS API never travels in
 * clear text to the same name on another port: {@code api.example.com} means HTTPS on port 443;
 * {@code https://api.example.com:8443} another port; {@code http://api.example.com:8080} (port 80
 * when none is given) must be written out for a plain-HTTP destination.
 *
 * @param name what users call the secret; appears in decisions (the value never does)
 * @param placeholder {@code stockade-secret-} followed by 32 lowercase hex characters
 * @param value the real value; no control characters, since it lands in a request line or header
 * @param hosts where the value may go: {@code [scheme://]host[:port]}, the host exact or a {@code *.}
 *     wildcard; canonical ({@code host} alone for HTTPS on 443, else {@code scheme://host:port})
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
            try {
                normalized.add(Target.parse(h).text());
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("secret " + name + ": " + e.getMessage(), e);
            }
        }
        hosts = List.copyOf(normalized);
    }

    /**
     * One place a value may go.
     *
     * @param scheme {@code http} or {@code https}
     * @param host the host pattern, without a port
     */
    record Target(String scheme, EgressRule host, int port) {
        static Target parse(String raw) {
            String entry = raw == null ? "" : raw.strip();
            String scheme = "https";
            int sep = entry.indexOf("://");
            if (sep >= 0) {
                scheme = entry.substring(0, sep).toLowerCase(Locale.ROOT);
                if (!scheme.equals("http") && !scheme.equals("https")) {
                    throw new IllegalArgumentException("'" + entry + "': a secret goes over http or https only");
                }
                entry = entry.substring(sep + 3);
                if (entry.endsWith("/")) {
                    entry = entry.substring(0, entry.length() - 1);
                }
            }
            if (entry.indexOf('/') >= 0 || entry.indexOf('@') >= 0) {
                throw new IllegalArgumentException("'" + raw + "': name a host (and a port), without a path or user");
            }
            EgressRule withPort = EgressRule.parse(entry, true);
            if (withPort.kind() == EgressRule.Kind.ADDRESS) {
                throw new IllegalArgumentException("'" + raw + "': secrets are bound to host names, not addresses");
            }
            String text = withPort.text();
            EgressRule host = EgressRule.parse(withPort.port() == 0 ? text : text.substring(0, text.lastIndexOf(':')), false);
            int port = withPort.port() != 0 ? withPort.port() : scheme.equals("https") ? 443 : 80;
            return new Target(scheme, host, port);
        }

        String text() {
            return scheme.equals("https") && port == 443 ? host.text() : scheme + "://" + host.text() + ":" + port;
        }

        boolean admits(String s, String name, int p) {
            return scheme.equals(s) && port == p && host.matchesName(name);
        }
    }

    /** Whether the value may be sent to {@code host} (normalized) over {@code scheme} on {@code port}. */
    public boolean admits(String scheme, String host, int port) {
        return hosts.stream().anyMatch(h -> Target.parse(h).admits(scheme, host, port));
    }

    /** Whether some entry names {@code host}, whatever the scheme and port (TLS to it is intercepted). */
    boolean names(String host) {
        return hosts.stream().anyMatch(h -> Target.parse(h).host().matchesName(host));
    }

    /** Never prints the value. */
    @Override
    public String toString() {
        return "SecretBinding[name=" + name + ", placeholder=" + placeholder + ", hosts=" + hosts + ", value=<hidden>]";
    }
}
