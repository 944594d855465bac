package dev.stockade.server.packages;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * The operator's directory of approved distribution files. Read on every request (so adding a file needs
 * no restart); each file's sha256 and Requires-Python are computed once per (size, modification time).
 * File names come only from listing the directory, never from a request, so no request can name a path.
 */
final class Wheelhouse {
    static final int MAX_FILES = 20_000;
    private static final int MAX_METADATA_BYTES = 1 << 20;
    private static final Logger LOG = Logger.getLogger(Wheelhouse.class.getName());

    private record Facts(long size, long modified, String sha256, String requiresPython) {}

    /** A file found in the directory, not yet hashed. */
    record Listed(String project, String version, String filename, Path path) {}

    private final Path dir;
    private final Map<Path, Facts> facts = new ConcurrentHashMap<>();

    Wheelhouse(Path dir) {
        this.dir = dir;
    }

    boolean configured() {
        return dir != null;
    }

    Path dir() {
        return dir;
    }

    /** Every distribution file, by normalized project name (sorted), without hashing anything. */
    Map<String, List<Listed>> listing() {
        Map<String, List<Listed>> byProject = new TreeMap<>();
        if (dir == null) return byProject;
        int seen = 0;
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
            for (Path p : entries) {
                if (++seen > MAX_FILES) {
                    LOG.warning("wheelhouse " + dir + " has more than " + MAX_FILES + " entries; the rest are ignored");
                    break;
                }
                String filename = p.getFileName().toString();
                IndexFile.NameVersion nv = IndexFile.parseFilename(filename);
                if (nv == null || !Files.isRegularFile(p)) continue;
                byProject.computeIfAbsent(nv.project(), k -> new ArrayList<>())
                        .add(new Listed(nv.project(), nv.version(), filename, p));
            }
        } catch (IOException e) {
            LOG.log(Level.WARNING, "wheelhouse " + dir + " cannot be listed: " + e.getMessage());
        }
        byProject.values().forEach(l -> l.sort((a, b) -> a.filename().compareTo(b.filename())));
        return byProject;
    }

    /** The project's files with digests; unreadable files are left out (and logged). */
    List<IndexFile> files(String project) {
        List<Listed> listed = listing().getOrDefault(project, List.of());
        List<IndexFile> out = new ArrayList<>(listed.size());
        for (Listed l : listed) {
            Facts f = facts(l.path());
            if (f != null) {
                out.add(new IndexFile(project, l.filename(), l.version(), f.sha256(), f.requiresPython(), f.size(), null,
                        l.path(), null));
            }
        }
        return out;
    }

    private Facts facts(Path p) {
        try {
            BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            if (a.isSymbolicLink()) a = Files.readAttributes(p, BasicFileAttributes.class);
            long size = a.size();
            long modified = a.lastModifiedTime().toMillis();
            Facts known = facts.get(p);
            if (known != null && known.size() == size && known.modified() == modified) return known;
            String sha = sha256(p);
            String requiresPython = p.getFileName().toString().endsWith(".whl") ? requiresPython(p) : null;
            Facts f = new Facts(size, modified, sha, requiresPython);
            facts.put(p, f);
            return f;
        } catch (IOException e) {
            LOG.log(Level.WARNING, "wheelhouse file " + p + " cannot be read: " + e.getMessage());
            return null;
        }
    }

    static String sha256(Path p) throws IOException {
        MessageDigest d = sha256Digest();
        try (InputStream in = Files.newInputStream(p)) {
            byte[] buf = new byte[1 << 16];
            for (int n; (n = in.read(buf)) > 0; ) d.update(buf, 0, n);
        }
        return HexFormat.of().formatHex(d.digest());
    }

    static MessageDigest sha256Digest() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK has no SHA-256", e);
        }
    }

    /** The Requires-Python header of a wheel's METADATA, or null if absent or unreadable. */
    static String requiresPython(Path wheel) {
        try (ZipFile zip = new ZipFile(wheel.toFile())) {
            Enumeration<? extends ZipEntry> entries = zip.entries();
            while (entries.hasMoreElements()) {
                ZipEntry e = entries.nextElement();
                String n = e.getName();
                int slash = n.indexOf('/');
                if (slash < 0 || !n.substring(0, slash).endsWith(".dist-info") || !n.substring(slash + 1).equals("METADATA")) continue;
                try (InputStream in = zip.getInputStream(e)) {
                    String text = new String(in.readNBytes(MAX_METADATA_BYTES), StandardCharsets.UTF_8);
                    for (String line : text.split("\r?\n")) {
                        if (line.isEmpty()) break;
                        int colon = line.indexOf(':');
                        if (colon > 0 && line.substring(0, colon).equalsIgnoreCase("Requires-Python")) {
                            String v = line.substring(colon + 1).strip();
                            return v.isEmpty() || v.length() > 200 ? null : v;
                        }
                    }
                }
                return null;
            }
        } catch (IOException | RuntimeException e) {
            LOG.fine("no Requires-Python from " + wheel + ": " + e);
        }
        return null;
    }
}
