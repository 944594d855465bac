package dev.stockade.server.api;

import dev.stockade.protocol.FileMetadata;
import dev.stockade.server.error.StockadeError;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * The file metadata of a POST /files upload, as E2B's envd 0.6.2 takes it: every request header
 * {@code X-Metadata-<key>: <value>} is one pair, its key the rest of the header name lowercased;
 * a header sent twice keeps its first value; the same pairs go to every file of the request.
 * Checked against {@link FileMetadata}'s limits before any file is written, so a refused request
 * (400) leaves nothing behind. Called by {@link FilesHttp} on the request's virtual thread.
 */
final class UploadMetadata {
    static final String HEADER_PREFIX = "x-metadata-";

    private UploadMetadata() {}

    static Map<String, String> from(Request r) {
        Map<String, String> metadata = new TreeMap<>();
        for (org.eclipse.jetty.http.HttpField h : r.headers()) {
            String name = h.getName();
            if (name == null || !name.regionMatches(true, 0, HEADER_PREFIX, 0, HEADER_PREFIX.length())) continue;
            String key = name.substring(HEADER_PREFIX.length()).toLowerCase(Locale.ROOT);
            metadata.putIfAbsent(key, h.getValue() == null ? "" : h.getValue());
        }
        String problem = FileMetadata.problem(metadata);
        if (problem != null) throw StockadeError.invalid(problem);
        return metadata;
    }
}
