package dev.stockade.server.api;

import com.fasterxml.jackson.databind.node.ArrayNode;
import dev.stockade.protocol.EntryInfo;
import dev.stockade.server.core.Sandbox;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.session.FileDownload;
import dev.stockade.server.session.Sessions;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.Locale;
import java.util.Map;
import java.util.function.LongFunction;
import java.util.function.ToLongFunction;
import java.util.zip.GZIPInputStream;

/**
 * envd's plain file transfer: GET /files streams a file out, POST /files streams one or more in
 * (application/octet-stream, optionally gzip, or multipart/form-data as the E2B SDKs send by
 * default). Bodies are streamed through the agent ({@link Sessions}), never held whole in memory; an upload larger than
 * the sandbox's disk limit is refused with 413 as soon as it passes the limit. {@code X-Metadata-*}
 * headers are stored with every file written ({@link UploadMetadata}).
 *
 * <p>The sandbox's disk is a filesystem of its own (a full one is ENOSPC, not a dead sandbox), and
 * an upload is checked against its free space, read on the host when the upload begins: a body
 * whose declared length cannot fit is refused with 413 before anything is written; a stream (or
 * a gzip body's inflated stream) that passes the free space, or that the agent finds no room for
 * (ENOSPC, EDQUOT), ends with 507, and the agent removes the partial file.
 */
final class FilesHttp {
    private final Sessions sessions = new Sessions();
    /** Bytes free on a sandbox's disk now, or -1 when its runtime cannot tell. */
    private final ToLongFunction<Sandbox> diskFree;

    FilesHttp(ToLongFunction<Sandbox> diskFree) {
        this.diskFree = diskFree;
    }

    void handle(Request r, EnvdContext ctx) throws IOException {
        switch (r.method()) {
            case "GET" -> download(r, ctx);
            case "POST" -> upload(r, ctx);
            default -> throw StockadeError.invalid(r.method() + " is not allowed on /files");
        }
    }

    private void download(Request r, EnvdContext ctx) throws IOException {
        String path = queryPath(r);
        if (path == null) throw StockadeError.invalid("the path query parameter is required");
        try (FileDownload f = sessions.readFile(ctx.sandbox(), path, ctx.user())) {
            long size = f.size();
            r.setResponseHeader("Content-Type", "application/octet-stream");
            OutputStream body = r.respond(200, size == 0 ? -1 : size);
            if (size == 0) return;
            try (OutputStream out = body; InputStream in = f.content()) {
                // Exactly the announced size: a file that shrank meanwhile aborts the response
                // (the client sees a short body, never a wrong one); one that grew is cut.
                long copied = in.transferTo(new LimitedOutput(out, size));
                if (copied < size) throw new IOException("the file shrank while it was read");
            }
        }
    }

    private void upload(Request r, EnvdContext ctx) throws IOException {
        String queryPath = queryPath(r);
        Map<String, String> metadata = UploadMetadata.from(r);
        long max = ctx.sandbox().limits().diskMB() * 1024L * 1024L;
        long free = diskFree.applyAsLong(ctx.sandbox());
        long declared = declaredLength(r);
        if (free >= 0 && declared > free) {
            throw new StockadeError(StockadeError.Code.PAYLOAD_TOO_LARGE, "the upload (" + declared + " bytes) does not fit"
                    + " the sandbox's disk: " + free + " bytes are free of its " + ctx.sandbox().limits().diskMB()
                    + " MiB; nothing was written");
        }
        String type = r.header("Content-Type");
        String t = type == null ? "" : type.toLowerCase(Locale.ROOT);
        ArrayNode out = r.json.createArrayNode();
        InputStream body = new CappedInput(new ClientInput(r.requestBody()), max);
        if (t.startsWith("multipart/form-data")) {
            Multipart mp = new Multipart(body, type);
            Multipart.Part part;
            while ((part = mp.next()) != null) {
                if (part.filename() == null && !"file".equals(part.name())) continue;
                String path = queryPath != null ? queryPath : part.filename();
                if (path == null || path.isEmpty()) throw StockadeError.invalid("a multipart file part has no filename and no path was given");
                checkPath(path);
                out.add(written(r, sessions.writeFile(ctx.sandbox(), path, fitting(part.content(), free), ctx.user(), metadata)));
            }
        } else {
            if (queryPath == null) throw StockadeError.invalid("the path query parameter is required");
            InputStream in = body;
            String enc = r.header("Content-Encoding");
            if (enc != null && enc.trim().equalsIgnoreCase("gzip")) {
                in = new CappedInput(new GunzipInput(body), max);
            } else if (enc != null && !enc.isBlank() && !enc.trim().equalsIgnoreCase("identity")) {
                throw StockadeError.invalid("Content-Encoding " + enc + " is not supported (gzip or none)");
            }
            out.add(written(r, sessions.writeFile(ctx.sandbox(), queryPath, fitting(in, free), ctx.user(), metadata)));
        }
        if (out.isEmpty()) throw StockadeError.invalid("the upload contained no file");
        r.sendJson(200, out);
    }

