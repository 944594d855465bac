package dev.stockade.server.templates;

/**
 * Why a COPY step's archive was not turned into a layer: a machine-readable {@link Code} and a
 * message for the template's author ("what: why"), naming entries as the archive names them and
 * never a host path. Every code is the author's doing (a 400 at the API) except
 * {@link Code#WRITE_FAILED}, the host's disk. Thrown by {@link CopyToLayer} on the build's thread,
 * after the half-written layer is removed.
 */
public final class CopyRefused extends RuntimeException {
    /** The kinds of refusal; the names are the wire's {@code error_code}s, lower-cased. */
    public enum Code {
        /** The step's arguments: too few, a mode that is not octal, a source reaching out with "..". */
        BAD_ARGUMENTS,
        /** An owner that is neither a known user name nor a number in the sandbox's range. */
        UNKNOWN_OWNER,
        /** Not a tar (or tar.gz) archive, or a header the reader cannot parse. */
        MALFORMED_ARCHIVE,
        /** An entry name that is absolute, has a ".." segment, is empty or holds a NUL. */
        UNSAFE_NAME,
        /** An entry type a layer may not hold: devices, fifos, sparse files, anything unknown. */
        UNSUPPORTED_TYPE,
        /** An entry below a symlink entry of the same archive, or below a file. */
        THROUGH_SYMLINK,
        /** A hard link to something that is not a regular file written earlier by the archive. */
        BAD_HARD_LINK,
        /** A symlink with an empty or overlong target. */
        BAD_SYMLINK,
        /** The same name twice (refused rather than last-wins: a replaced entry could change type). */
        DUPLICATE_ENTRY,
        /** The step's source (the static prefix of its pattern) is not in the archive. */
        SOURCE_NOT_FOUND,
        /** More uncompressed bytes than the limit (a gzip bomb stops here). */
        TOO_LARGE,
        /** More entries than the limit. */
        TOO_MANY_ENTRIES,
        /** The host failed to write the layer (its disk: full, or an unwritable name). */
        WRITE_FAILED
    }

    private final Code code;

    public CopyRefused(Code code, String message) {
        super(message);
        this.code = code;
    }

    public Code code() {
        return code;
    }

    /** An entry name as shown in a message: control characters escaped, at most 200 characters. */
    static String shown(String name) {
        StringBuilder b = new StringBuilder("'");
        for (int i = 0; i < name.length() && i < 200; i++) {
            char c = name.charAt(i);
            if (c < 0x20 || c == 0x7f) b.append(String.format("\\x%02x", (int) c));
            else b.append(c);
        }
        if (name.length() > 200) b.append("…");
        return b.append('\'').toString();
    }
}
