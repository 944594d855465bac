package dev.stockade.protocol;

import java.util.Objects;

/**
 * What a directory watch delivers ({@link WatchRequest}): any number of {@link Changed}, then, if
 * the watched directory went away, one {@link Ended}. A watch that lost events ends with an error
 * instead (see {@code AgentClient.watchDir}).
 */
public sealed interface WatchEvent {
    /** envd's event types, in the order envd reports the kinds of one change. */
    enum Kind {
        CREATE, RENAME, CHMOD, WRITE, REMOVE;

        /** The agent's name of the kind ("create"). */
        public String wireName() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /**
     * A change of {@code name}, relative to the watched directory ("." for the directory itself,
     * "sub/file" below a subdirectory); {@code entry} when asked for and the entry still existed,
     * else null.
     */
    record Changed(Kind kind, String name, EntryInfo entry) implements WatchEvent {
        public Changed {
            Objects.requireNonNull(kind, "kind");
            Objects.requireNonNull(name, "name");
        }
    }

    /** The watch is over because the watched directory was removed or moved away ({@code reason} says which). */
    record Ended(String reason) implements WatchEvent {}
}
