package dev.stockade.server.packages;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
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
import java.util.concurrent.Flow;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The operator's upstream simple index (a PyPI mirror), read by the server on behalf of sandboxes. Project
 * pages are fetched with bounded size and time, parsed (PEP 691 JSON or PEP 503 HTML) into {@link IndexFile}s
 * and kept for a few minutes; files are fetched only through {@link #open}, which verifies them while
 * streaming. Files without a sha256 on the upstream page are dropped: an unverifiable file is never offered.
 * File URLs come from the upstream page, never from a sandbox's request.
 *
 * <p>Called from the proxy's connection threads, concurrently.
 */
final class Upstream implements AutoCloseable {
    static final long MAX_PAGE_BYTES = 32L << 20;
    static final int MAX_FILES_PER_PAGE = 50_000;
    static final long MAX_FILE_BYTES = 4L << 30;
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
     * @param pageTtl how long a fetched project page is reused
     */
    record Timeouts(Duration connect, Duration response, Duration idle, Duration pageTtl) {
        static final Timeouts DEFAULT = new Timeouts(Duration.ofSeconds(10), Duration.ofSeconds(30), Duration.ofSeconds(60),
                Duration.ofMinutes(5));
    }

    /** A verified download: its exact length and its body. */
    record Download(long length, InputStream body) {}

    private record Page(Instant fetched, List<IndexFile> files) {}

    private final URI base;
    private final Path cacheDir;
    private final Timeouts timeouts;
    private final HttpClient client;
    private final Map<String, Page> pages = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Page> eldest) {
            return size() > CACHED_PAGES;
        }
    };

    Upstream(URI base, Path cacheDir, Timeouts timeouts) {
        this.base = base;
        this.cacheDir = cacheDir;
        this.timeouts = timeouts;
        this.client = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(timeouts.connect())
                .followRedirects(HttpClient.Redirect.NORMAL)
                .build();
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
        HttpResponse<Flow.Publisher<List<ByteBuffer>>> resp = send(HttpRequest.newBuilder(uri)
                .timeout(timeouts.response()).header("Accept", ACCEPT).GET().build(), "page " + uri);
        UpstreamBody body = new UpstreamBody(timeouts.idle().toMillis(), MAX_PAGE_BYTES, "upstream page " + uri);
        resp.body().subscribe(body);
        try (body) {
            int status = resp.statusCode();
            if (status == 404 || status == 410) return List.of();
            if (status != 200) throw new IOException("the upstream index answered HTTP " + status + " for " + uri);
            byte[] bytes = body.readAllBytes();
            String type = resp.headers().firstValue("content-type").orElse("text/html").toLowerCase(Locale.ROOT);
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
     * Opens {@code f} for download: from the cache when it holds the file, else from the upstream. The body
     * fails (instead of ending) if the bytes do not have {@code f}'s sha256 or length; {@code onMismatch} runs
     * then.
     */
    Download open(IndexFile f, Runnable onMismatch) throws IOException {
        String what = "file " + f.filename();
        Path cached = cacheDir == null ? null : cacheDir.resolve(f.sha256());
        if (cached != null && Files.isRegularFile(cached)) {
            long size = Files.size(cached);
            Runnable dropCache = () -> {
                try {
                    Files.deleteIfExists(cached);
                } catch (IOException e) {
                    LOG.warning("cannot delete corrupt cache entry " + cached + ": " + e.getMessage());
                }
                onMismatch.run();
            };
            return new Download(size, new VerifyingStream(Files.newInputStream(cached), f.sha256(), size, MAX_FILE_BYTES,
                    null, dropCache, what));
        }
        HttpResponse<Flow.Publisher<List<ByteBuffer>>> resp = send(HttpRequest.newBuilder(f.upstreamUrl())
                .timeout(timeouts.response()).GET().build(), what);
        UpstreamBody body = new UpstreamBody(timeouts.idle().toMillis(), MAX_FILE_BYTES, "upstream " + what);
        resp.body().subscribe(body);
        boolean handedOver = false;
        try {
            if (resp.statusCode() != 200) {
                throw new IOException("the upstream answered HTTP " + resp.statusCode() + " for " + f.filename());
            }
            long length = resp.headers().firstValueAsLong("content-length").orElse(-1);
            if (f.size() >= 0 && length >= 0 && f.size() != length) {
                throw new IOException("the upstream sends " + length + " bytes for " + f.filename() + " but its index says "
                        + f.size());
            }
            if (length < 0) length = f.size();
            if (length > MAX_FILE_BYTES) throw new IOException(f.filename() + " is larger than " + MAX_FILE_BYTES + " bytes");
            if (length >= 0) {
                VerifyingStream v = new VerifyingStream(body, f.sha256(), length, MAX_FILE_BYTES,
                        cached == null ? null : FileTee.open(cacheDir, cached, false), onMismatch, what);
                handedOver = true;
                return new Download(length, v);
            }
            // No length anywhere: the file must be complete and verified before the first byte goes out.
            Path spoolDir = cacheDir != null ? cacheDir : Path.of(System.getProperty("java.io.tmpdir"));
            Path target = cached != null ? cached : Files.createTempFile(spoolDir, "stockade-pkg-", ".part");
            FileTee tee = FileTee.open(spoolDir, target, true);
            if (tee == null) throw new IOException("cannot spool " + f.filename() + " in " + spoolDir);
            try (VerifyingStream v = new VerifyingStream(body, f.sha256(), -1, MAX_FILE_BYTES, tee, onMismatch, what)) {
                v.transferTo(OutputStream.nullOutputStream());
            } catch (IOException e) {
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
        } finally {
            if (!handedOver) body.close();
        }
    }

    /** The length a GET of {@code f} would have, or -1 if it cannot be known cheaply. */
    long length(IndexFile f) {
        try {
            if (cacheDir != null && Files.isRegularFile(cacheDir.resolve(f.sha256()))) return Files.size(cacheDir.resolve(f.sha256()));
            if (f.size() >= 0) return f.size();
            HttpResponse<Void> r = client.send(HttpRequest.newBuilder(f.upstreamUrl()).timeout(timeouts.response())
                    .method("HEAD", HttpRequest.BodyPublishers.noBody()).build(), HttpResponse.BodyHandlers.discarding());
            return r.statusCode() == 200 ? r.headers().firstValueAsLong("content-length").orElse(-1) : -1;
        } catch (IOException e) {
            return -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return -1;
        }
    }

    private HttpResponse<Flow.Publisher<List<ByteBuffer>>> send(HttpRequest request, String what) throws IOException {
        try {
            return client.send(request, HttpResponse.BodyHandlers.ofPublisher());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while fetching " + what);
        } catch (IOException e) {
            throw new IOException("the upstream index could not be reached for " + what + ": " + e, e);
        }
    }

    @Override
    public void close() {
        client.shutdownNow();
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
