package dev.stockade.protocol;

/**
 * A filesystem entry as the agent sees it inside the sandbox (paths are the sandbox's: show them,
 * never open them on the host). {@code type} is what the path leads to: "file", "dir", "other"
 * (device, fifo, socket), or "symlink" for a dangling link. For a symlink, {@code symlinkTarget}
 * is the resolved target and type, size, mode, owner and times are the target's; otherwise it is
 * null. {@code mode} holds the permission bits (07777), {@code permissions} the ls-style string
 * ("-rw-r--r--", "drwxr-xr-x"), owner and group are names (or numbers without a name), and
 * {@code modifiedMillis} is epoch milliseconds.
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
        String symlinkTarget) {}
