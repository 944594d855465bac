package dev.stockade.server.templates;

import java.util.Optional;

/**
 * What the image under a new layer (the parent template's layers) has at a path, as far as a COPY
 * needs it: a layer is its own tree, so each directory it holds — the parents of the destination
 * included — hides the metadata of the same directory below it in the sandbox's overlay.
 * {@link CopyToLayer} gives a directory the image already has that directory's owner and mode
 * (E2B's {@code mkdir -p} and {@code tar --no-overwrite-dir} leave existing directories as they
 * are), and copies a single file into a destination the image has as a directory. Implemented by
 * the build, which reads its layers; called on the build's thread.
 */
@FunctionalInterface
public interface ImageBelow {
    /** Nothing known: new directories are root's (0755), as E2B's {@code mkdir -p} run as root makes them. */
    ImageBelow NOTHING = path -> Optional.empty();

    /** A directory's owner and mode (permission bits and setuid, setgid, sticky), canonical ids. */
    record Directory(int uid, int gid, int mode) {}

    /** The directory at {@code absolutePath} (normalised, in the sandbox's terms), if the image has one. */
    Optional<Directory> directory(String absolutePath);
}
