package dev.stockade.sdk;

/** The kind of a filesystem entry, named as in the E2B SDKs. */
public enum FileType {
    FILE,
    DIR,
    SYMLINK
}
