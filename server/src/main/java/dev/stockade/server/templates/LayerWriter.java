package dev.stockade.server.templates;

import static java.nio.file.LinkOption.NOFOLLOW_LINKS;

import dev.stockade.server.templates.CopyRefused.Code;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.FileSystemException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributeView;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileTime;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * Writes one new layer directory on the host, entry by entry, never following a symlink: it knows
 * every node it made (the directory is new and nobody else writes in it), so a name whose parent is
 * a symlink or a file of the same archive is refused before any call, and each call also checks on
 * the disk, without following links, that every parent is a directory; files are created with
 * O_CREAT|O_EXCL|O_NOFOLLOW ({@code CREATE_NEW}), owners set with lchown, modes on the file itself.
 * Owners are canonical ids as given (0, 1000: the runtime maps them per sandbox). Used by
 * {@link CopyToLayer} on the build's thread; not thread-safe.
 */
final class LayerWriter {
    private enum Node { DIRECTORY, FILE, SYMLINK }

    private final Path root;
    private final ImageBelow below;
    private final Map<String, Node> nodes = new HashMap<>();
    /** Directories named by an entry of their own, or whose metadata is the image's or the root's: not set again. */
    private final Set<String> settled = new HashSet<>();
    /** Directories an entry named: a second entry of the same name is a duplicate. */
    private final Set<String> named = new HashSet<>();
    /** Where the copied content starts: directories made at or under it are the step's owner's. */
    private String contentRoot;
    private int contentUid;
    private int contentGid;
    private int contentDirMode;
    private long bytes;

    /** Creates the layer's root directory, which must not exist. */
    LayerWriter(Path root, ImageBelow below) {
        this.root = root;
        this.below = below;
        try {
            Files.createDirectory(root);
            ImageBelow.Directory d = below.directory("/").orElse(new ImageBelow.Directory(0, 0, 0755));
            attributes(root, d.uid(), d.gid(), d.mode());
        } catch (IOException e) {
            throw new CopyRefused(Code.WRITE_FAILED, "the host could not create the layer: " + reason(e));
        }
        nodes.put("/", Node.DIRECTORY);
        settled.add("/");
    }

    /** Directories at or under {@code path} made without an entry of their own get these attributes. */
    void content(String path, int uid, int gid, int dirMode) {
        contentRoot = path;
        contentUid = uid;
        contentGid = gid;
        contentDirMode = dirMode;
    }

    long bytes() {
        return bytes;
    }

    /**
     * The directory {@code path}, named by entry {@code raw} when {@code explicit} (its attributes
     * are then these, unless the image below has the directory: it keeps the image's).
     */
    void directory(String path, String raw, int uid, int gid, int mode, boolean explicit) {
        parents(path, raw);
        Node n = nodes.get(path);
        if (n != null && n != Node.DIRECTORY) throw duplicate(raw);
        if (explicit && !named.add(path)) throw duplicate(raw);
        try {
            if (n == null) {
                Files.createDirectory(host(path));
                nodes.put(path, Node.DIRECTORY);
                Optional<ImageBelow.Directory> image = below.directory(path);
                if (image.isPresent()) {
                    attributes(host(path), image.get().uid(), image.get().gid(), image.get().mode());
                    settled.add(path);
                } else if (explicit) {
                    attributes(host(path), uid, gid, mode);
                    settled.add(path);
                } else if (contentRoot != null && within(path, contentRoot)) {
                    attributes(host(path), contentUid, contentGid, contentDirMode); // its own entry may still come
                } else {
                    attributes(host(path), 0, 0, 0755);
                    settled.add(path);
                }
            } else if (explicit && !settled.contains(path)) {
                attributes(host(path), uid, gid, mode);
                settled.add(path);
            }
        } catch (IOException e) {
            throw writeFailed(raw, e);
        }
    }

    /** A regular file with exactly the entry's bytes. */
    void file(String path, String raw, InputStream content, int uid, int gid, int mode, long mtimeMillis, ArchiveReader reader) {
        parents(path, raw);
        if (nodes.containsKey(path)) throw duplicate(raw);
        Path p = host(path);
        nodes.put(path, Node.FILE); // before the create: a failure still removes the whole layer
        try (OutputStream out = Files.newOutputStream(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE, NOFOLLOW_LINKS)) {
            byte[] buf = new byte[64 * 1024];
            while (true) {
                int n;
                try {
                    n = content.read(buf);
                } catch (IOException e) {
                    throw reader.readFailure(raw, e);
                }
                if (n < 0) break;
                out.write(buf, 0, n);
                bytes += n;
            }
        } catch (IOException e) {
            throw writeFailed(raw, e);
        }
        try {
            attributes(p, uid, gid, mode);
            Files.getFileAttributeView(p, BasicFileAttributeView.class, NOFOLLOW_LINKS)
                    .setTimes(FileTime.fromMillis(mtimeMillis), null, null);
        } catch (IOException e) {
            throw writeFailed(raw, e);
        }
    }

