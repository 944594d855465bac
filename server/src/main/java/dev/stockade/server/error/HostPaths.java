package dev.stockade.server.error;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The last line of the rule that an error a client reads names no host path: the server registers
 * its data directory at start ({@link #hide}), and the HTTP layer passes every message it sends
 * through {@link #scrub}, which writes {@code <data-dir>} for it. Messages are meant to be built
 * without host paths in the first place (the agent link names its socket only as
 * {@code …/run/agent.sock}); this catches what a runtime or the JDK puts into theirs (runc's
 * stderr, an IOException naming a socket). Process-wide because a message may be built anywhere;
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

    /** The message with every hidden directory replaced by {@code <data-dir>}; null stays null. */
    public static String scrub(String message) {
        if (message == null) return null;
        String out = message;
        for (String dir : HIDDEN) out = out.replace(dir, "<data-dir>");
        return out;
    }
}
