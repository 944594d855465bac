package dev.stockade.server.templates;

import dev.stockade.server.templates.ArchiveReader.Entry;
import dev.stockade.server.templates.CopyRefused.Code;
import java.io.InputStream;
import java.nio.file.Path;

/**
 * Turns one COPY step's upload into a new layer directory on the host, with E2B's meaning of the
 * step (see {@link CopyStep}) and the archive judged as hostile input: nothing in it is run, no
 * symlink is followed, names cannot leave the layer, only files, directories, symlinks and hard
 * links to files of the same copy pass, setuid and setgid bits are cleared unless the operator
 * allows them, and the uncompressed size and the entry count are bounded. A refusal is a
 * {@link CopyRefused}, and the layer directory is then gone.
 *
 * <p>Where it follows E2B's server: the source's content lands at the destination (a directory's
 * content merged into it, a single file or symlink at the exact path or, when the destination ends
 * with "/" or the image has it as a directory, inside it), every entry is the step's owner's, the
 * step's mode replaces every file's and directory's mode (never a symlink's), entries of the
 * upload outside the source are ignored, and directories the image below already has keep their
 * owner and mode. Where it differs: a destination directory the step creates is the step's owner's
 * (E2B's {@code mkdir -p}, run as root, leaves it root's, which makes {@code copy('folder/*',
 * 'folder')} a directory its user cannot write in); the same name twice is refused (tar: last
 * wins); a hard link to an entry outside the source is refused (E2B: kept, linked into /tmp).
 *
 * <p>Called by a template build for each COPY step, on the build's thread; one instance serves
 * any number of builds (it holds only the operator's limits).
 */
public final class CopyToLayer {
    private final long maxBytes;
    private final int maxEntries;
    private final boolean allowSetuid;

    /**
     * @param maxBytes the most uncompressed bytes (tar headers included) an upload may hold
     * @param maxEntries the most entries an upload may hold
     * @param allowSetuid keep setuid and setgid bits (from the archive or the step's mode); off: cleared
     */
    public CopyToLayer(long maxBytes, int maxEntries, boolean allowSetuid) {
        if (maxBytes < 1 || maxEntries < 1) throw new IllegalArgumentException("limits must be positive");
        this.maxBytes = maxBytes;
        this.maxEntries = maxEntries;
        this.allowSetuid = allowSetuid;
    }

    /** What a copy wrote: entries taken from the upload and bytes of file content. */
    public record Result(int entries, long bytes) {}

    /**
     * Writes {@code step}'s copy of {@code upload} (a tar or tar.gz stream) into {@code layer}, a
     * directory that must not exist yet and is created here; on a refusal it is removed again.
     */
    public Result apply(CopyStep step, BuildContext ctx, InputStream upload, Path layer, ImageBelow below) {
        CopyStep.Target target = step.resolve(ctx, allowSetuid);
        LayerWriter writer = new LayerWriter(layer, below);
        try (ArchiveReader reader = new ArchiveReader(upload, maxBytes, maxEntries)) {
            int entries = new Copy(target, writer, reader, below).run();
            return new Result(entries, writer.bytes());
        } catch (RuntimeException | Error e) {
            try {
                LayerWriter.remove(layer);
            } catch (RuntimeException notRemoved) {
                e.addSuppressed(notRemoved); // the refusal is what the caller acts on; the operator's log gets both
            }
            throw e;
        }
    }

    /** One copy's walk through the upload: maps each entry of the source to its place in the layer. */
    private final class Copy {
        private enum Source { UNSEEN, DIRECTORY, SINGLE }

        private final CopyStep.Target t;
        private final LayerWriter writer;
        private final ArchiveReader reader;
        private final ImageBelow below;
        private Source source = Source.UNSEEN;
        /** Where a single file or symlink source goes. */
        private String singlePath;

        Copy(CopyStep.Target t, LayerWriter writer, ArchiveReader reader, ImageBelow below) {
            this.t = t;
            this.writer = writer;
            this.reader = reader;
            this.below = below;
        }

