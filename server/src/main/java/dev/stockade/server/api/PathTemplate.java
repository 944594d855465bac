package dev.stockade.server.api;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * A route's path as OpenAPI writes it: literal segments and {@code {name}} parameters, each
 * parameter one non-empty segment of the raw (still percent-encoded) path. Matching is a segment
 * comparison, no regular expression, so it costs next to nothing per request.
 */
record PathTemplate(String text, List<String> segments) {
    private static final Pattern PARAM = Pattern.compile("\\{[A-Za-z][A-Za-z0-9]*}");
    private static final Pattern LITERAL = Pattern.compile("[A-Za-z0-9._-]+");

    PathTemplate {
        segments = List.copyOf(segments);
        for (String s : segments) {
            if (!PARAM.matcher(s).matches() && !LITERAL.matcher(s).matches()) {
                throw new IllegalArgumentException("route " + text + ": segment '" + s + "' is neither a literal nor {name}");
            }
        }
    }

    static PathTemplate of(String text) {
        if (!text.startsWith("/") || text.length() > 1 && text.endsWith("/")) {
            throw new IllegalArgumentException("route " + text + ": a path starts with / and does not end with one");
        }
        return new PathTemplate(text, split(text));
    }

    /** A raw path's segments; an empty segment (a doubled or trailing slash) stays, and matches nothing. */
    static List<String> split(String path) {
        List<String> out = new ArrayList<>();
        int from = 1;
        while (from <= path.length()) {
            int slash = path.indexOf('/', from);
            int end = slash < 0 ? path.length() : slash;
            out.add(path.substring(from, end));
            from = end + 1;
        }
        return out;
    }

    /** The parameters, when the path's segments fit this template; null when they do not. */
    Map<String, String> match(List<String> path) {
        if (path.size() != segments.size()) return null;
        Map<String, String> params = null;
        for (int i = 0; i < segments.size(); i++) {
            String s = segments.get(i);
            String p = path.get(i);
            if (isParam(s)) {
                if (p.isEmpty()) return null;
                if (params == null) params = new LinkedHashMap<>(2);
                params.put(s.substring(1, s.length() - 1), p);
            } else if (!s.equals(p)) {
                return null;
            }
        }
        return params == null ? Map.of() : params;
    }

    /** Whether some path fits both templates (literals that differ keep two templates apart). */
    boolean overlaps(PathTemplate other) {
        if (segments.size() != other.segments.size()) return false;
        for (int i = 0; i < segments.size(); i++) {
            String a = segments.get(i);
            String b = other.segments.get(i);
            if (!isParam(a) && !isParam(b) && !a.equals(b)) return false;
        }
        return true;
    }

    /**
     * Of two overlapping templates, whether this one takes a path both fit: at the first segment
     * where one has a literal and the other a parameter, the literal wins
     * ({@code /templates/tags} before {@code /templates/{templateID}}). False for both when no
     * segment tells them apart (the same shape: a real ambiguity).
     */
    boolean precedes(PathTemplate other) {
        for (int i = 0; i < segments.size() && i < other.segments.size(); i++) {
            boolean a = isParam(segments.get(i));
            boolean b = isParam(other.segments.get(i));
            if (a != b) return !a;
        }
        return false;
    }

    private static boolean isParam(String segment) {
        return segment.startsWith("{");
    }

    @Override
    public String toString() {
        return text;
    }
}