    /** A symlink with its target as given: it resolves in the sandbox's root, never here. */
    void symlink(String path, String raw, String target, int uid, int gid) {
        parents(path, raw);
        if (nodes.containsKey(path)) throw duplicate(raw);
        nodes.put(path, Node.SYMLINK);
        try {
            Path p = host(path);
            Files.createSymbolicLink(p, Path.of(target));
            Files.setAttribute(p, "unix:uid", uid, NOFOLLOW_LINKS);
            Files.setAttribute(p, "unix:gid", gid, NOFOLLOW_LINKS);
        } catch (IOException e) {
            throw writeFailed(raw, e);
        }
    }

    /**
     * A hard link to {@code target}, which must be a regular file this archive wrote (a name through
     * a symlink, a directory, a symlink or anything outside the copy is refused).
     */
    void hardLink(String path, String raw, String target, String rawTarget) {
        if (target == null || nodes.get(target) != Node.FILE) {
            throw new CopyRefused(Code.BAD_HARD_LINK, "the hard link " + CopyRefused.shown(raw) + " points to "
                    + CopyRefused.shown(rawTarget) + ", which is not a regular file copied earlier by this step");
        }
        parents(path, raw);
        if (nodes.containsKey(path)) throw duplicate(raw);
        nodes.put(path, Node.FILE);
        try {
            // link(2) never follows a symlink named as the existing file; the target is known to be a file anyway
            Files.createLink(host(path), host(target));
        } catch (IOException e) {
            throw writeFailed(raw, e);
        }
    }

    /** Makes the missing parents of {@code path}; refuses one that is a symlink or a file of the archive. */
    private void parents(String path, String raw) {
        int at = 0;
        while ((at = path.indexOf('/', at + 1)) > 0) {
            String parent = path.substring(0, at);
            Node n = nodes.get(parent);
            if (n == Node.SYMLINK) {
                throw new CopyRefused(Code.THROUGH_SYMLINK, "the entry " + CopyRefused.shown(raw)
                        + " lies beneath a symlink written by the same archive; symlinks are never followed while copying");
            }
            if (n == Node.FILE) {
                throw new CopyRefused(Code.THROUGH_SYMLINK, "the entry " + CopyRefused.shown(raw) + " lies beneath a file of the same archive");
            }
            if (n == null) directory(parent, raw, 0, 0, 0755, false);
            else onDiskDirectory(parent, raw);
        }
    }

    /** The belt to the model's braces: the parent on disk is a directory, a symlink is not followed to see. */
    private void onDiskDirectory(String path, String raw) {
        try {
            BasicFileAttributes a = Files.readAttributes(host(path), BasicFileAttributes.class, NOFOLLOW_LINKS);
            if (!a.isDirectory() || a.isSymbolicLink()) {
                throw new CopyRefused(Code.THROUGH_SYMLINK, "the entry " + CopyRefused.shown(raw) + " lies beneath something that is not a directory");
            }
        } catch (IOException e) {
            throw writeFailed(raw, e);
        }
    }

    private Path host(String path) {
        return path.equals("/") ? root : root.resolve(path.substring(1));
    }

    private static boolean within(String path, String dir) {
        return path.equals(dir) || dir.equals("/") || path.startsWith(dir + "/");
    }

    /** lchown, then the mode (chown clears setuid and setgid, so the mode comes last). */
    private static void attributes(Path p, int uid, int gid, int mode) throws IOException {
        Files.setAttribute(p, "unix:uid", uid, NOFOLLOW_LINKS);
        Files.setAttribute(p, "unix:gid", gid, NOFOLLOW_LINKS);
        Files.setAttribute(p, "unix:mode", mode, NOFOLLOW_LINKS);
    }

    private static CopyRefused duplicate(String raw) {
        return new CopyRefused(Code.DUPLICATE_ENTRY, "the archive names " + CopyRefused.shown(raw)
                + " twice (or as two kinds); each name may appear once");
    }

    private static CopyRefused writeFailed(String raw, IOException e) {
        return new CopyRefused(Code.WRITE_FAILED, "the host could not write the entry " + CopyRefused.shown(raw) + ": " + reason(e));
    }

    /** The kind of failure, without the path a FileSystemException's message carries. */
    private static String reason(IOException e) {
        if (e instanceof FileSystemException f) return f.getReason() != null ? f.getReason() : e.getClass().getSimpleName();
        // a plain IOException from a write is the errno's text ("No space left on device"), which names no path
        String m = e.getMessage();
        return m != null && m.indexOf('/') < 0 ? m : e.getClass().getSimpleName();
    }

    /** Removes the layer's tree, not following its symlinks; quietly, as the refusal is what matters. */
    static void remove(Path root) {
        if (!Files.exists(root, NOFOLLOW_LINKS)) return;
        try {
            Files.walkFileTree(root, new SimpleFileVisitor<>() {
                @Override
                public FileVisitResult visitFile(Path f, BasicFileAttributes a) throws IOException {
                    Files.delete(f);
                    return FileVisitResult.CONTINUE;
                }

                @Override
                public FileVisitResult postVisitDirectory(Path d, IOException e) throws IOException {
                    Files.delete(d);
                    return FileVisitResult.CONTINUE;
                }
            });
        } catch (IOException e) {
            throw new IllegalStateException("could not remove a refused layer", e);
        }
    }
}
