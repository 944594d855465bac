package dev.stockade.sdk;

import java.io.InputStream;
import java.nio.file.Path;
import java.util.List;

/**
 * Files of one sandbox ({@link Sandbox#files()}), like E2B's {@code sandbox.files}. Relative paths
 * are resolved against the user's home ({@code /home/user}) by the sandbox; every path names a
 * file inside the sandbox, never on the host. Writes create missing parent directories and
 * replace existing files. Thread-safe.
 *
 * <pre>{@code
 * sandbox.files().write("/home/user/data.csv", Path.of("data.csv"));   // streamed
 * String text = sandbox.files().read("/home/user/out.txt");
 * }</pre>
 */
public interface Filesystem {

    /** Reads a file as UTF-8 text. */
    String read(String path);

    /** Reads a file's bytes. */
    byte[] readBytes(String path);

    /** Opens a file for streaming; close the stream when done. */
    InputStream readStream(String path);

    /** Writes UTF-8 text to a file. */
    EntryInfo write(String path, String content);

    /** Writes bytes to a file. */
    EntryInfo write(String path, byte[] content);

    /** Streams the rest of {@code content} to a file without holding it in memory; does not close it. */
    EntryInfo write(String path, InputStream content);

    /** Streams a local file to a file in the sandbox. */
    EntryInfo write(String path, Path localFile);

    /** Lists a directory's entries. */
    List<EntryInfo> list(String path);

    /** Lists a directory's entries down to {@code depth} levels (1 = the directory itself). */
    List<EntryInfo> list(String path, int depth);

    /** Whether a file or directory exists. */
    boolean exists(String path);

    /**
     * Describes a file or directory.
     *
     * @throws NotFoundException if there is none
     */
    EntryInfo getInfo(String path);

    /** Creates a directory and its missing parents. Returns false when it already existed. */
    boolean makeDir(String path);

    /** Renames (moves) a file or directory. */
    EntryInfo rename(String oldPath, String newPath);

    /** Removes a file or a directory with everything in it. */
    void remove(String path);
}