    /** The body's Content-Length, or -1 without one (chunked) or with one that is not a number (refused elsewhere). */
    private static long declaredLength(Request r) {
        String len = r.header("Content-Length");
        if (len == null) return -1;
        try {
            return Long.parseLong(len.trim());
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /**
     * The file's content, ending with NO_SPACE (507) once it passes the {@code free} bytes of the
     * disk: the write could not succeed, so the rest (of a gzip bomb, say) is neither inflated nor
     * sent. Unchecked when the free space is unknown.
     */
    private static InputStream fitting(InputStream content, long free) {
        if (free < 0) return content;
        return new CappedInput(content, free, n -> new StockadeError(StockadeError.Code.NO_SPACE, "the sandbox's disk is"
                + " full: the upload passed the " + n + " bytes that were free on it; the partial file was removed"));
    }

    private static com.fasterxml.jackson.databind.node.ObjectNode written(Request r, EntryInfo e) {
        var n = r.json.createObjectNode();
        n.put("name", e.name());
        n.put("type", "dir".equals(e.type()) ? "dir" : "file");
        n.put("path", e.path());
        if (!e.metadata().isEmpty()) e.metadata().forEach(n.putObject("metadata")::put);
        return n;
    }

    private static String queryPath(Request r) {
        String p = r.query().get("path");
        if (p == null || p.isEmpty()) return null;
        checkPath(p);
        r.audit(p, null);
        return p;
    }

    private static void checkPath(String p) {
        if (p.indexOf('\0') >= 0) throw StockadeError.invalid("path must not contain NUL");
        if (p.length() > 4096) throw StockadeError.invalid("path is longer than 4096 characters");
    }

    /**
     * Decompresses a gzip request body; a body that is not gzip, or is cut short, is the client's
     * error (400), not an I/O failure of the connection (which would go unanswered) nor a 500.
     */
    static final class GunzipInput extends FilterInputStream {
        GunzipInput(InputStream raw) {
            super(open(raw));
        }

        private static InputStream open(InputStream raw) {
            try {
                return new GZIPInputStream(raw, 65536);
            } catch (IOException e) {
                throw notGzip(e);
            }
        }

        private static StockadeError notGzip(IOException e) {
            return StockadeError.invalid("the body is not valid gzip (Content-Encoding: gzip): " + e.getMessage());
        }

        @Override
        public int read() throws IOException {
            try {
                return super.read();
            } catch (java.util.zip.ZipException | java.io.EOFException e) {
                throw notGzip(e);
            }
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            try {
                return super.read(b, off, len);
            } catch (java.util.zip.ZipException | java.io.EOFException e) {
                throw notGzip(e);
            }
        }
    }

    /**
     * The request body as the client sends it: a read that fails (the client went away or broke the
     * framing mid-upload) is the client's error, answered 400 if anyone still listens — not an
     * unexplained I/O failure that would surface as a 500 "bug". The agent discards the partial file.
     */
    static final class ClientInput extends FilterInputStream {
        ClientInput(InputStream in) {
            super(in);
        }

        private static StockadeError cut(IOException e) {
            if (RequestBounds.malformedBody(e)) return RequestBounds.readFailure(e);
            return StockadeError.invalid("the upload was cut short: " + RequestBounds.printable(String.valueOf(e.getMessage()), 200));
        }

        @Override
        public int read() {
            try {
                return super.read();
            } catch (IOException e) {
                throw cut(e);
            }
        }

        @Override
        public int read(byte[] b, int off, int len) {
            try {
                return super.read(b, off, len);
            } catch (IOException e) {
                throw cut(e);
            }
        }
    }

    /** Fails with PAYLOAD_TOO_LARGE (or the error {@code over} makes of the limit) once more than {@code max} bytes were read. */
    static final class CappedInput extends FilterInputStream {
        private final long max;
        private final LongFunction<StockadeError> over;
        private long count;

        CappedInput(InputStream in, long max) {
            this(in, max, Request::tooLarge);
        }

        CappedInput(InputStream in, long max, LongFunction<StockadeError> over) {
            super(in);
            this.max = max;
            this.over = over;
        }

        @Override
        public int read() throws IOException {
            int b = super.read();
            if (b >= 0 && ++count > max) throw over.apply(max);
            return b;
        }

        @Override
        public int read(byte[] b, int off, int len) throws IOException {
            int n = super.read(b, off, len);
            if (n > 0 && (count += n) > max) throw over.apply(max);
            return n;
        }
    }

    private static final class LimitedOutput extends OutputStream {
        private final OutputStream out;
        private long left;

        LimitedOutput(OutputStream out, long limit) {
            this.out = out;
            this.left = limit;
        }

        @Override
        public void write(int b) throws IOException {
            if (left > 0) {
                out.write(b);
                left--;
            }
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            int n = (int) Math.min(len, left);
            if (n > 0) {
                out.write(b, off, n);
                left -= n;
            }
        }
    }
}
