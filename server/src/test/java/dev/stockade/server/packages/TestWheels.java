package dev.stockade.server.packages;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

/**
 * Builds tiny valid wheels at test time (PEP 427 layout, PEP 376 RECORD with sha256 digests): a package
 * {@code <name>/__init__.py} defining {@code VERSION}, and its {@code .dist-info} METADATA, WHEEL and RECORD.
 */
public final class TestWheels {
    private TestWheels() {}

    /** The wheel's bytes for project {@code name} at {@code version}. */
    public static byte[] bytes(String name, String version, String requiresPython) throws IOException {
        String dist = PackageNames.normalize(name).replace('-', '_');
        String distInfo = dist + "-" + version + ".dist-info";
        Map<String, byte[]> files = new LinkedHashMap<>();
        files.put(dist + "/__init__.py", ("VERSION = \"" + version + "\"\n").getBytes(StandardCharsets.UTF_8));
        files.put(distInfo + "/METADATA", ("Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n"
                + (requiresPython == null ? "" : "Requires-Python: " + requiresPython + "\n")
                + "Summary: a test package built by Stockade's tests\n\n").getBytes(StandardCharsets.UTF_8));
        files.put(distInfo + "/WHEEL", ("Wheel-Version: 1.0\nGenerator: stockade-tests\nRoot-Is-Purelib: true\n"
                + "Tag: py3-none-any\n").getBytes(StandardCharsets.UTF_8));
        StringBuilder record = new StringBuilder();
        for (Map.Entry<String, byte[]> e : files.entrySet()) {
            record.append(e.getKey()).append(",sha256=").append(recordDigest(e.getValue())).append(',')
                    .append(e.getValue().length).append('\n');
        }
        record.append(distInfo).append("/RECORD,,\n");
        files.put(distInfo + "/RECORD", record.toString().getBytes(StandardCharsets.UTF_8));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (ZipOutputStream zip = new ZipOutputStream(out)) {
            for (Map.Entry<String, byte[]> e : files.entrySet()) {
                zip.putNextEntry(new ZipEntry(e.getKey()));
                zip.write(e.getValue());
                zip.closeEntry();
            }
        }
        return out.toByteArray();
    }

    /** The conventional file name of that wheel. */
    public static String filename(String name, String version) {
        return PackageNames.normalize(name).replace('-', '_') + "-" + version + "-py3-none-any.whl";
    }

    /** Writes the wheel into {@code dir} and returns its path. */
    public static Path write(Path dir, String name, String version, String requiresPython) throws IOException {
        Path p = dir.resolve(filename(name, version));
        Files.write(p, bytes(name, version, requiresPython));
        return p;
    }

    public static String sha256(byte[] b) {
        return HexFormat.of().formatHex(digest(b));
    }

    private static String recordDigest(byte[] b) {
        return Base64.getUrlEncoder().withoutPadding().encodeToString(digest(b));
    }

    private static byte[] digest(byte[] b) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(b);
        } catch (Exception e) {
            throw new IllegalStateException(e);
        }
    }
}
