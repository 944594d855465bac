package dev.stockade.sdk.internal;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.sdk.EntryInfo;
import dev.stockade.sdk.Filesystem;
import dev.stockade.sdk.InvalidArgumentException;
import dev.stockade.sdk.SandboxException;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * {@link Filesystem} over envd: contents through plain {@code GET/POST /files} (streamed both
 * ways), metadata through {@code filesystem.Filesystem} RPCs. Stateless and thread-safe.
 */
public final class FilesystemImpl implements Filesystem {
    private final EnvdClient envd;

    public FilesystemImpl(EnvdClient envd) {
        this.envd = envd;
    }

    @Override
    public String read(String path) {
        return new String(readBytes(path), StandardCharsets.UTF_8);
    }

    @Override
    public byte[] readBytes(String path) {
        String what = what("reading", path);
        try (InputStream in = readStream(path)) {
            return in.readAllBytes();
        } catch (IOException e) {
            throw new SandboxException(what + ": the download broke off: " + e, 0, e);
        }
    }

    @Override
    public InputStream readStream(String path) {
        Objects.requireNonNull(path, "path");
        String what = what("reading", path);
        HttpResponse<InputStream> res = envd.download(path, null, what);
        if (res.statusCode() != 200) throw Transport.error(res.statusCode(), Transport.drainError(res.body()), what);
        return res.body();
    }

    @Override
    public EntryInfo write(String path, String content) {
        return upload(path, HttpRequest.BodyPublishers.ofString(content, StandardCharsets.UTF_8), false);
    }

    @Override
    public EntryInfo write(String path, byte[] content) {
        return upload(path, HttpRequest.BodyPublishers.ofByteArray(content), false);
    }

    @Override
    public EntryInfo write(String path, InputStream content) {
        Objects.requireNonNull(content, "content");
        // The JDK closes the stream it is given when the body ends; the caller owns this one.
        InputStream unclosable = new java.io.FilterInputStream(content) {
            @Override
            public void close() {}
        };
        return upload(path, HttpRequest.BodyPublishers.ofInputStream(() -> unclosable), true);
    }

    @Override
    public EntryInfo write(String path, Path localFile) {
        try {
            return upload(path, HttpRequest.BodyPublishers.ofFile(localFile), true);
        } catch (FileNotFoundException e) {
            throw new UncheckedIOException("cannot read local file " + localFile + ": " + e.getMessage(), e);
        }
    }

    private EntryInfo upload(String path, HttpRequest.BodyPublisher body, boolean streamed) {
        Objects.requireNonNull(path, "path");
        JsonNode written = envd.upload(path, body, streamed, null, what("writing", path));
        JsonNode first = written.isArray() ? written.path(0) : written;
        if (first.isObject() && first.hasNonNull("path")) return Wire.entryInfo(first);
        return new EntryInfo(Path.of(path).getFileName() == null ? path : Path.of(path).getFileName().toString(),
                dev.stockade.sdk.FileType.FILE, path, 0, 0, null, null, null, null, null);
    }

    @Override
    public List<EntryInfo> list(String path) {
        return list(path, 1);
    }

    @Override
    public List<EntryInfo> list(String path, int depth) {
        if (depth < 1) throw new InvalidArgumentException("depth should be at least one, got " + depth);
        String what = what("listing", path);
        ObjectNode req = Json.object().put("path", path).put("depth", depth);
        JsonNode body = envd.unary("filesystem.Filesystem/ListDir", req, null, what).orThrow(what);
        List<EntryInfo> out = new ArrayList<>();
        for (JsonNode e : body.path("entries")) {
            EntryInfo info = Wire.entryInfo(e);
            if (info.type() != null) out.add(info);
        }
        return out;
    }

    @Override
    public boolean exists(String path) {
        String what = what("checking", path);
        EnvdClient.Reply reply = envd.unary("filesystem.Filesystem/Stat", Json.object().put("path", path), null, what);
        if (reply.error() != null && reply.error().is("not_found")) return false;
        reply.orThrow(what);
        return true;
    }

    @Override
    public EntryInfo getInfo(String path) {
        String what = what("describing", path);
        JsonNode body = envd.unary("filesystem.Filesystem/Stat", Json.object().put("path", path), null, what)
                .orThrow(what);
        return entry(body, what);
    }

    @Override
    public boolean makeDir(String path) {
        String what = what("creating directory", path);
        EnvdClient.Reply reply = envd.unary("filesystem.Filesystem/MakeDir", Json.object().put("path", path), null,
                what);
        if (reply.error() != null && reply.error().is("already_exists")) return false;
        reply.orThrow(what);
        return true;
    }

    @Override
    public EntryInfo rename(String oldPath, String newPath) {
        String what = "renaming " + oldPath + " to " + newPath + " in sandbox " + envd.sandboxId();
        ObjectNode req = Json.object().put("source", oldPath).put("destination", newPath);
        return entry(envd.unary("filesystem.Filesystem/Move", req, null, what).orThrow(what), what);
    }

    @Override
    public void remove(String path) {
        String what = what("removing", path);
        envd.unary("filesystem.Filesystem/Remove", Json.object().put("path", path), null, what).orThrow(what);
    }

    private static EntryInfo entry(JsonNode body, String what) {
        JsonNode e = body.get("entry");
        if (e == null || !e.isObject()) throw new SandboxException(what + ": the server's answer has no entry");
        return Wire.entryInfo(e);
    }

    private String what(String verb, String path) {
        return verb + " " + path + " in sandbox " + envd.sandboxId();
    }
}
