package dev.stockade.server.packages;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.function.Function;

/** Renders the simple repository API's pages: PEP 503 HTML and PEP 691 JSON, chosen by the Accept header. */
final class SimplePages {
    static final String JSON_V1 = "application/vnd.pypi.simple.v1+json";
    static final String HTML_V1 = "application/vnd.pypi.simple.v1+html";
    static final String TEXT_HTML = "text/html";
    private static final int MAX_ACCEPT = 4096;
    private static final int MAX_RANGES = 64;
    private static final ObjectMapper MAPPER = new ObjectMapper();

    /** A page format and its Content-Type. */
    enum Format {
        JSON(JSON_V1), HTML(HTML_V1), LEGACY_HTML(TEXT_HTML + "; charset=utf-8");

        final String contentType;

        Format(String contentType) {
            this.contentType = contentType;
        }
    }

    private SimplePages() {}

    /**
     * Picks the format for an Accept header (PEP 691): the acceptable one with the highest q, the first listed on
     * ties; text/html when the header is absent, malformed or names nothing we serve.
     */
    static Format negotiate(String accept) {
        if (accept == null || accept.isBlank() || accept.length() > MAX_ACCEPT) return Format.LEGACY_HTML;
        Format best = null;
        double bestQ = 0;
        String[] ranges = accept.split(",");
        for (int i = 0; i < ranges.length && i < MAX_RANGES; i++) {
            String[] parts = ranges[i].split(";");
            String type = parts[0].strip().toLowerCase(Locale.ROOT);
            double q = 1;
            for (int k = 1; k < parts.length; k++) {
                String p = parts[k].strip().toLowerCase(Locale.ROOT);
                if (p.startsWith("q=")) {
                    try {
                        q = Double.parseDouble(p.substring(2));
                    } catch (NumberFormatException e) {
                        q = 0;
                    }
                    if (!(q >= 0 && q <= 1)) q = 0;
                }
            }
            Format f = switch (type) {
                case JSON_V1, "application/vnd.pypi.simple.latest+json" -> Format.JSON;
                case HTML_V1, "application/vnd.pypi.simple.latest+html" -> Format.HTML;
                case TEXT_HTML, "text/*", "*/*" -> Format.LEGACY_HTML;
                default -> null;
            };
            if (f != null && q > bestQ) {
                best = f;
                bestQ = q;
            }
        }
        return best == null ? Format.LEGACY_HTML : best;
    }

    static byte[] root(Format format, Collection<String> projects) {
        if (format == Format.JSON) {
            ObjectNode root = MAPPER.createObjectNode();
            root.putObject("meta").put("api-version", "1.1");
            ArrayNode list = root.putArray("projects");
            for (String p : projects) list.addObject().put("name", p);
            return json(root);
        }
        StringBuilder b = new StringBuilder("<!DOCTYPE html>\n<html>\n<head>\n"
                + "<meta name=\"pypi:repository-version\" content=\"1.0\">\n<title>Simple index</title>\n</head>\n<body>\n");
        for (String p : projects) {
            b.append("<a href=\"/simple/").append(escape(p)).append("/\">").append(escape(p)).append("</a><br>\n");
        }
        return b.append("</body>\n</html>\n").toString().getBytes(StandardCharsets.UTF_8);
    }

    /**
     * A project page. JSON pages say api-version 1.1 (with sizes and versions, PEP 700) when every file's
     * size is known, else 1.0.
     *
     * @param url the URL each file is served at (on this index)
     */
    static byte[] project(Format format, String project, List<IndexFile> files, Function<IndexFile, String> url) {
        if (format == Format.JSON) {
            boolean sized = files.stream().allMatch(f -> f.size() >= 0);
            ObjectNode root = MAPPER.createObjectNode();
            root.putObject("meta").put("api-version", sized ? "1.1" : "1.0");
            root.put("name", project);
            ArrayNode list = root.putArray("files");
            Set<String> versions = new LinkedHashSet<>();
            for (IndexFile f : files) {
                ObjectNode o = list.addObject();
                o.put("filename", f.filename());
                o.put("url", url.apply(f));
                ObjectNode hashes = o.putObject("hashes");
                if (f.sha256() != null) hashes.put("sha256", f.sha256());
                if (f.requiresPython() != null) o.put("requires-python", f.requiresPython());
                if (f.yanked() == null) o.put("yanked", false);
                else if (f.yanked().isEmpty()) o.put("yanked", true);
                else o.put("yanked", f.yanked());
                if (sized) o.put("size", f.size());
                versions.add(f.version());
            }
            if (sized) {
                ArrayNode v = root.putArray("versions");
                versions.forEach(v::add);
            }
            return json(root);
        }
        StringBuilder b = new StringBuilder("<!DOCTYPE html>\n<html>\n<head>\n"
                + "<meta name=\"pypi:repository-version\" content=\"1.0\">\n<title>Links for ")
                .append(escape(project)).append("</title>\n</head>\n<body>\n<h1>Links for ").append(escape(project)).append("</h1>\n");
        for (IndexFile f : files) {
            b.append("<a href=\"").append(escape(url.apply(f)));
            if (f.sha256() != null) b.append("#sha256=").append(f.sha256());
            b.append('"');
            if (f.requiresPython() != null) b.append(" data-requires-python=\"").append(escape(f.requiresPython())).append('"');
            if (f.yanked() != null) b.append(" data-yanked=\"").append(escape(f.yanked())).append('"');
            b.append('>').append(escape(f.filename())).append("</a><br>\n");
        }
        return b.append("</body>\n</html>\n").toString().getBytes(StandardCharsets.UTF_8);
    }

    static String escape(String s) {
        StringBuilder b = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '&' -> b.append("&amp;");
                case '<' -> b.append("&lt;");
                case '>' -> b.append("&gt;");
                case '"' -> b.append("&quot;");
                case '\'' -> b.append("&#39;");
                default -> b.append(c);
            }
        }
        return b.toString();
    }

    private static byte[] json(ObjectNode node) {
        try {
            return MAPPER.writeValueAsBytes(node);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot render a simple index page", e);
        }
    }
}
