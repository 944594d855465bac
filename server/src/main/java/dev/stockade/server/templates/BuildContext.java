package dev.stockade.server.templates;

import java.util.Map;
import java.util.Objects;

/**
 * The part of a template build's state a COPY step reads: the current user (the default owner),
 * the working directory (null until a WORKDIR step set one; relative destinations then resolve
 * against the user's home, as E2B's server does), the user's home, and the names a step's owner
 * may use with their canonical ids (the sandbox's own uids: root 0, user 1000; the runtime maps
 * them to the sandbox's host range). Made by the build for each step, on the build's thread.
 */
public record BuildContext(String user, String workdir, String home, Map<String, Integer> ids) {
    /** The names every image has: root and the sandbox user. */
    public static final Map<String, Integer> CANONICAL = Map.of("root", 0, "user", 1000);

    public BuildContext {
        Objects.requireNonNull(user, "user");
        Objects.requireNonNull(home, "home");
        if (!home.startsWith("/")) throw new IllegalArgumentException("home must be absolute: " + home);
        if (workdir != null && !workdir.startsWith("/")) throw new IllegalArgumentException("workdir must be absolute: " + workdir);
        ids = Map.copyOf(ids);
    }

    /** E2B's context after its "user" phase: user {@code user}, no workdir, home /home/user. */
    public static BuildContext ofUser() {
        return new BuildContext("user", null, "/home/user", CANONICAL);
    }
}
