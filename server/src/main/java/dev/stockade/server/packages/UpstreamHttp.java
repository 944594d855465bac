package dev.stockade.server.packages;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.SSLSocketFactory;

/**
 * The package index's HTTP/1.1 GET client for the upstream index. It exists for one property the JDK's
 * {@code HttpClient} cannot give: every connection goes to an address that was checked first. The operator's
 * configured upstream (its scheme, host and port) is trusted as configured; any other origin — a file URL
 * on an upstream page, a redirect's target — is resolved and judged by the egress gate ({@link Destinations})
 * and the socket connects to exactly the admitted address, so neither a hostile page nor DNS rebinding makes
 * the server fetch from loopback, cloud metadata or a private network. Redirects are followed by hand, each
 * hop judged, at most {@value #MAX_REDIRECTS}, never from https to http.
 *
 * <p>Bounds: response heads of {@value #MAX_HEAD_BYTES} bytes, a connect timeout, a wait for the head, an
 * idle timeout per read, and one deadline for the whole fetch (redirects and body included). One connection
 * per request ({@code Connection: close}); no pooling.
 *
 * <p>Called from the proxy's connection threads, concurrently; a {@link Response} is read by one thread.
 */
final class UpstreamHttp {
    static final int MAX_REDIRECTS = 5;
    static final int MAX_HEAD_BYTES = 64 << 10;
    static final int MAX_HEADER_LINES = 128;
    private static final int MAX_INTERIM = 5;
    private static final Pattern STATUS_LINE = Pattern.compile("HTTP/1\\.[01] ([1-9][0-9]{2})(?: .*)?");

    /** Where a connection for {@code host:port} of an untrusted origin may go; throws when it may not. */
    @FunctionalInterface
    interface Destinations {
        InetSocketAddress admit(String host, int port) throws IOException;
    }

    /**
     * An answer whose head has been read; the body is bounded by the fetch's deadline.
     *
     * @param uri the URI that answered (after redirects)
     * @param headers lower-case names, first value of each
     */
    record Response(int status, URI uri, Map<String, String> headers, long contentLength, InputStream body)
            implements Closeable {
        @Override
        public void close() throws IOException {
            body.close();
        }
    }

    private final URI trusted;
    private final Destinations gate;
    private final Upstream.Timeouts timeouts;

    /** @param trusted the operator's upstream: its origin is connected to as configured, without the gate */
    UpstreamHttp(URI trusted, Destinations gate, Upstream.Timeouts timeouts) {
        this.trusted = trusted;
        this.gate = gate;
        this.timeouts = timeouts;
    }

    /** GETs {@code uri}, following redirects; the caller closes the response. */
    Response get(URI uri, String accept) throws IOException {
        long deadline = System.nanoTime() + timeouts.total().toNanos();
        URI current = uri;
        for (int hop = 0; ; hop++) {
            Response r = exchange(current, accept, deadline);
            if (!isRedirect(r.status())) return r;
            String location = r.headers().get("location");
            r.close();
            if (location == null) throw new IOException("the upstream answered HTTP " + r.status() + " without a Location for " + current);
            if (hop >= MAX_REDIRECTS) throw new IOException("the upstream redirected more than " + MAX_REDIRECTS + " times for " + uri);
            URI next;
            try {
                next = current.resolve(location.strip());
            } catch (IllegalArgumentException e) {
                throw new IOException("the upstream redirected " + current + " to a malformed Location");
            }
            String scheme = scheme(next);
            if (!scheme.equals("http") && !scheme.equals("https")) {
                throw new IOException("the upstream redirected " + current + " to a " + scheme + " URL");
            }
            if (scheme(current).equals("https") && scheme.equals("http")) {
                throw new IOException("the upstream redirected " + current + " from https to http");
            }
            current = next;
        }
    }

    private static boolean isRedirect(int status) {
        return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
    }

