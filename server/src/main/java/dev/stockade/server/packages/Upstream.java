package dev.stockade.server.packages;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The operator's upstream simple index (a PyPI mirror), read by the server on behalf of sandboxes. Project
 * pages are fetched with bounded size and time, parsed (PEP 691 JSON or PEP 503 HTML) into {@link IndexFile}s
 * and kept for a few minutes; files are fetched only through {@link #open}, which downloads the whole file
 * into the cache (or a temporary file), verifies its sha256, and only then hands it over: not one byte of an
 * unverified file reaches a sandbox. Files without a sha256 on the upstream page are dropped: an unverifiable
 * file is never offered. File URLs come from the upstream page, never from a sandbox's request, and every
 * connection to an origin other than the configured upstream goes through the egress gate
 * ({@link UpstreamHttp}).
 *
 * <p>Called from the proxy's connection threads, concurrently.
 */
final class Upstream {
    static final long MAX_PAGE_BYTES = 32L << 20;
    static final int MAX_FILES_PER_PAGE = 50_000;
    static final long MAX_FILE_BYTES = 4L << 30;
    /** Downloads spooled at once (each up to {@link #MAX_FILE_BYTES} on disk); more wait, then fail. */
    static final int MAX_CONCURRENT_DOWNLOADS = 16;
    private static final int CACHED_PAGES = 256;
    private static final String ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2,"
            + " text/html;q=0.1";
    private static final Pattern ANCHOR = Pattern.compile("<a\\b([^>]*)>", Pattern.CASE_INSENSITIVE);
    private static final Pattern ATTRIBUTE = Pattern.compile(
            "([A-Za-z_:][-A-Za-z0-9_:.]*)\\s*=\\s*(?:\"([^\"]*)\"|'([^']*)'|([^\\s\"'>]+))");
    private static final Pattern YANKED_FLAG = Pattern.compile("(^|\\s)data-yanked(\\s|=|$)", Pattern.CASE_INSENSITIVE);
    private static final Pattern HEX64 = Pattern.compile("[0-9a-fA-F]{64}");
    private static final Pattern ENTITY = Pattern.compile("&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|amp|lt|gt|quot|apos);");
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Logger LOG = Logger.getLogger(Upstream.class.getName());

    /**
     * @param connect to open a connection
     * @param response from sending a request to its response's headers
     * @param idle the longest wait for the next bytes of a body
     * @param total the longest a whole fetch (redirects and body included) may take
     * @param pageTtl how long a fetched project page is reused
     */
    record Timeouts(Duration connect, Duration response, Duration idle, Duration total, Duration pageTtl) {
        static final Timeouts DEFAULT = new Timeouts(Duration.ofSeconds(10), Duration.ofSeconds(30), Duration.ofSeconds(60),
                Duration.ofMinutes(15), Duration.ofMinutes(5));
    }

    /** A verified download: its exact length and its body (a file already checked against its sha256). */
    record Download(long length, InputStream body) {}

    private record Page(Instant fetched, List<IndexFile> files) {}

    private final URI base;
    private final Path cacheDir;
    private final Timeouts timeouts;
    private final UpstreamHttp http;
    private final Semaphore downloads = new Semaphore(MAX_CONCURRENT_DOWNLOADS);
    private final Map<String, Page> pages = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Page> eldest) {
            return size() > CACHED_PAGES;
        }
    };

    /** @param gate judges every origin but {@code base}'s (file URLs and redirects elsewhere) */
    Upstream(URI base, Path cacheDir, Timeouts timeouts, UpstreamHttp.Destinations gate) {
        this.base = base;
        this.cacheDir = cacheDir;
        this.timeouts = timeouts;
        this.http = new UpstreamHttp(base, gate, timeouts);
    }

    /** Every file the upstream lists for {@code project} with a sha256; empty if it does not know the project. */
    List<IndexFile> files(String project) throws IOException {
        synchronized (pages) {
            Page p = pages.get(project);
            if (p != null && p.fetched().plus(timeouts.pageTtl()).isAfter(Instant.now())) return p.files();
        }
        List<IndexFile> files = fetchPage(project);
        synchronized (pages) {
            pages.put(project, new Page(Instant.now(), files));
        }
        return files;
    }

    /** The upstream file named {@code filename}, or null. */
    IndexFile find(String project, String filename) throws IOException {
        for (IndexFile f : files(project)) if (f.filename().equals(filename)) return f;
        return null;
    }

    private List<IndexFile> fetchPage(String project) throws IOException {
        URI uri = base.resolve(project + "/");
        try (UpstreamHttp.Response resp = http.get(uri, ACCEPT)) {
            int status = resp.status();
            if (status == 404 || status == 410) return List.of();
            if (status != 200) throw new IOException("the upstream index answered HTTP " + status + " for " + uri);
            if (resp.contentLength() > MAX_PAGE_BYTES) throw new IOException("the upstream page " + uri + " is too large");
            byte[] bytes = resp.body().readNBytes((int) MAX_PAGE_BYTES + 1);
            if (bytes.length > MAX_PAGE_BYTES) throw new IOException("the upstream page " + uri + " is too large");
            String type = resp.headers().getOrDefault("content-type", "text/html").toLowerCase(Locale.ROOT);
            URI pageUri = resp.uri();
            return type.contains("json") ? parseJson(project, pageUri, bytes) : parseHtml(project, pageUri, bytes);
        }
    }

    /** Files of {@code project} on a PEP 691 JSON page; others and unverifiable ones are dropped. */
    static List<IndexFile> parseJson(String project, URI pageUri, byte[] bytes) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(bytes);
        } catch (IOException e) {
            throw new IOException("the upstream page " + pageUri + " is not valid JSON: " + e.getMessage());
        }
        JsonNode files = root == null ? null : root.get("files");
        if (files == null || !files.isArray()) throw new IOException("the upstream page " + pageUri + " has no 'files' list");
        List<IndexFile> out = new ArrayList<>();
        for (JsonNode f : files) {
            if (out.size() >= MAX_FILES_PER_PAGE) break;
            JsonNode hashes = f.get("hashes");
            String sha = hashes != null && hashes.get("sha256") != null ? hashes.get("sha256").asText(null) : null;
            JsonNode yankedNode = f.get("yanked");
            String yanked = yankedNode == null || (yankedNode.isBoolean() && !yankedNode.asBoolean()) ? null
                    : yankedNode.isTextual() ? yankedNode.asText() : "";
            JsonNode rp = f.get("requires-python");
            JsonNode size = f.get("size");
            IndexFile file = file(project, pageUri, text(f.get("url")), sha, rp == null || rp.isNull() ? null : rp.asText(),
                    size != null && size.canConvertToLong() ? size.asLong() : -1, yanked);
            if (file != null) out.add(file);
        }
        return out;
    }

    /** Files of {@code project} on a PEP 503 HTML page; others and unverifiable ones are dropped. */
    static List<IndexFile> parseHtml(String project, URI pageUri, byte[] bytes) {
        String html = new String(bytes, StandardCharsets.UTF_8);
        List<IndexFile> out = new ArrayList<>();
        Matcher a = ANCHOR.matcher(html);
        while (a.find() && out.size() < MAX_FILES_PER_PAGE) {
            String attrs = a.group(1);
            Map<String, String> values = new LinkedHashMap<>();
            Matcher m = ATTRIBUTE.matcher(attrs);
            while (m.find()) {
                String v = m.group(2) != null ? m.group(2) : m.group(3) != null ? m.group(3) : m.group(4);
                values.putIfAbsent(m.group(1).toLowerCase(Locale.ROOT), unescape(v));
            }
            String href = values.get("href");
            if (href == null) continue;
            String yanked = values.containsKey("data-yanked") ? values.get("data-yanked")
                    : YANKED_FLAG.matcher(attrs).find() ? "" : null;
            IndexFile file = file(project, pageUri, href, null, values.get("data-requires-python"), -1, yanked);
            if (file != null) out.add(file);
        }
        return out;
    }

    private static IndexFile file(String project, URI pageUri, String href, String sha, String requiresPython, long size,
                                  String yanked) {
        if (href == null || href.length() > 4096) return null;
        URI url;
        try {
            url = pageUri.resolve(href.strip());
        } catch (IllegalArgumentException e) {
            return null;
        }
        String scheme = url.getScheme() == null ? "" : url.getScheme().toLowerCase(Locale.ROOT);
        if (!(scheme.equals("http") || scheme.equals("https")) || url.getPath() == null) return null;
        String fragment = url.getFragment();
        if (sha == null && fragment != null && fragment.startsWith("sha256=")) sha = fragment.substring(7);
        if (sha == null || !HEX64.matcher(sha).matches()) return null;
        String path = url.getPath();
        String filename = path.substring(path.lastIndexOf('/') + 1);
        IndexFile.NameVersion nv = IndexFile.parseFilename(filename);
        if (nv == null || !nv.project().equals(project)) return null;
        if (requiresPython != null && (requiresPython.isBlank() || requiresPython.length() > 200
                || !requiresPython.chars().allMatch(c -> c >= 0x20 && c < 0x7f))) {
            requiresPython = null;
        }
        if (yanked != null && (yanked.length() > 200 || !yanked.chars().allMatch(c -> c >= 0x20 && c < 0x7f))) yanked = "";
        String raw = url.toString();
        int hash = raw.indexOf('#');
        URI download = URI.create(hash < 0 ? raw : raw.substring(0, hash));
        return new IndexFile(project, filename, nv.version(), sha.toLowerCase(Locale.ROOT), requiresPython, size, yanked,
                null, download);
    }

    private static String text(JsonNode n) {
        return n == null || !n.isTextual() ? null : n.asText();
    }

    static String unescape(String s) {
        if (s.indexOf('&') < 0) return s;
        Matcher m = ENTITY.matcher(s);
        StringBuilder b = new StringBuilder();
        while (m.find()) {
            String e = m.group(1);
            String r = switch (e) {
                case "amp" -> "&";
                case "lt" -> "<";
                case "gt" -> ">";
                case "quot" -> "\"";
                case "apos" -> "'";
                default -> {
                    int cp = e.startsWith("#x") || e.startsWith("#X") ? Integer.parseInt(e.substring(2), 16) : Integer.parseInt(e.substring(1));
                    yield Character.isValidCodePoint(cp) ? new String(Character.toChars(cp)) : "";
                }
            };
            m.appendReplacement(b, Matcher.quoteReplacement(r));
        }
        m.appendTail(b);
        return b.toString();
    }

    /**
     * Opens {@code f} for download: from the cache when it holds the file (checked again), else from the
     * upstream, spooled whole into the cache or a temporary file and verified before it is opened. A file
     * whose bytes do not have {@code f}'s sha256 (or length) is an {@link IOException} ("... was not
     * delivered: ...") and never a partial body; {@code onMismatch} runs then.
     */
    Download open(IndexFile f, Runnable onMismatch) throws IOException {
        String what = "file " + f.filename();
        Path cached = cacheDir == null ? null : cacheDir.resolve(f.sha256());
        if (cached != null && Files.isRegularFile(cached)) {
            try {
                verify(Files.newInputStream(cached), f, Files.size(cached), null, null, what);
                return new Download(Files.size(cached), Files.newInputStream(cached));
            } catch (IOException e) {
                LOG.warning("cache entry " + cached + " is corrupt and fetched again: " + e.getMessage());
                Files.deleteIfExists(cached);
            }
        }
        try {
            if (!downloads.tryAcquire(timeouts.response().toMillis(), TimeUnit.MILLISECONDS)) {
                throw new IOException("too many package downloads in progress; try again");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while waiting to fetch " + what);
        }
        try {
            return spool(f, cached, onMismatch, what);
        } finally {
            downloads.release();
        }
    }

    private Download spool(IndexFile f, Path cached, Runnable onMismatch, String what) throws IOException {
        Path spoolDir = cacheDir != null ? cacheDir : Path.of(System.getProperty("java.io.tmpdir"));
        Path target = cached != null ? cached : Files.createTempFile(spoolDir, "stockade-pkg-", ".part");
        try (UpstreamHttp.Response resp = http.get(f.upstreamUrl(), null)) {
            if (resp.status() != 200) {
                throw new IOException("the upstream answered HTTP " + resp.status() + " for " + f.filename());
            }
            long length = resp.contentLength();
            if (f.size() >= 0 && length >= 0 && f.size() != length) {
                throw new IOException("the upstream sends " + length + " bytes for " + f.filename() + " but its index says "
                        + f.size());
            }
            if (length < 0) length = f.size();
            if (length > MAX_FILE_BYTES) throw new IOException(f.filename() + " is larger than " + MAX_FILE_BYTES + " bytes");
            FileTee tee = FileTee.open(spoolDir, target, true);
            if (tee == null) throw new IOException("cannot spool " + f.filename() + " in the package cache");
            verify(resp.body(), f, length, tee, onMismatch, what);
        } catch (IOException | RuntimeException e) {
            if (cached == null) Files.deleteIfExists(target);
            throw e;
        }
        long size = Files.size(target);
        InputStream in = Files.newInputStream(target);
        if (cached != null) return new Download(size, in);
        return new Download(size, new java.io.FilterInputStream(in) {
            @Override
            public void close() throws IOException {
                try {
                    super.close();
                } finally {
                    Files.deleteIfExists(target);
                }
            }
        });
    }

    /** Reads {@code in} to its end through a {@link VerifyingStream}: returns only if every byte matched. */
    private static void verify(InputStream in, IndexFile f, long length, VerifyingStream.Tee tee, Runnable onMismatch,
                               String what) throws IOException {
        try (VerifyingStream v = new VerifyingStream(in, f.sha256(), length, MAX_FILE_BYTES, tee, onMismatch, what)) {
            v.transferTo(OutputStream.nullOutputStream());
        }
    }

    /** The length a GET of {@code f} would have, or -1 if it is not known without downloading it. */
    long length(IndexFile f) {
        Path cached = cacheDir == null ? null : cacheDir.resolve(f.sha256());
        try {
            if (cached != null && Files.isRegularFile(cached)) return Files.size(cached);
        } catch (IOException e) {
            // the page's size, if any, is as good
        }
        return f.size();
    }

    /**
     * A copy into a directory, moved into place on commit. A best-effort copy (the cache) only stops on write
     * errors; a required one (spooling) fails the download.
     */
    static final class FileTee implements VerifyingStream.Tee {
        private final Path partial;
        private final Path target;
        private final boolean required;
        private OutputStream out;
        private boolean broken;
        private boolean done;

        private FileTee(Path partial, Path target, boolean required, OutputStream out) {
            this.partial = partial;
            this.target = target;
            this.required = required;
            this.out = out;
        }

        static FileTee open(Path dir, Path target, boolean required) {
            try {
                Path partial = Files.createTempFile(dir, ".partial-", ".tmp");
                return new FileTee(partial, target, required, new BufferedOutputStream(Files.newOutputStream(partial), 1 << 16));
            } catch (IOException e) {
                LOG.log(Level.WARNING, "cannot write a download into " + dir + ": " + e.getMessage());
                return null;
            }
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            if (broken || done) return;
            try {
                out.write(b, off, len);
            } catch (IOException e) {
                LOG.log(Level.WARNING, "writing " + target + " failed: " + e.getMessage());
                abort();
                if (required) throw e;
            }
        }

        @Override
        public void commit() throws IOException {
            if (done) return;
            if (broken) {
                if (required) throw new IOException("the copy of " + target.getFileName() + " could not be written");
                return;
            }
            try {
                out.close();
                out = null;
                Files.move(partial, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                done = true;
            } catch (IOException e) {
                abort();
                if (required) throw e;
                LOG.log(Level.WARNING, "caching " + target + " failed: " + e.getMessage());
            }
        }

        @Override
        public void abort() {
            if (done) return;
            broken = true;
            try {
                if (out != null) out.close();
            } catch (IOException ignored) {
                // the partial file is deleted next
            }
            out = null;
            try {
                Files.deleteIfExists(partial);
            } catch (IOException e) {
                LOG.warning("cannot delete " + partial + ": " + e.getMessage());
            }
        }
    }
}
