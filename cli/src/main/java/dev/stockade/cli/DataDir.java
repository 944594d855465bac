package dev.stockade.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.net.URI;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Optional;

/**
 * The server's data directory as the CLI sees it: where it is by default, who is using it, and how
 * a running {@code stockade serve} advertises itself to the other subcommands.
 *
 * <p>Why a lock: a Stockade server removes, at start, every sandbox its data directory still holds
 * (orphans of an earlier run). Two servers on one directory would therefore destroy each other's
 * sandboxes. Every server the CLI starts (serve, or run's embedded one) first takes an exclusive
 * lock on {@code server.lock}; {@code serve} also writes {@code serve.json} (URL and key, mode
 * 0600) so that {@code run}, {@code ls} and the rest find it without configuration.
 */
final class DataDir {
    static final String LOCK = "server.lock";
    static final String ADVERT = "serve.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    private DataDir() {}

    /**
     * {@code $STOCKADE_DATA_DIR}; else {@code $XDG_DATA_HOME/stockade} or
     * {@code ~/.local/share/stockade}; but when that lies below a directory others cannot traverse
     * (root's home is 0700 on Debian, and sandboxes run as unprivileged host users that must reach
     * their root filesystem), {@code /var/lib/stockade}.
     */
    static Path defaultDir(Io io) {
        String explicit = io.env("STOCKADE_DATA_DIR");
        if (explicit != null) return Path.of(explicit).toAbsolutePath().normalize();
        String xdg = io.env("XDG_DATA_HOME");
        String home = io.env("HOME");
        Path base = xdg != null ? Path.of(xdg) : Path.of(home != null ? home : System.getProperty("user.home"), ".local", "share");
        Path dir = base.resolve("stockade").toAbsolutePath().normalize();
        return traversable(dir) ? dir : Path.of("/var/lib/stockade");
    }

    /** Whether every existing ancestor of {@code dir} lets others through (o+x). */
    static boolean traversable(Path dir) {
        for (Path p = dir.getParent(); p != null; p = p.getParent()) {
            if (!Files.exists(p)) continue;
            try {
                int mode = (Integer) Files.getAttribute(p, "unix:mode");
                if ((mode & 01) == 0) return false;
            } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
                return false;
            }
        }
        return true;
    }

    /** A running {@code stockade serve}, as it advertised itself. */
    record Advert(URI url, String apiKey, long pid) {}

    /** The server using {@code dir}, if one holds its lock and advertised itself. */
    static Optional<Advert> runningServer(Path dir) {
        Path lockFile = dir.resolve(LOCK);
        if (!Files.exists(lockFile)) return Optional.empty();
        try (FileChannel ch = FileChannel.open(lockFile, StandardOpenOption.WRITE)) {
            FileLock probe = ch.tryLock();
            if (probe != null) {
                probe.release();
                return Optional.empty();
            }
        } catch (IOException | OverlappingFileLockException e) {
            // unreadable or held in this JVM: fall through to the advert
        }
        try {
            JsonNode n = JSON.readTree(Files.readString(dir.resolve(ADVERT)));
            String url = n.path("url").asText("");
            if (url.isEmpty()) return Optional.empty();
            String key = n.path("apiKey").asText("");
            return Optional.of(new Advert(URI.create(url), key.isEmpty() ? null : key, n.path("pid").asLong()));
        } catch (IOException | RuntimeException e) {
            return Optional.empty();
        }
    }

    /** An exclusive claim on a data directory, held for a server's life. */
    static final class Claim implements AutoCloseable {
        private final Path dir;
        private final FileChannel channel;
        private final FileLock lock;
        private boolean advertised;

        private Claim(Path dir, FileChannel channel, FileLock lock) {
            this.dir = dir;
            this.channel = channel;
            this.lock = lock;
        }

        Path dir() {
            return dir;
        }

        /** Writes serve.json (0600) so that other subcommands find this server. */
        void advertise(URI url, String apiKey) throws IOException {
            ObjectNode n = JSON.createObjectNode();
            n.put("url", url.toString());
            n.put("apiKey", apiKey);
            n.put("pid", ProcessHandle.current().pid());
            Path tmp = Files.createTempFile(dir, "serve", ".tmp",
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            Files.writeString(tmp, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(n) + "\n");
            Files.move(tmp, dir.resolve(ADVERT), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            advertised = true;
        }

        @Override
        public void close() {
            try {
                if (advertised) Files.deleteIfExists(dir.resolve(ADVERT));
            } catch (IOException ignored) {
                // a stale advert is harmless: readers check the lock first
            }
            try {
                lock.release();
                channel.close();
            } catch (IOException ignored) {
                // the lock goes with the process anyway
            }
        }
    }

    /** Claims {@code dir} (creating it, mode 0711), or empty when another server holds it. */
    static Optional<Claim> tryClaim(Path dir) throws IOException {
        Files.createDirectories(dir);
        try {
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
        } catch (IOException | UnsupportedOperationException ignored) {
            // the server sets it again and reports what it cannot
        }
        FileChannel ch = FileChannel.open(dir.resolve(LOCK), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
        try {
            FileLock lock = ch.tryLock();
            if (lock == null) {
                ch.close();
                return Optional.empty();
            }
            return Optional.of(new Claim(dir, ch, lock));
        } catch (OverlappingFileLockException e) {
            ch.close();
            return Optional.empty();
        }
    }
}