    private Response exchange(URI uri, String accept, long deadline) throws IOException {
        String scheme = scheme(uri);
        String host = uri.getHost();
        if (host == null || !(scheme.equals("http") || scheme.equals("https"))) throw new IOException("not an http(s) URL: " + uri);
        int port = uri.getPort() >= 0 ? uri.getPort() : scheme.equals("https") ? 443 : 80;
        String bare = host.startsWith("[") && host.endsWith("]") ? host.substring(1, host.length() - 1) : host;
        InetSocketAddress address = sameOrigin(uri) ? new InetSocketAddress(bare, port) : gate.admit(bare, port);
        if (address.isUnresolved()) throw new IOException(bare + " does not resolve");
        Socket socket = new Socket();
        try {
            socket.connect(address, millis(Math.min(timeouts.connect().toNanos(), remaining(deadline, uri))));
            socket.setSoTimeout(millis(Math.min(timeouts.response().toNanos(), remaining(deadline, uri))));
            if (scheme.equals("https")) socket = tls(socket, bare, port);
            String path = uri.getRawPath() == null || uri.getRawPath().isEmpty() ? "/" : uri.getRawPath();
            String target = uri.getRawQuery() == null ? path : path + "?" + uri.getRawQuery();
            String request = "GET " + target + " HTTP/1.1\r\nHost: " + host + (uri.getPort() >= 0 ? ":" + port : "") + "\r\n"
                    + (accept == null ? "" : "Accept: " + accept + "\r\n")
                    + "Accept-Encoding: identity\r\nUser-Agent: stockade-package-index\r\nConnection: close\r\n\r\n";
            OutputStream out = socket.getOutputStream();
            out.write(request.getBytes(StandardCharsets.ISO_8859_1));
            out.flush();
            TimedInput in = new TimedInput(socket, new BufferedInputStream(socket.getInputStream(), 1 << 16), deadline,
                    timeouts.response().toNanos(), uri);
            Map<String, String> headers = new HashMap<>();
            int status = 0;
            for (int interim = 0; status == 0 || (status >= 100 && status < 200); interim++) {
                if (interim > MAX_INTERIM) throw new IOException("the upstream sent too many interim responses for " + uri);
                headers.clear();
                status = readHead(in, headers, uri);
            }
            in.perRead = timeouts.idle().toNanos();
            long length = contentLength(headers, uri);
            InputStream body;
            String coding = headers.get("transfer-encoding");
            if (coding != null) {
                if (!coding.strip().equalsIgnoreCase("chunked")) throw new IOException("the upstream used transfer coding '" + coding + "' for " + uri);
                body = new Chunked(in, uri);
                length = -1;
            } else if (length >= 0) {
                body = new Fixed(in, length, uri);
            } else {
                body = in;
            }
            return new Response(status, uri, Map.copyOf(headers), length, body);
        } catch (IOException | RuntimeException e) {
            socket.close();
            throw e;
        }
    }

    private boolean sameOrigin(URI uri) {
        return scheme(uri).equals(scheme(trusted)) && uri.getHost().equalsIgnoreCase(trusted.getHost())
                && port(uri) == port(trusted);
    }

    private static int port(URI u) {
        return u.getPort() >= 0 ? u.getPort() : scheme(u).equals("https") ? 443 : 80;
    }

    private static String scheme(URI u) {
        return u.getScheme() == null ? "" : u.getScheme().toLowerCase(Locale.ROOT);
    }

    private static Socket tls(Socket plain, String host, int port) throws IOException {
        SSLSocket s = (SSLSocket) ((SSLSocketFactory) SSLSocketFactory.getDefault()).createSocket(plain, host, port, true);
        SSLParameters p = s.getSSLParameters();
        p.setEndpointIdentificationAlgorithm("HTTPS");
        if (!host.contains(":") && !host.chars().allMatch(c -> c == '.' || (c >= '0' && c <= '9'))) {
            p.setServerNames(List.of(new SNIHostName(host)));
        }
        s.setSSLParameters(p);
        s.startHandshake();
        return s;
    }

    /** Reads a status line and headers into {@code headers}; returns the status. */
    private static int readHead(TimedInput in, Map<String, String> headers, URI uri) throws IOException {
        int[] budget = {MAX_HEAD_BYTES};
        String statusLine = line(in, budget, uri);
        Matcher m = STATUS_LINE.matcher(statusLine);
        if (!m.matches()) throw new IOException("the upstream's answer for " + uri + " is not HTTP/1.1");
        int status = Integer.parseInt(m.group(1));
        for (int lines = 0; ; lines++) {
            String line = line(in, budget, uri);
            if (line.isEmpty()) return status;
            if (lines >= MAX_HEADER_LINES) throw new IOException("the upstream sent too many header lines for " + uri);
            int colon = line.indexOf(':');
            if (colon <= 0 || line.charAt(0) == ' ' || line.charAt(0) == '\t') {
                throw new IOException("the upstream sent a malformed header line for " + uri);
            }
            String name = line.substring(0, colon).strip().toLowerCase(Locale.ROOT);
            String value = line.substring(colon + 1).strip();
            String earlier = headers.putIfAbsent(name, value);
            if (earlier != null && (name.equals("content-length") || name.equals("transfer-encoding")) && !earlier.equals(value)) {
                throw new IOException("the upstream sent conflicting " + name + " headers for " + uri);
            }
        }
    }

