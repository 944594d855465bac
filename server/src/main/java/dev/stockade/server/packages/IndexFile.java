package dev.stockade.server.packages;

import java.net.URI;
import java.nio.file.Path;

/**
 * One distribution file the index may list: from the wheelhouse ({@link #path} set) or from the upstream
 * index ({@link #upstreamUrl} set), or the placeholder that stands for a refused project (neither).
 *
 * @param project normalized project name
 * @param filename the file's name, which pip parses for the project name and version
 * @param version the version from the file name, as written
 * @param sha256 lower-case hex digest, or null if unknown (only for the placeholder)
 * @param requiresPython the Requires-Python specifier, or null if unknown
 * @param size size in bytes, or -1 if unknown
 * @param yanked null if not yanked, else the reason (possibly empty)
 * @param path the wheelhouse file
 * @param upstreamUrl where the server fetches an upstream file; never shown to sandboxes
 */
record IndexFile(String project, String filename, String version, String sha256, String requiresPython, long size,
                 String yanked, Path path, URI upstreamUrl) {

    boolean fromWheelhouse() {
        return path != null;
    }

    boolean fromUpstream() {
        return upstreamUrl != null;
    }

    /** Project name and version read from a distribution file name, or null if it is not one. */
    record NameVersion(String project, String version) {}

    /**
     * Reads the project and version from a wheel ({@code name-ver(-build)?-py-abi-plat.whl}, PEP 427) or an
     * sdist ({@code name-ver.tar.gz} / {@code .zip}) file name; null if it is neither.
     */
    static NameVersion parseFilename(String filename) {
        if (filename == null || filename.length() > 255) return null;
        String name;
        String version;
        if (filename.endsWith(".whl")) {
            String[] parts = filename.substring(0, filename.length() - 4).split("-", -1);
            if (parts.length != 5 && parts.length != 6) return null;
            name = parts[0];
            version = parts[1];
        } else {
            String base;
            if (filename.endsWith(".tar.gz")) base = filename.substring(0, filename.length() - 7);
            else if (filename.endsWith(".zip")) base = filename.substring(0, filename.length() - 4);
            else return null;
            int dash = -1;
            for (int i = base.length() - 2; i > 0; i--) {
                if (base.charAt(i) == '-' && Character.isDigit(base.charAt(i + 1))) {
                    dash = i;
                    break;
                }
            }
            if (dash < 0) return null;
            name = base.substring(0, dash);
            version = base.substring(dash + 1);
        }
        if (!PackageNames.isValid(name) || version.isEmpty() || version.length() > Pep440.MAX_LENGTH) return null;
        for (int i = 0; i < version.length(); i++) {
            char c = version.charAt(i);
            if (!(Character.isLetterOrDigit(c) && c < 0x80) && "._+!".indexOf(c) < 0) return null;
        }
        return new NameVersion(PackageNames.normalize(name), version);
    }
}
