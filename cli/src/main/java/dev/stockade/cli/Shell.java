package dev.stockade.cli;

import java.util.List;
import java.util.regex.Pattern;

/** POSIX shell quoting, for commands the sandbox runs as {@code bash -l -c <line>}. */
final class Shell {
    private static final Pattern SAFE = Pattern.compile("[A-Za-z0-9_@%+=:,./-]+");

    private Shell() {}

    /** The word as the shell will read it back unchanged. */
    static String quote(String word) {
        if (!word.isEmpty() && SAFE.matcher(word).matches()) return word;
        return "'" + word.replace("'", "'\\''") + "'";
    }

    static String join(List<String> words) {
        StringBuilder sb = new StringBuilder();
        for (String w : words) {
            if (!sb.isEmpty()) sb.append(' ');
            sb.append(quote(w));
        }
        return sb.toString();
    }
}