    private static String line(InputStream in, int[] budget, URI uri) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        while (true) {
            int c = in.read();
            if (c < 0) throw new IOException("the upstream closed the connection in the middle of its answer for " + uri);
            if (--budget[0] < 0) throw new IOException("the upstream's answer head for " + uri + " is longer than " + MAX_HEAD_BYTES + " bytes");
            if (c == '\n') break;
            b.write(c);
        }
        String s = b.toString(StandardCharsets.ISO_8859_1);
        return s.endsWith("\r") ? s.substring(0, s.length() - 1) : s;
    }

    private static long contentLength(Map<String, String> headers, URI uri) throws IOException {
        String v = headers.get("content-length");
        if (v == null) return -1;
        if (v.isEmpty() || v.length() > 18 || !v.chars().allMatch(c -> c >= '0' && c <= '9')) {
            throw new IOException("the upstream sent a malformed Content-Length for " + uri);
        }
        return Long.parseLong(v);
    }

    private static long remaining(long deadline, URI uri) throws IOException {
        long left = deadline - System.nanoTime();
        if (left <= 0) throw new IOException("fetching " + uri + " took longer than the upstream deadline");
        return left;
    }

    private static int millis(long nanos) {
        return (int) Math.clamp(nanos / 1_000_000, 1, Integer.MAX_VALUE);
    }

    /** The socket's input, each read bounded by {@link #perRead} and by the fetch's deadline. */
    private static final class TimedInput extends InputStream {
        private final Socket socket;
        private final InputStream in;
        private final long deadline;
        private final URI uri;
        long perRead;

        TimedInput(Socket socket, InputStream in, long deadline, long perRead, URI uri) {
            this.socket = socket;
            this.in = in;
            this.deadline = deadline;
            this.perRead = perRead;
            this.uri = uri;
        }

        @Override
        public int read() throws IOException {
            arm();
            try {
                return in.read();
            } catch (SocketTimeoutException e) {
                throw timedOut();
            }
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            arm();
            try {
                return in.read(b, off, len);
            } catch (SocketTimeoutException e) {
                throw timedOut();
            }
        }

        private void arm() throws IOException {
            socket.setSoTimeout(millis(Math.min(perRead, remaining(deadline, uri))));
        }

        private IOException timedOut() {
            return new IOException("the upstream sent nothing for " + Math.min(perRead, Math.max(0, deadline - System.nanoTime()))
                    / 1_000_000_000 + " s while answering " + uri);
        }

        @Override
        public void close() throws IOException {
            socket.close();
        }
    }

    /** A framed body over the connection: one byte reads through the bulk read; closing closes the socket. */
    private abstract static class Body extends InputStream {
        final InputStream in;
        final URI uri;

        Body(InputStream in, URI uri) {
            this.in = in;
            this.uri = uri;
        }

        @Override
        public int read() throws IOException {
            byte[] one = new byte[1];
            return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
        }

        @Override
        public void close() throws IOException {
            in.close();
        }
    }

    /** A body of exactly {@code length} bytes; ending early is an error. */
    private static final class Fixed extends Body {
        private final long length;
        private long left;

        Fixed(InputStream in, long length, URI uri) {
            super(in, uri);
            this.length = length;
            this.left = length;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (len == 0) return 0;
            if (left == 0) return -1;
            int n = in.read(b, off, (int) Math.min(len, left));
            if (n < 0) throw new IOException("the upstream's answer for " + uri + " ended after " + (length - left) + " of " + length + " bytes");
            left -= n;
            return n;
        }
    }

    /** A chunked body (RFC 9112 section 7.1), chunk-size lines and trailers bounded; extensions ignored. */
    private static final class Chunked extends Body {
        private long left;
        private boolean started;
        private boolean done;

        Chunked(InputStream in, URI uri) {
            super(in, uri);
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            if (len == 0) return 0;
            if (done) return -1;
            if (left == 0) {
                int[] budget = {MAX_HEAD_BYTES};
                if (started && !line(in, budget, uri).isEmpty()) throw malformed();
                started = true;
                String size = line(in, budget, uri);
                int semi = size.indexOf(';');
                String hex = (semi >= 0 ? size.substring(0, semi) : size).strip();
                if (hex.isEmpty() || hex.length() > 15 || !hex.chars().allMatch(c -> Character.digit(c, 16) >= 0)) throw malformed();
                left = Long.parseLong(hex, 16);
                if (left == 0) {
                    for (int lines = 0; !line(in, budget, uri).isEmpty(); lines++) {
                        if (lines >= MAX_HEADER_LINES) throw malformed();
                    }
                    done = true;
                    return -1;
                }
            }
            int n = in.read(b, off, (int) Math.min(len, left));
            if (n < 0) throw new IOException("the upstream's answer for " + uri + " ended inside a chunk");
            left -= n;
            return n;
        }

        private IOException malformed() {
            return new IOException("the upstream sent a malformed chunked body for " + uri);
        }
    }
}
