package dev.stockade.server.packages;

import dev.stockade.server.error.StockadeError;
import dev.stockade.server.egress.Decision;
import dev.stockade.server.egress.DecisionSink;
import dev.stockade.server.egress.InternalRequest;
import dev.stockade.server.egress.InternalResponse;
import dev.stockade.server.egress.InternalSite;
import dev.stockade.server.egress.ServerFetchGate;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The package index sandboxes install from: {@code http://pypi.stockade/simple/}, served in-process by the
 * egress proxy. It lists only what the {@link PackagePolicy} allows — wheelhouse files, and upstream files
 * the allow-list allows (pins, hashes) — in PEP 503 HTML or PEP 691 JSON, and serves those files itself
 * from {@code /files/<project>/<filename>}: the sandbox never learns or reaches the upstream. Upstream files
 * are downloaded whole and verified against their sha256 before the first byte is served; a mismatch is a
 * 502 naming the cause, with none of the file's bytes. Upstream file URLs and redirects leaving the configured
 * upstream pass the egress gate's address checks. Wheelhouse files win
 * over upstream files of the same name. Each request for a project records a {@link Decision} (kind
 * {@code package}).
 *
 * <h2>How a refusal reaches the user</h2>
 * pip 23 (Debian's) logs a failed project page (403, 404, any error status) at debug level only, so the user
 * would read nothing but "Could not find a version that satisfies the requirement". A failed <em>file</em>
 * download, by contrast, is an error printed at the default verbosity with the response's reason phrase:
 * <pre>
 * ERROR: Could not install requirement evil from http://pypi.stockade/files/evil/evil-0%2Brefused.by.package.policy-py2.py3-none-any.whl
 *   because of HTTP error 403 Client Error: package 'evil' is not allowed by this server's package policy: ... for url: ...
 * </pre>
 * So the page of a refused project is a normal page (HTTP 200) listing one placeholder wheel whose version is
 * {@value #PLACEHOLDER_VERSION}; downloading it (like any file of a refused project) answers 403 with the
 * policy's sentence as the body and in the {@value #REASON_HEADER} header, which the proxy uses as the status
 * line's reason phrase. For {@code pip install evil} (or any specifier the placeholder satisfies) pip picks the
 * placeholder and prints the sentence. For {@code pip install evil==1.0} pip cannot pick it, and prints
 * {@code Could not find a version that satisfies the requirement evil==1.0 (from versions:
 * 0+refused.by.package.policy)}: the version itself says why. Even a proxy that writes the standard
 * "Forbidden" phrase leaves the word "policy" in pip's output, through the placeholder's URL. Alternatives
 * rejected: a 403/404 page (pip hides it); a 200 page with a non-HTML Content-Type carrying the sentence
 * (pip warns with it, but it is a 200 for a refusal and a hack on pip's error path); yanked placeholders (pip
 * only picks yanked files for {@code ==} pins).
 *
 * <p>The proxy's connection threads call {@link #handle} concurrently; it blocks on disk and upstream I/O.
 */
public final class PackageIndex implements InternalSite, AutoCloseable {
    /** The host sandboxes reach the index at. */
    public static final String HOST = "pypi.stockade";
    /**
     * Response header carrying the sentence a refusal should show as the HTTP reason phrase (printable ASCII,
     * at most {@value #MAX_REASON} characters). The proxy writes it into the status line; the body says the same.
     */
    public static final String REASON_HEADER = InternalResponse.REASON_HEADER;
    /** The version of the placeholder file a refused project's page lists. */
    public static final String PLACEHOLDER_VERSION = "0+refused.by.package.policy";
    static final int MAX_REASON = 400;
    static final int MAX_TARGET = 2048;
    static final int MAX_SEGMENT = 255;
    private static final String OCTETS = "application/octet-stream";
    private static final Logger LOG = Logger.getLogger(PackageIndex.class.getName());

    private final PackagePolicy policy;
    private final Upstream upstream;

    /**
     * Builds the policy from {@code config} (reading the allow-list) and the upstream client, if any.
     *
     * @param gate judges every upstream connection to an origin other than the configured upstream's
     */
    public PackageIndex(PackageConfig config, ServerFetchGate gate) {
        this(config, Upstream.Timeouts.DEFAULT, gate::admit);
    }

    PackageIndex(PackageConfig config, Upstream.Timeouts timeouts, UpstreamHttp.Destinations gate) {
        this.policy = PackagePolicy.from(config);
        if (config.cacheDir() != null) {
            try {
                Files.createDirectories(config.cacheDir());
            } catch (IOException e) {
                throw StockadeError.invalid("package cache directory " + config.cacheDir() + " cannot be created: "
                        + e.getMessage() + ". Check the path and its permissions.");
            }
        }
        this.upstream = config.upstream() == null ? null : new Upstream(config.upstream(), config.cacheDir(), timeouts, gate);
    }

    /** The policy this index enforces (for the install API's early checks). */
    public PackagePolicy policy() {
        return policy;
    }

    @Override
    public String host() {
        return HOST;
    }

    @Override
    public InternalResponse handle(String sandboxId, InternalRequest request, DecisionSink sink) {
        try {
            return route(sandboxId, request, sink);
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "package index failed on a request", e);
            return InternalResponse.text(500, "the package index failed on this request; the server log has details");
        }
    }

    private InternalResponse route(String sandboxId, InternalRequest request, DecisionSink sink) {
        String method = request.method();
        boolean head = "HEAD".equals(method);
        if (!head && !"GET".equals(method)) {
            return new InternalResponse(405, Map.of("Allow", "GET, HEAD", "Content-Type", "text/plain; charset=utf-8"), 0,
                    InputStream.nullInputStream());
        }
        String target = request.target();
        if (target == null || target.length() > MAX_TARGET) return error(head, 400, "the request target is too long");
        int query = target.indexOf('?');
        String rawPath = query >= 0 ? target.substring(0, query) : target;
        if (!rawPath.startsWith("/")) return error(head, 400, "the request target must be a path");
        String[] raw = rawPath.substring(1).split("/", -1);
        boolean trailingSlash = rawPath.length() > 1 && rawPath.endsWith("/");
        int count = trailingSlash || rawPath.equals("/") ? raw.length - 1 : raw.length;
        List<String> segments = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            String s = decodeSegment(raw[i]);
            if (s == null) return error(head, 400, "the request path is malformed");
            if (s.isEmpty()) return error(head, 404, notFound());
            segments.add(s);
        }
        if (segments.isEmpty()) return redirect("/simple/");
        if (!segments.get(0).equals("simple") && !segments.get(0).equals("files")) return error(head, 404, notFound());
        if (segments.get(0).equals("simple")) {
            if (segments.size() == 1) {
                if (!trailingSlash) return redirect("/simple/");
                SimplePages.Format format = SimplePages.negotiate(request.headers().get("accept"));
                return page(head, format, SimplePages.root(format, policy.allowedProjects()));
            }
            if (segments.size() != 2) return error(head, 404, notFound());
            String name = segments.get(1);
            if (!PackageNames.isValid(name)) return error(head, 404, "no such project: the name is not a valid Python project name");
            String normalized = PackageNames.normalize(name);
            if (!trailingSlash || !normalized.equals(name)) return redirect("/simple/" + normalized + "/");
            return projectPage(head, SimplePages.negotiate(request.headers().get("accept")), normalized, sandboxId, sink);
        }
        if (segments.size() != 3 || trailingSlash) return error(head, 404, notFound());
        String project = segments.get(1);
        if (!PackageNames.isNormalized(project)) return error(head, 404, notFound());
        return file(head, project, segments.get(2), sandboxId, sink);
    }

    private InternalResponse projectPage(boolean head, SimplePages.Format format, String project, String sandboxId,
                                         DecisionSink sink) {
        PackagePolicy.Verdict verdict = policy.check(project, null, null);
        record(sink, sandboxId, project, verdict);
        List<IndexFile> files;
        if (!verdict.allowed()) {
            files = List.of(placeholder(project));
        } else {
            try {
                files = allowedFiles(project);
            } catch (IOException e) {
                List<IndexFile> local = policy.wheelhouse().files(project);
                LOG.warning("package index upstream failed for '" + project + "': " + e.getMessage());
                if (local.isEmpty()) {
                    return error(head, 502, "package '" + project + "' is allowed, but the upstream index could not be"
                            + " read; the server log has details");
                }
                files = local;
            }
        }
        return page(head, format, SimplePages.project(format, project, files, PackageIndex::fileUrl));
    }

    /** Wheelhouse files, then allow-listed upstream files whose names the wheelhouse does not have. */
    List<IndexFile> allowedFiles(String project) throws IOException {
        Map<String, IndexFile> byName = new LinkedHashMap<>();
        for (IndexFile f : policy.wheelhouse().files(project)) byName.put(f.filename(), f);
        AllowList.Entry entry = policy.allowList().get(project);
        if (upstream != null && entry != null) {
            for (IndexFile f : upstream.files(project)) {
                if (!byName.containsKey(f.filename()) && entry.allowsVersion(f.version()) && entry.allowsHash(f.sha256())) {
                    byName.put(f.filename(), f);
                }
            }
        }
        return new ArrayList<>(byName.values());
    }

    private InternalResponse file(boolean head, String project, String filename, String sandboxId, DecisionSink sink) {
        PackagePolicy.Verdict projectVerdict = policy.check(project, null, null);
        if (!projectVerdict.allowed()) {
            record(sink, sandboxId, project, projectVerdict);
            return refused(head, projectVerdict.reason());
        }
        for (IndexFile f : policy.wheelhouse().files(project)) {
            if (!f.filename().equals(filename)) continue;
            record(sink, sandboxId, project, PackagePolicy.Verdict.allow(PackagePolicy.RULE_WHEELHOUSE,
                    "file " + filename + " of package '" + project + "' is in the wheelhouse"));
            try {
                long size = Files.size(f.path());
                return new InternalResponse(200, Map.of("Content-Type", OCTETS), size,
                        head ? InputStream.nullInputStream() : Files.newInputStream(f.path()));
            } catch (IOException e) {
                LOG.warning("wheelhouse file " + f.path() + " cannot be read: " + e.getMessage());
                return error(head, 404, "file " + filename + " of package '" + project + "' is not available");
            }
        }
        if (upstream == null || policy.allowList().get(project) == null) return error(head, 404, noSuchFile(project, filename));
        IndexFile f;
        try {
            f = upstream.find(project, filename);
        } catch (IOException e) {
            LOG.warning("package index upstream failed for '" + project + "': " + e.getMessage());
            return error(head, 502, "the upstream index could not be read for package '" + project + "'; the server log has details");
        }
        if (f == null) return error(head, 404, noSuchFile(project, filename));
        PackagePolicy.Verdict verdict = policy.check(project, f.version(), f.sha256());
        record(sink, sandboxId, project, verdict);
        if (!verdict.allowed()) return refused(head, verdict.reason());
        if (head) {
            return new InternalResponse(200, Map.of("Content-Type", OCTETS), upstream.length(f), InputStream.nullInputStream());
        }
        Runnable onMismatch = () -> record(sink, sandboxId, project, PackagePolicy.Verdict.refuse("hash-mismatch",
                "file " + filename + " of package '" + project + "' did not match its sha256; the download was aborted"));
        try {
            Upstream.Download d = upstream.open(f, onMismatch);
            return new InternalResponse(200, Map.of("Content-Type", OCTETS), d.length(), d.body());
        } catch (IOException e) {
            LOG.warning("package download failed: " + e.getMessage());
            boolean verification = e.getMessage() != null && e.getMessage().contains("was not delivered");
            String why = verification ? ": " + e.getMessage()
                    : e instanceof ServerFetchGate.Refused ? ": the upstream points at an address this server does not fetch"
                    + " from (loopback, link-local or private); the server log has details"
                    : "; the server log has details";
            return error(false, 502, "file " + filename + " of package '" + project + "' could not be fetched" + why);
        }
    }

    /** The placeholder wheel a refused project's page lists; see the class comment. */
    static IndexFile placeholder(String project) {
        String filename = project.replace('-', '_') + "-" + PLACEHOLDER_VERSION + "-py2.py3-none-any.whl";
        return new IndexFile(project, filename, PLACEHOLDER_VERSION, null, null, -1, null, null, null);
    }

    static String fileUrl(IndexFile f) {
        return "/files/" + f.project() + "/" + encodeSegment(f.filename());
    }

    private static InternalResponse page(boolean head, SimplePages.Format format, byte[] body) {
        return new InternalResponse(200, Map.of("Content-Type", format.contentType, "Vary", "Accept",
                "Cache-Control", "max-age=0, must-revalidate"), body.length,
                head ? InputStream.nullInputStream() : new ByteArrayInputStream(body));
    }

    private static InternalResponse refused(boolean head, String reason) {
        byte[] body = (reason + "\n").getBytes(StandardCharsets.UTF_8);
        return new InternalResponse(403, Map.of("Content-Type", "text/plain; charset=utf-8", REASON_HEADER, reasonPhrase(reason),
                "Cache-Control", "no-store"), body.length, head ? InputStream.nullInputStream() : new ByteArrayInputStream(body));
    }

    private static InternalResponse error(boolean head, int status, String message) {
        InternalResponse r = InternalResponse.text(status, message);
        return head ? new InternalResponse(status, r.headers(), r.length(), InputStream.nullInputStream()) : r;
    }

    private static InternalResponse redirect(String location) {
        return new InternalResponse(301, Map.of("Location", location, "Content-Type", "text/plain; charset=utf-8"), 0,
                InputStream.nullInputStream());
    }

    private void record(DecisionSink sink, String sandboxId, String project, PackagePolicy.Verdict v) {
        try {
            sink.record(new Decision(Instant.now(), sandboxId, null, null, "package", project, 0, null, v.allowed(), v.rule(),
                    v.reason()));
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "recording a package decision failed", e);
        }
    }

    /** {@code reason} as a status line's reason phrase: printable ASCII, bounded. */
    static String reasonPhrase(String reason) {
        StringBuilder b = new StringBuilder(Math.min(reason.length(), MAX_REASON));
        for (int i = 0; i < reason.length() && b.length() < MAX_REASON; i++) {
            char c = reason.charAt(i);
            b.append(c >= 0x20 && c < 0x7f ? c : '?');
        }
        return b.toString();
    }

    private static String notFound() {
        return "not found: this is the package index; pip's index URL is http://" + HOST + "/simple/";
    }

    private static String noSuchFile(String project, String filename) {
        return "package '" + project + "' has no file " + filename + " on this index";
    }

    /** Percent-decodes one path segment; null if malformed or hostile (separators, dot segments, controls). */
    static String decodeSegment(String raw) {
        if (raw.length() > MAX_SEGMENT * 3) return null;
        if (raw.indexOf('%') < 0) {
            return acceptable(raw) ? raw : null;
        }
        ByteBuffer bytes = ByteBuffer.allocate(raw.length());
        for (int i = 0; i < raw.length(); i++) {
            char c = raw.charAt(i);
            if (c == '%') {
                if (i + 2 >= raw.length()) return null;
                int hi = Character.digit(raw.charAt(i + 1), 16);
                int lo = Character.digit(raw.charAt(i + 2), 16);
                if (hi < 0 || lo < 0) return null;
                bytes.put((byte) (hi * 16 + lo));
                i += 2;
            } else if (c < 0x80) {
                bytes.put((byte) c);
            } else {
                return null;
            }
        }
        bytes.flip();
        String s;
        try {
            s = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(bytes).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
        return acceptable(s) ? s : null;
    }

    private static boolean acceptable(String s) {
        if (s.length() > MAX_SEGMENT || s.equals(".") || s.equals("..")) return false;
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c <= 0x20 || c >= 0x7f || c == '/' || c == '\\') return false;
        }
        return true;
    }

    /** Percent-encodes a path segment, keeping only RFC 3986 unreserved characters. */
    static String encodeSegment(String s) {
        StringBuilder b = new StringBuilder();
        for (byte x : s.getBytes(StandardCharsets.UTF_8)) {
            int c = x & 0xff;
            if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~') {
                b.append((char) c);
            } else {
                b.append('%').append(Character.toUpperCase(Character.forDigit(c >> 4, 16)))
                        .append(Character.toUpperCase(Character.forDigit(c & 15, 16)));
            }
        }
        return b.toString();
    }

    /** Nothing outlives a request (one upstream connection per fetch); kept for the server's shutdown order. */
    @Override
    public void close() {
        // no pooled connections or threads to release
    }
}