        int run() {
            int taken = 0;
            for (Entry e; (e = reader.next()) != null; ) {
                String rel = relative(e.name());
                if (rel == null) continue; // outside the source: E2B leaves it in /tmp, we skip it
                boolean single = rel.isEmpty() && !t.source().isEmpty() && e.kind() != ArchiveReader.Kind.DIRECTORY;
                String path = single ? single(e) : directoryContent(e, rel);
                int mode = t.mode() >= 0 ? t.mode() : e.mode() & (allowSetuid ? 07777 : 01777);
                switch (e.kind()) {
                    case DIRECTORY -> writer.directory(path, e.raw(), t.uid(), t.gid(), mode, true);
                    case FILE -> writer.file(path, e.raw(), reader.content(), t.uid(), t.gid(), mode, e.mtimeMillis(), reader);
                    case SYMLINK -> writer.symlink(path, e.raw(), e.link(), t.uid(), t.gid());
                    case HARD_LINK -> {
                        String to = source == Source.DIRECTORY ? relative(e.link()) : null;
                        writer.hardLink(path, e.raw(), to == null ? null : at(to), e.link());
                    }
                }
                taken++;
            }
            if (source == Source.UNSEEN) {
                if (!t.source().isEmpty()) {
                    throw new CopyRefused(Code.SOURCE_NOT_FOUND, "the COPY source " + CopyRefused.shown(t.source()) + " is not in the uploaded archive");
                }
                // an empty upload copied as a directory: E2B's mkdir -p still makes the destination
                writer.content(t.destination(), t.uid(), t.gid(), t.mode() >= 0 ? t.mode() : 0755);
                writer.directory(t.destination(), t.source(), 0, 0, 0755, false);
            }
            return taken;
        }

        /** The name relative to the source ("" = the source itself), or null outside it. */
        private String relative(String name) {
            String src = t.source();
            if (src.isEmpty() || name.equals(src)) return src.isEmpty() ? name : "";
            return name.startsWith(src + "/") ? name.substring(src.length() + 1) : null;
        }

        /** The source is a file, symlink or hard link: its one place in the layer. */
        private String single(Entry e) {
            if (source != Source.UNSEEN) {
                throw new CopyRefused(Code.DUPLICATE_ENTRY, "the archive names the COPY source " + CopyRefused.shown(e.raw())
                        + " twice (or as a directory and as a " + e.kind().name().toLowerCase().replace('_', ' ') + ")");
            }
            source = Source.SINGLE;
            String base = t.source().substring(t.source().lastIndexOf('/') + 1);
            boolean inside = t.intoDirectory() || below.directory(t.destination()).isPresent();
            singlePath = inside ? at(t.destination(), base) : t.destination();
            // the directory a file goes into is the owner's when the step makes it; other parents are root's
            writer.content(inside ? t.destination() : singlePath, t.uid(), t.gid(), 0755);
            return singlePath;
        }

        /** The source is a directory (or the upload's root): the entry's place under the destination. */
        private String directoryContent(Entry e, String rel) {
            if (source == Source.SINGLE) {
                throw new CopyRefused(Code.THROUGH_SYMLINK, "the entry " + CopyRefused.shown(e.raw())
                        + " lies beneath the COPY source, which the archive made a " + "file or symlink");
            }
            if (rel.isEmpty() && e.kind() != ArchiveReader.Kind.DIRECTORY) {
                throw new CopyRefused(Code.UNSAFE_NAME, "the entry " + CopyRefused.shown(e.raw()) + " names the archive's root but is not a directory");
            }
            if (source == Source.UNSEEN) {
                source = Source.DIRECTORY;
                writer.content(t.destination(), t.uid(), t.gid(), t.mode() >= 0 ? t.mode() : 0755);
            }
            return at(rel);
        }

        private String at(String rel) {
            return at(t.destination(), rel);
        }

        private static String at(String dir, String rel) {
            if (rel.isEmpty()) return dir;
            return dir.equals("/") ? "/" + rel : dir + "/" + rel;
        }
    }
}
