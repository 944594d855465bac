package dev.stockade.server.templates;

import dev.stockade.server.templates.CopyRefused.Code;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * One COPY step as the SDKs send it — args {@code [src, dest, owner, mode]}, owner and mode
 * possibly "" — and its meaning in a build's context, as E2B's server gives it
 * (infra {@code commands/copy.go} and {@code copy_script.sh}): the source is the static prefix of
 * the {@code src} pattern inside the upload ({@code folder/*} → {@code folder}, {@code *.txt} →
 * the upload's root, {@code a.txt} → {@code a.txt}), a relative destination resolves against the
 * workdir or else the user's home, the owner defaults to the current user ({@code u} alone is
 * {@code u:u}), the mode (octal) replaces the archive's modes when given. Planned without I/O by
 * {@link CopyToLayer} on the build's thread.
 */
public record CopyStep(String src, String dest, String owner, String mode) {
    private static final Pattern OCTAL = Pattern.compile("[0-7]{1,4}");

    /** The step from its wire args (at least src and dest; owner and mode default to ""; more are ignored, as E2B does). */
    public static CopyStep of(List<String> args) {
        if (args == null || args.size() < 2 || args.stream().anyMatch(a -> a == null)) {
            throw new CopyRefused(Code.BAD_ARGUMENTS, "COPY takes a source, a destination and optionally an owner and a mode");
        }
        return new CopyStep(args.get(0), args.get(1), args.size() > 2 ? args.get(2) : "", args.size() > 3 ? args.get(3) : "");
    }

    /** Where and how the step writes, in the sandbox's terms. */
    record Target(
            String source,        // the source's name in the upload, normalised; "" = the upload's root
            String destination,   // absolute, normalised ("/" or "/a/b")
            boolean intoDirectory, // dest names a directory ("x/", ".", "/"): a single file or symlink goes inside it
            int uid, int gid,
            int mode) {           // -1: the archive's modes
    }

    Target resolve(BuildContext ctx, boolean allowSetuid) {
        String source;
        try {
            source = ArchiveReader.normalise(staticPrefix(src), "the source");
        } catch (CopyRefused e) {
            throw new CopyRefused(Code.BAD_ARGUMENTS, "the COPY source " + CopyRefused.shown(src) + " must stay inside the context directory");
        }
        String base = ctx.workdir() != null ? ctx.workdir() : ctx.home();
        String absolute = dest.startsWith("/") ? dest : base + "/" + dest;
        // "dir/", "." and ".." (alone or last) name a directory to the shell E2B's server copies with; so does "/"
        boolean into = dest.isEmpty() || dest.endsWith("/") || dest.equals(".") || dest.endsWith("/.")
                || dest.equals("..") || dest.endsWith("/..");
        String owners = owner.isEmpty() ? ctx.user() + ":" + ctx.user() : owner.contains(":") ? owner : owner + ":" + owner;
        int colon = owners.indexOf(':');
        int uid = id(owners.substring(0, colon), ctx);
        int gid = id(owners.substring(colon + 1), ctx);
        int bits = -1;
        if (!mode.isEmpty()) {
            if (!OCTAL.matcher(mode).matches()) {
                throw new CopyRefused(Code.BAD_ARGUMENTS, "the COPY mode " + CopyRefused.shown(mode) + " is not an octal mode like 0755");
            }
            bits = Integer.parseInt(mode, 8) & (allowSetuid ? 07777 : 01777);
        }
        String destination = normaliseAbsolute(absolute);
        return new Target(source, destination, into || destination.equals("/"), uid, gid, bits);
    }

    /**
     * doublestar's {@code SplitPattern(src + "/")} base, as E2B's server takes it: everything before
     * the last "/" that precedes the first glob character ({@code * ? [ {}}, a backslash escaping
     * the next one); "." when there is none.
     */
    static String staticPrefix(String src) {
        String p = src + "/";
        int split = -1;
        for (int i = 0; i < p.length(); i++) {
            char c = p.charAt(i);
            if (c == '\\') i++;
            else if (c == '/') split = i;
            else if (c == '*' || c == '?' || c == '[' || c == '{') break;
        }
        if (split == 0) return "/";
        return split > 0 ? p.substring(0, split) : ".";
    }

    /** An absolute path with ".", ".." and empty segments resolved lexically, ".." stopping at "/". */
    static String normaliseAbsolute(String path) {
        List<String> parts = new ArrayList<>();
        for (String s : path.split("/")) {
            if (s.isEmpty() || s.equals(".")) continue;
            if (s.equals("..")) {
                if (!parts.isEmpty()) parts.removeLast();
            } else {
                if (s.indexOf('\0') >= 0) throw new CopyRefused(Code.BAD_ARGUMENTS, "the COPY destination has a NUL in it");
                parts.add(s);
            }
        }
        return "/" + String.join("/", parts);
    }

    /** A user or group name known to the build, or a number in the sandbox's id range. */
    private static int id(String name, BuildContext ctx) {
        Integer known = ctx.ids().get(name);
        if (known != null) return known;
        if (name.matches("[0-9]{1,5}") && Integer.parseInt(name) <= 65535) return Integer.parseInt(name);
        throw new CopyRefused(Code.UNKNOWN_OWNER, "the COPY owner " + CopyRefused.shown(name)
                + " is not a user this build knows (" + String.join(", ", ctx.ids().keySet().stream().sorted().toList())
                + ") nor a number from 0 to 65535");
    }
}
