package dev.stockade.server.templates;

import dev.stockade.server.error.StockadeError;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.UUID;
import java.util.regex.Pattern;

/**
 * The COPY steps' uploads (E2B's files endpoint and its presigned PUT), kept as bytes under
 * DATA/template-files/TENANT/HASH: the client-computed SHA-256 of the step is a cache key per tenant
 * (the server cannot recompute it from the archive; see issue17-wire.md §4). An upload streams to a
 * temporary file in the same directory and is renamed into place, so a reader never sees a partial
 * file and concurrent uploads of one hash both succeed (the last rename wins; both hold what the
 * hash names). Turning an archive into a layer is the COPY step's work, not this class's.
 * Called on request threads.
 */
public final class TemplateFiles {
    public static final Pattern HASH = Pattern.compile("[0-9a-f]{64}");
    /** The largest upload taken (a COPY step's archive). */
    public static final long MAX_BYTES = 4L << 30;

    private final Path dir;

    public TemplateFiles(Path dir) {
        this.dir = dir;
        try {
            Files.createDirectories(dir);
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
            // Uploads a crashed server left half-written.
            try (var tenants = Files.list(dir)) {
                for (Path t : tenants.toList()) {
                    try (var files = Files.list(t)) {
                        for (Path f : files.toList()) if (f.getFileName().toString().startsWith(".part-")) Files.deleteIfExists(f);
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("preparing the template files' directory failed: " + e.getMessage(), e);
        }
    }

    /** Where the tenant's upload of that hash is (it may not exist). */
    public Path file(String tenant, String hash) {
        if (!HASH.matcher(hash).matches()) throw new IllegalArgumentException("bug: not a files hash: " + hash);
        return dir.resolve(tenantDir(tenant)).resolve(hash);
    }

    public boolean present(String tenant, String hash) {
        return Files.isRegularFile(file(tenant, hash));
    }

    /** Stores exactly {@code length} bytes of {@code in} as the tenant's upload of that hash. */
    public void receive(String tenant, String hash, InputStream in, long length) {
        Path target = file(tenant, hash);
        Path part = target.resolveSibling(".part-" + UUID.randomUUID());
        try {
            Files.createDirectories(target.getParent());
            long n;
            try (OutputStream out = Files.newOutputStream(part)) {
                n = in.transferTo(out);
            }
            if (n != length) {
                throw StockadeError.invalid("the upload ended after " + n + " of its " + length + " bytes (Content-Length)");
            }
            try {
                Files.move(part, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException | FileAlreadyExistsException e) {
                Files.move(part, target, StandardCopyOption.REPLACE_EXISTING);
            }
        } catch (IOException e) {
            throw new StockadeError(StockadeError.Code.NO_SPACE, "the upload could not be stored: " + e.getMessage()
                    .replace(dir.toString(), "DATA/template-files"));
        } finally {
            try {
                Files.deleteIfExists(part);
            } catch (IOException ignored) {
                // a leftover part is removed at the next start
            }
        }
    }

    /** Tenant names are path-safe already (a-z0-9-_); anything else is encoded so it stays one segment. */
    private static String tenantDir(String tenant) {
        return tenant.matches("[A-Za-z0-9_-]{1,128}") ? tenant : "x-" + java.util.HexFormat.of().formatHex(tenant.getBytes(
                java.nio.charset.StandardCharsets.UTF_8));
    }
}
