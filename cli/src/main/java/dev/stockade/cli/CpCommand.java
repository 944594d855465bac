package dev.stockade.cli;

import dev.stockade.sdk.Sandbox;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** {@code stockade cp}: one file into or out of a sandbox, streamed both ways. */
final class CpCommand implements Subcommand {
    /** {@code ID:PATH}; an id is letters, digits, '-' and '_', so {@code ./a:b} and {@code /x:y} stay local. */
    private static final Pattern REMOTE = Pattern.compile("([A-Za-z0-9][A-Za-z0-9_-]*):(.*)", Pattern.DOTALL);

    @Override
    public String name() {
        return "cp";
    }

    @Override
    public String summary() {
        return "copy a file into or out of a sandbox";
    }

    @Override
    public String usage() {
        return """
                Usage: stockade cp LOCAL SANDBOX_ID:PATH
                       stockade cp SANDBOX_ID:PATH LOCAL

                Copies one file, streamed. LOCAL may be '-' for standard input or output. A relative
                sandbox PATH is relative to /home/user; a PATH ending in '/' (or empty) means "this
                directory, same file name". A LOCAL directory receives the file under its own name.
                Write a local path containing ':' as ./name:with:colons.

                Options:
                """ + CONNECTION_HELP;
    }

    @Override
    public Args.Spec spec() {
        return new Args.Spec(name(), CLIENT_OPTIONS, Set.of(), Set.of(), Map.of(), -1);
    }

    /** One side of a copy. */
    record Location(String sandboxId, String path) {
        boolean remote() {
            return sandboxId != null;
        }

        static Location parse(String arg) {
            if (arg.equals("-")) return new Location(null, "-");
            Matcher m = REMOTE.matcher(arg);
            return m.matches() ? new Location(m.group(1), m.group(2)) : new Location(null, arg);
        }
    }

    /** The sandbox path to write a local file to, filling in the name when only a directory is given. */
    static String remoteTarget(String path, String localName) {
        if (path.isEmpty()) return localName;
        return path.endsWith("/") ? path + localName : path;
    }

    @Override
    public int run(Args args, Io io) throws Exception {
        if (args.positionals().size() != 2) {
            throw new UsageException(name(), "need a source and a destination: stockade cp LOCAL ID:PATH | ID:PATH LOCAL");
        }
        Location from = Location.parse(args.positionals().get(0));
        Location to = Location.parse(args.positionals().get(1));
        if (from.remote() == to.remote()) {
            throw new UsageException(name(), from.remote()
                    ? "both sides are in a sandbox; copy through a local file"
                    : "neither side names a sandbox: write the sandbox side as SANDBOX_ID:PATH");
        }
        if (from.remote() && from.path().isEmpty()) throw new UsageException(name(), "which file in " + from.sandboxId() + "?");
        if (!from.remote() && !from.path().equals("-") && !Files.isRegularFile(Path.of(from.path()))) {
            throw new UsageException(name(), Files.isDirectory(Path.of(from.path()))
                    ? from.path() + " is a directory; cp copies single files"
                    : "no such file: " + from.path());
        }
        if (!from.remote() && from.path().equals("-") && (to.path().isEmpty() || to.path().endsWith("/"))) {
            throw new UsageException(name(), "name the file to write when copying from standard input");
        }
        try (Target target = Target.resolve(name(), args, io, false)) {
            Sandbox sandbox = target.client().connect(from.remote() ? from.sandboxId() : to.sandboxId());
            if (to.remote()) upload(sandbox, from.path(), to.path(), io);
            else download(sandbox, from.path(), to.path(), io);
        }
        return 0;
    }

    private static void upload(Sandbox sandbox, String local, String remote, Io io) {
        if (local.equals("-")) {
            sandbox.files().write(remote, io.in());
        } else {
            Path file = Path.of(local);
            sandbox.files().write(remoteTarget(remote, file.getFileName().toString()), file);
        }
    }

    private static void download(Sandbox sandbox, String remote, String local, Io io) throws IOException {
        if (local.equals("-")) {
            try (InputStream in = sandbox.files().readStream(remote)) {
                in.transferTo(io.out());
            }
            io.out().flush();
            return;
        }
        Path dest = Path.of(local);
        if (Files.isDirectory(dest)) {
            String name = Path.of(remote).getFileName() == null ? "download" : Path.of(remote).getFileName().toString();
            dest = dest.resolve(name);
        }
        Path dir = dest.toAbsolutePath().getParent();
        Path tmp = Files.createTempFile(dir, ".stockade-cp-", ".part");
        try (InputStream in = sandbox.files().readStream(remote)) {
            Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
            Files.move(tmp, dest, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
