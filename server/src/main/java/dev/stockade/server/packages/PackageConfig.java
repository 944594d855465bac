package dev.stockade.server.packages;

import java.net.URI;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The operator's settings for the package index that sandboxes reach at {@code http://pypi.stockade/simple/}.
 * Every component is optional; with none of them ({@link #none()}) the index refuses every package.
 *
 * @param wheelhouse a directory of approved distribution files ({@code .whl}, {@code .tar.gz}, {@code .zip});
 *     every file in it is allowed. Null for none.
 * @param upstream a PEP 503/691 simple index (for example a PyPI mirror) whose files are offered when the
 *     allow-list allows them; the server fetches from it, sandboxes never do. Null for none.
 * @param allowlist a requirements-like file: {@code name}, {@code name==1.2.3} (repeat the line for more
 *     versions), {@code name --hash=sha256:HEX} (one or more hashes), {@code #} comments, blank lines and
 *     {@code \} continuations. Null for none.
 * @param cacheDir where verified upstream downloads are kept, by sha256; null to stream without caching
 */
public record PackageConfig(Path wheelhouse, URI upstream, Path allowlist, Path cacheDir) {

    public PackageConfig {
        if (wheelhouse != null) wheelhouse = wheelhouse.toAbsolutePath().normalize();
        if (allowlist != null) allowlist = allowlist.toAbsolutePath().normalize();
        if (cacheDir != null) cacheDir = cacheDir.toAbsolutePath().normalize();
        if (upstream != null) upstream = checkUpstream(upstream);
    }

    /** No wheelhouse, no upstream, no allow-list: every package is refused. */
    public static PackageConfig none() {
        return new PackageConfig(null, null, null, null);
    }

    private static URI checkUpstream(URI u) {
        String scheme = u.getScheme() == null ? "" : u.getScheme().toLowerCase(Locale.ROOT);
        if (!u.isAbsolute() || !(scheme.equals("http") || scheme.equals("https")) || u.getHost() == null) {
            throw new IllegalArgumentException("package upstream '" + u + "' is not an http(s) URL: give the simple"
                    + " index's address, e.g. https://mirror.example/simple/");
        }
        if (u.getRawUserInfo() != null) {
            throw new IllegalArgumentException("package upstream must not carry credentials in its URL: use a mirror"
                    + " reachable without them");
        }
        if (u.getRawQuery() != null || u.getRawFragment() != null) {
            throw new IllegalArgumentException("package upstream '" + u + "' must not have a query or fragment");
        }
        String path = u.getRawPath() == null || u.getRawPath().isEmpty() ? "/" : u.getRawPath();
        if (!path.endsWith("/")) path += "/";
        return URI.create(scheme + "://" + u.getRawAuthority() + path);
    }
}
