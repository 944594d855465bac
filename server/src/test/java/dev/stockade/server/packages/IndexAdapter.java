package dev.stockade.server.packages;

import dev.stockade.server.egress.DecisionSink;
import dev.stockade.server.egress.InternalRequest;
import dev.stockade.server.egress.InternalResponse;
import dev.stockade.server.egress.InternalSite;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Stands in for the egress proxy in tests: an HTTP/1.1 server on 127.0.0.1 that turns each request into an
 * {@link InternalRequest}, asks the site, and writes the {@link InternalResponse} the way the proxy's contract
 * says (Content-Length from {@code length()}, {@code Connection: close}, the body closed afterwards). If the
 * body fails midway, the connection is cut, as the proxy does.
 *
 * <p>A raw socket server rather than the JDK's HttpServer, because HttpServer cannot write a reason phrase
 * of its own and the reason phrase is how a refusal reaches pip's output. {@code honourReasonHeader} chooses
 * between a proxy that uses {@link PackageIndex#REASON_HEADER} as the reason phrase and one that writes the
 * standard phrase.
 */
final class IndexAdapter implements AutoCloseable {
    private static final int MAX_HEAD = 64 * 1024;

    private final InternalSite site;
    private final DecisionSink sink;
    private final boolean honourReasonHeader;
    private final ServerSocket server;
    private final Thread acceptor;
    private final Set<Socket> open = ConcurrentHashMap.newKeySet();

    IndexAdapter(InternalSite site, DecisionSink sink, boolean honourReasonHeader) throws IOException {
        this.site = site;
        this.sink = sink;
        this.honourReasonHeader = honourReasonHeader;
        this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        this.acceptor = Thread.ofVirtual().name("index-adapter").start(this::acceptLoop);
    }

    int port() {
        return server.getLocalPort();
    }

    private void acceptLoop() {
        while (!server.isClosed()) {
            try {
                Socket s = server.accept();
                open.add(s);
                Thread.ofVirtual().start(() -> serve(s));
            } catch (IOException e) {
                return;
            }
        }
    }

    private void serve(Socket s) {
        try (s) {
            s.setSoTimeout(30_000);
            InputStream in = new BufferedInputStream(s.getInputStream());
            String head = readHead(in);
            if (head == null) return;
            String[] lines = head.split("\r\n");
            String[] requestLine = lines[0].split(" ");
            if (requestLine.length != 3) return;
            Map<String, String> headers = new HashMap<>();
            for (int i = 1; i < lines.length; i++) {
                int colon = lines[i].indexOf(':');
                if (colon > 0) headers.put(lines[i].substring(0, colon).strip().toLowerCase(Locale.ROOT), lines[i].substring(colon + 1).strip());
            }
            String method = requestLine[0];
            InternalResponse r = site.handle("sbx-test", new InternalRequest(method, requestLine[1], headers), sink);
            OutputStream out = s.getOutputStream();
            String reason = honourReasonHeader && r.headers().containsKey(PackageIndex.REASON_HEADER)
                    ? r.headers().get(PackageIndex.REASON_HEADER) : standardReason(r.status());
            StringBuilder b = new StringBuilder("HTTP/1.1 ").append(r.status()).append(' ').append(reason).append("\r\n");
            r.headers().forEach((k, v) -> b.append(k).append(": ").append(v).append("\r\n"));
            if (r.length() >= 0) b.append("Content-Length: ").append(r.length()).append("\r\n");
            b.append("Connection: close\r\n\r\n");
            out.write(b.toString().getBytes(StandardCharsets.ISO_8859_1));
            try (InputStream body = r.body()) {
                if (!method.equals("HEAD")) body.transferTo(out);
            }
            out.flush();
        } catch (IOException e) {
            // the body failed (e.g. a digest mismatch) or the client left: cutting the connection is the answer
        } finally {
            open.remove(s);
        }
    }

    private static String readHead(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int state = 0;
        while (b.size() < MAX_HEAD) {
            int c = in.read();
            if (c < 0) return null;
            b.write(c);
            state = (c == '\r' && (state == 0 || state == 2)) ? state + 1 : (c == '\n' && (state == 1 || state == 3)) ? state + 1 : 0;
            if (state == 4) return b.toString(StandardCharsets.ISO_8859_1).strip();
        }
        return null;
    }

    private static String standardReason(int status) {
        return switch (status) {
            case 200 -> "OK";
            case 301 -> "Moved Permanently";
            case 400 -> "Bad Request";
            case 403 -> "Forbidden";
            case 404 -> "Not Found";
            case 405 -> "Method Not Allowed";
            case 502 -> "Bad Gateway";
            default -> "Status";
        };
    }

    @Override
    public void close() throws IOException {
        server.close();
        for (Socket s : open) s.close();
        try {
            acceptor.join(5_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
