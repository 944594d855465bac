package dev.stockade.server.error;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The last line of the rule that an error a client reads names no host path: the server registers
 * its data directory at start ({@link #hide}), and the HTTP layer passes every message it sends
 * through {@link #scrub}, which writes {@code <data-dir>} for it. Messages are meant to be built
 * without host paths in the first place (the agent link names its socket only as
 * {@code …/run/agent.sock}; a runtime's failure reaches clients through {@link HostFailure}, its
 * own words only in the log); this catches what a runtime or the JDK still puts into theirs (runc's
 * log framing, an IOException naming a socket, a Java class name). Process-wide because a message may be built anywhere;
 * several servers in one JVM (tests) each add their own directory. Thread-safe.
 */
public final class HostPaths {
    private static final List<String> HIDDEN = new CopyOnWriteArrayList<>();

    private HostPaths() {}

    /** Hides {@code dir} (as given and as the real path it resolves to) from client messages. */
    public static void hide(Path dir) {
        add(dir.toAbsolutePath().normalize().toString());
        try {
            add(dir.toRealPath().toString());
        } catch (java.io.IOException | RuntimeException e) {
            // not created yet: the absolute form is enough
        }
    }

    private static synchronized void add(String s) {
        // "/" would replace every slash: a data directory is never the root.
        if (s.length() > 1 && !HIDDEN.contains(s)) {
            HIDDEN.add(s);
            // Longest first, so that a directory inside another registered one is replaced whole.
            HIDDEN.sort((a, b) -> b.length() - a.length());
        }
    }

    /**
     * The message with every hidden directory replaced by {@code <data-dir>}, runc's log framing
     * ({@code time="…" level=error msg="why"}) reduced to its why, and Java's class names
     * ({@code java.io.IOException: }) left out; null stays null. Host uids and other runtime output
     * cannot be recognised here: {@link HostFailure} keeps them out of messages in the first place.
     */
    public static String scrub(String message) {
        if (message == null) return null;
        String out = message;
        for (String dir : HIDDEN) out = out.replace(dir, "<data-dir>");
        out = RUNC_LOG.matcher(out).replaceAll(m -> java.util.regex.Matcher.quoteReplacement(m.group(1)));
        return CLASS_NAME.matcher(out).replaceAll("");
    }

    /** One line of runc's logrus output: what it says is in msg. */
    private static final java.util.regex.Pattern RUNC_LOG =
            java.util.regex.Pattern.compile("time=\"[^\"]*\" level=\\w+ msg=\"((?:[^\"\\\\]|\\\\.)*)\"");
    /**
     * A qualified Java class name (an exception's toString, an NPE's helpful message), with its ": ":
     * packages, then a capitalised class; not inside a path (a user's /home/user/java.txt passes).
     */
    private static final java.util.regex.Pattern CLASS_NAME =
            java.util.regex.Pattern.compile("(?<![/\\w.])(?:java|javax|jdk|sun|com\\.fasterxml|dev\\.stockade)(?:\\.[a-z_][\\w]*)*"
                    + "\\.[A-Z][\\w$]*(?:\\.[\\w$]+)*(?:\\(\\))?(?::\\s)?");
}
