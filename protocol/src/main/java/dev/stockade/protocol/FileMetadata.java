package dev.stockade.protocol;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * The limits of file metadata (E2B envd 0.6.2's user-defined key/value pairs kept with a file as
 * {@code user.e2b.<key>} extended attributes; the agent's metadata module stores and reads them).
 * The HTTP layer checks an upload's pairs with {@link #problem} before anything is written; the
 * agent link bounds what the agent reports with {@link #cost}. Stateless; any thread.
 */
public final class FileMetadata {
    /** The extended-attribute namespace the pairs live under inside the sandbox. */
    public static final String PREFIX = "user.e2b.";
    /** A key's bytes: the VFS's 255-byte attribute name minus the prefix. */
    public static final int MAX_KEY_BYTES = 255 - PREFIX.length();
    /** All pairs of one file: each key with its prefix, plus its value. */
    public static final int MAX_TOTAL_BYTES = 4096;

    /** An HTTP token (RFC 9110), lowercase, as the keys travel as header names and are lowercased. */
    private static final Pattern KEY = Pattern.compile("[a-z0-9!#$%&'*+\\-.^_`|~]+");
    private static final Pattern VALUE = Pattern.compile("[\\x20-\\x7e]*");

    private FileMetadata() {}

    /** What one pair takes of {@link #MAX_TOTAL_BYTES}. */
    public static int cost(String key, String value) {
        return PREFIX.length() + key.getBytes(StandardCharsets.UTF_8).length
                + value.getBytes(StandardCharsets.UTF_8).length;
    }

    /** Why pairs to store are refused (a key or value it may not hold, or too much), or null if they are fine. */
    public static String problem(Map<String, String> metadata) {
        int total = 0;
        for (var e : metadata.entrySet()) {
            String key = e.getKey();
            String shown = key.length() > 64 ? key.substring(0, 64) + "..." : key;
            if (!KEY.matcher(key).matches()) {
                return "metadata key '" + shown.replaceAll("[^\\x20-\\x7e]", "?")
                        + "' must be non-empty and use only HTTP token characters (letters, digits and !#$%&'*+-.^_`|~)";
            }
            if (key.length() > MAX_KEY_BYTES) {
                return "metadata key '" + shown + "' is longer than " + MAX_KEY_BYTES + " bytes";
            }
            if (!VALUE.matcher(e.getValue()).matches()) {
                return "metadata value of key '" + shown + "' must be printable US-ASCII";
            }
            total += cost(key, e.getValue());
        }
        if (total > MAX_TOTAL_BYTES) {
            return "metadata takes " + total + " bytes (each key counted with its " + PREFIX.length()
                    + "-byte prefix " + PREFIX + "), more than " + MAX_TOTAL_BYTES;
        }
        return null;
    }
}
