package dev.stockade.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The server's packages form layers, not a knot: no package reaches, directly or through others, a
 * package that reaches it back (issue 13 found config → packages → core → config). A use is an
 * import or a qualified name of another server package; the root package (the wiring:
 * {@code Server}, {@code StockadeServer}) is outside the check because wiring everything is its job.
 * Reads the sources, so the cycle it reports names the packages and one file per edge.
 */
class PackageCyclesTest {
    private static final Path ROOT = Path.of("src/main/java/dev/stockade/server");
    private static final Pattern USE = Pattern.compile("\\bdev\\.stockade\\.server\\.([a-z]+)\\.[A-Z]");

    @Test
    void serverPackagesHaveNoCycles() throws IOException {
        Map<String, Map<String, String>> edges = edges();
        assertTrue(edges.size() >= 8, "found the server's packages under " + ROOT.toAbsolutePath() + ": " + edges.keySet());
        List<String> cycle = findCycle(edges);
        assertEquals(List.of(), cycle, "a cycle between server packages (package → package: a file that makes the edge)");
    }

    @Test
    void theCheckFindsACycle() {
        Map<String, Map<String, String>> edges = new TreeMap<>();
        edges.put("a", Map.of("b", "A.java"));
        edges.put("b", Map.of("c", "B.java"));
        edges.put("c", Map.of("a", "C.java"));
        edges.put("d", Map.of("a", "D.java"));
        assertEquals(List.of("a → b (A.java)", "b → c (B.java)", "c → a (C.java)"), findCycle(edges));
        edges.put("c", Map.of());
        assertEquals(List.of(), findCycle(edges));
    }

    /** package → (used package → one file of the package that uses it). */
    private static Map<String, Map<String, String>> edges() throws IOException {
        Map<String, Map<String, String>> edges = new TreeMap<>();
        try (Stream<Path> files = Files.walk(ROOT)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".java")).sorted().toList()) {
                Path rel = ROOT.relativize(f);
                if (rel.getNameCount() < 2) continue; // the root package: the wiring
                String pkg = rel.getName(0).toString();
                Map<String, String> out = edges.computeIfAbsent(pkg, k -> new TreeMap<>());
                Matcher m = USE.matcher(Files.readString(f));
                while (m.find()) {
                    if (!m.group(1).equals(pkg)) out.putIfAbsent(m.group(1), rel.toString());
                }
            }
        }
        return edges;
    }

    /** One cycle as "p → q (file)" steps, or an empty list: a depth-first search over the packages. */
    static List<String> findCycle(Map<String, Map<String, String>> edges) {
        Set<String> done = new TreeSet<>();
        for (String start : edges.keySet()) {
            List<String> path = new ArrayList<>();
            List<String> found = visit(start, edges, done, path);
            if (!found.isEmpty()) return found;
        }
        return List.of();
    }

    private static List<String> visit(String pkg, Map<String, Map<String, String>> edges, Set<String> done, List<String> path) {
        int at = path.indexOf(pkg);
        if (at >= 0) {
            List<String> steps = new ArrayList<>();
            for (int i = at; i < path.size(); i++) {
                String from = path.get(i);
                String to = i + 1 < path.size() ? path.get(i + 1) : pkg;
                steps.add(from + " → " + to + " (" + edges.get(from).get(to) + ")");
            }
            return steps;
        }
        if (done.contains(pkg)) return List.of();
        path.add(pkg);
        for (String next : edges.getOrDefault(pkg, Map.of()).keySet()) {
            List<String> found = visit(next, edges, done, path);
            if (!found.isEmpty()) return found;
        }
        path.removeLast();
        done.add(pkg);
        return List.of();
    }
}
