package dev.stockade.protocol;

import java.util.Objects;

/**
 * A directory watch (E2B's WatchDir): {@code path} resolves as for the file operations (relative
 * and {@code ~} against the user's home); {@code recursive} watches every subdirectory too, as they
 * appear; {@code includeEntry} asks for the entry of create, write and chmod events (best effort:
 * none when it is already gone). The agent watches with {@code user}'s permissions.
 */
public record WatchRequest(String path, boolean recursive, boolean includeEntry, String user) {
    public WatchRequest {
        Objects.requireNonNull(path, "path");
    }
}
