package dev.stockade.protocol;

import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;

/**
 * A filesystem entry as the agent sees it inside the sandbox (paths are the sandbox's: show them,
 * never open them on the host). {@code type} is what the path leads to: "file", "dir", "other"
 * (device, fifo, socket), or "symlink" for a dangling link. For a symlink, {@code symlinkTarget}
 * is the resolved target and type, size, mode, owner and times are the target's; otherwise it is
 * null. {@code mode} holds the permission bits (07777), {@code permissions} the ls-style string
 * ("-rw-r--r--", "drwxr-xr-x"), owner and group are names (or numbers without a name), and
 * {@code modifiedMillis} is epoch milliseconds. {@code metadata} holds the file's user-defined
 * pairs ({@link FileMetadata}), empty when it has none.
 */
public record EntryInfo(
        String name,
        String path,
        String type,
        long size,
        int mode,
        String permissions,
        String owner,
        String group,
        long modifiedMillis,
        String symlinkTarget,
        Map<String, String> metadata) {

    public EntryInfo {
        metadata = metadata == null || metadata.isEmpty() ? Map.of() : Collections.unmodifiableMap(new TreeMap<>(metadata));
    }

    /** An entry without metadata. */
    public EntryInfo(String name, String path, String type, long size, int mode, String permissions, String owner,
            String group, long modifiedMillis, String symlinkTarget) {
        this(name, path, type, size, mode, permissions, owner, group, modifiedMillis, symlinkTarget, Map.of());
    }
}
