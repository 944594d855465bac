package dev.stockade.server.packages;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * A second simple index on 127.0.0.1 (the JDK's HttpServer) standing for the operator's upstream mirror.
 * Projects list files at {@code /packages/<filename>}; a file can be listed with one digest and served with
 * other bytes (a tampered mirror), and served without Content-Length (chunked).
 */
public final class FakeUpstream implements AutoCloseable {
    /** A listed file: the bytes served, the sha256 the page claims, and extra attributes. */
    public record Served(String filename, byte[] bytes, String listedSha256, String requiresPython, boolean chunked) {}

    private final HttpServer server;
    private final ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    private final Map<String, List<Served>> projects = new ConcurrentHashMap<>();
    public final List<String> requests = new CopyOnWriteArrayList<>();
    /** Paths answered with a 302 to the given Location (a mirror that redirects, to anywhere). */
    public final Map<String, String> redirects = new ConcurrentHashMap<>();
    /** File names listed with the given absolute URL instead of this server's own (a page pointing elsewhere). */
    public final Map<String, String> hrefs = new ConcurrentHashMap<>();
    volatile boolean json;

    public FakeUpstream() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.setExecutor(executor);
        server.createContext("/", this::handle);
        server.start();
    }

    public URI simpleUrl() {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort() + "/simple/");
    }

    /** Lists {@code bytes} under {@code project} with their true digest. */
    public Served add(String project, String filename, byte[] bytes) {
        return add(new Served(filename, bytes, TestWheels.sha256(bytes), null, false), project);
    }

    public Served add(Served s, String project) {
        projects.computeIfAbsent(project, k -> new CopyOnWriteArrayList<>()).add(s);
        return s;
    }

    private void handle(HttpExchange ex) throws IOException {
        try (ex) {
            String path = ex.getRequestURI().getRawPath();
            requests.add(ex.getRequestMethod() + " " + path);
            String location = redirects.get(path);
            if (location != null) {
                ex.getResponseHeaders().set("Location", location);
                ex.sendResponseHeaders(302, -1);
                return;
            }
            if (path.startsWith("/simple/") && path.endsWith("/")) {
                String project = path.substring("/simple/".length(), path.length() - 1);
                List<Served> files = projects.get(project);
                if (files == null) {
                    send(ex, 404, "text/plain", "no such project".getBytes(StandardCharsets.UTF_8));
                    return;
                }
                send(ex, 200, json ? "application/vnd.pypi.simple.v1+json" : "text/html", page(project, files));
                return;
            }
            if (path.startsWith("/packages/")) {
                String filename = path.substring("/packages/".length());
                for (List<Served> files : projects.values()) {
                    for (Served s : files) {
                        if (!s.filename().equals(filename)) continue;
                        ex.getResponseHeaders().set("Content-Type", "application/octet-stream");
                        ex.sendResponseHeaders(200, s.chunked() ? 0 : s.bytes().length);
                        if (!ex.getRequestMethod().equals("HEAD")) {
                            try (OutputStream out = ex.getResponseBody()) {
                                out.write(s.bytes());
                            }
                        }
                        return;
                    }
                }
            }
            send(ex, 404, "text/plain", "not found".getBytes(StandardCharsets.UTF_8));
        }
    }

    private byte[] page(String project, List<Served> files) {
        StringBuilder b = new StringBuilder();
        if (json) {
            b.append("{\"meta\":{\"api-version\":\"1.0\"},\"name\":\"").append(project).append("\",\"files\":[");
            for (int i = 0; i < files.size(); i++) {
                Served s = files.get(i);
                if (i > 0) b.append(',');
                b.append("{\"filename\":\"").append(s.filename()).append("\",\"url\":\"").append(href(s))
                        .append("\",\"hashes\":{").append(s.listedSha256() == null ? "" : "\"sha256\":\"" + s.listedSha256() + "\"")
                        .append("}");
                if (s.requiresPython() != null) b.append(",\"requires-python\":\"").append(s.requiresPython()).append('"');
                b.append('}');
            }
            b.append("]}");
        } else {
            b.append("<!DOCTYPE html><html><body>\n");
            for (Served s : files) {
                b.append("<a href=\"").append(href(s));
                if (s.listedSha256() != null) b.append("#sha256=").append(s.listedSha256());
                b.append('"');
                if (s.requiresPython() != null) {
                    b.append(" data-requires-python=\"").append(SimplePages.escape(s.requiresPython())).append('"');
                }
                b.append('>').append(s.filename()).append("</a><br>\n");
            }
            b.append("</body></html>\n");
        }
        return b.toString().getBytes(StandardCharsets.UTF_8);
    }

    private String href(Served s) {
        return hrefs.getOrDefault(s.filename(), "../../packages/" + s.filename());
    }

    /** The URL this server serves {@code filename} at. */
    public String fileUrl(String filename) {
        return "http://127.0.0.1:" + server.getAddress().getPort() + "/packages/" + filename;
    }

    private static void send(HttpExchange ex, int status, String type, byte[] body) throws IOException {
        ex.getResponseHeaders().set("Content-Type", type);
        ex.sendResponseHeaders(status, body.length);
        try (OutputStream out = ex.getResponseBody()) {
            out.write(body);
        }
    }

    @Override
    public void close() {
        server.stop(0);
        executor.shutdownNow();
    }
}
