package dev.stockade.sdk;

import java.time.Instant;
import java.util.Objects;

/**
 * A file, directory or symlink inside a sandbox. Fields the server did not report are 0 or null
 * (a write reports only name, type and path).
 *
 * @param name the last path element
 * @param type file, directory or symlink; null if the server reported a type this SDK does not know
 * @param path the absolute path inside the sandbox
 * @param size size in bytes
 * @param mode the Unix mode bits
 * @param permissions the permissions as {@code ls} prints them, e.g. {@code -rw-r--r--}
 * @param owner owning user name
 * @param group owning group name
 * @param modifiedTime last modification, or null
 * @param symlinkTarget where a symlink points, or null
 */
public record EntryInfo(
        String name,
        FileType type,
        String path,
        long size,
        int mode,
        String permissions,
        String owner,
        String group,
        Instant modifiedTime,
        String symlinkTarget) {
    public EntryInfo {
        Objects.requireNonNull(path, "path");
        if (name == null) name = "";
    }
}
