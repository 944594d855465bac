package dev.stockade.server.egress;

import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A sandbox's secret bindings, by placeholder: finds placeholders in request lines and header
 * values and replaces them for the hosts they are bound to, or refuses the request. Any string
 * starting with the placeholder prefix (in any case) that is not a bound placeholder for the
 * destination is refused too, so a typo never leaks a half-substituted request.
 */
final class Secrets {
    private final Map<String, SecretBinding> byPlaceholder = new HashMap<>();
    private final List<SecretBinding> bindings;

    /** A placeholder the destination may not receive. {@code secret} is the binding's name, or null if unknown. */
    static final class Refused extends Exception {
        private final String secret;

        Refused(String secret, String message) {
            super(message, null, false, false);
            this.secret = secret;
        }

        String rule() {
            return secret == null ? "secret ?" : "secret " + secret;
        }
    }

    Secrets(List<SecretBinding> bindings) {
        this.bindings = List.copyOf(bindings == null ? List.of() : bindings);
        for (SecretBinding b : this.bindings) {
            if (byPlaceholder.put(b.placeholder(), b) != null) {
                throw new IllegalArgumentException("two secrets use the placeholder of " + b.name()
                        + ": every secret needs its own");
            }
        }
    }

    /** Whether some secret may be sent to {@code host}: requests to it must be intercepted. */
    boolean boundTo(String host) {
        return bindings.stream().anyMatch(b -> b.names(host));
    }

    boolean isEmpty() {
        return bindings.isEmpty();
    }

    /** {@code text} with every placeholder bound to {@code scheme://host:port} replaced by its value. */
    String apply(String text, String scheme, String host, int port) throws Refused {
        String lower = text.toLowerCase(Locale.ROOT);
        int at = lower.indexOf(SecretBinding.PREFIX);
        if (at < 0) {
            return text;
        }
        StringBuilder out = new StringBuilder(text.length() + 64);
        int from = 0;
        while (at >= 0) {
            int end = at + SecretBinding.PREFIX.length() + 32;
            String candidate = end <= text.length() ? text.substring(at, end) : null;
            SecretBinding binding = candidate == null ? null : byPlaceholder.get(candidate);
            if (binding == null) {
                throw new Refused(null, "the request carries an unknown secret placeholder ("
                        + SecretBinding.PREFIX + "...)");
            }
            if (!binding.admits(scheme, host, port)) {
                throw new Refused(binding.name(), "secret " + binding.name() + " may be sent to "
                        + String.join(", ", binding.hosts()) + " only (a bare host means https on port 443), not to "
                        + scheme + "://" + host + ":" + port);
            }
            out.append(text, from, at).append(binding.value());
            from = end;
            at = lower.indexOf(SecretBinding.PREFIX, from);
        }
        return out.append(text, from, text.length()).toString();
    }
}
