package dev.stockade.runtime.oci;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.runtime.SandboxSpec;
import dev.stockade.runtime.Template;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.UUID;

/**
 * Builds the default template's read-only lower directory: the host's Debian Python (its /usr bound
 * read-only, the /bin, /lib... links of a merged-/usr system) under an /etc of Stockade's own, as
 * listed with reasons in policy/template-etc.json. Built once per template version into the runtime's
 * state root and reused by every sandbox; never the host's /etc as a whole.
 */
final class TemplateBuilder {
    static final String NAME = "python";
    /** Bump when the template's content changes, so existing state roots rebuild it. */
    static final String VERSION = "6";
    private static final String POLICY = "/dev/stockade/policy/template-etc.json";
    private static final String MARKER = ".stockade-template";

    private TemplateBuilder() {}

    static Template ensure(Path templatesRoot, ObjectMapper json) {
        Path dir = templatesRoot.resolve(NAME);
        try {
            Files.createDirectories(templatesRoot);
            Path marker = dir.resolve(MARKER);
            if (Files.isRegularFile(marker) && Files.readString(marker).strip().equals(VERSION)) {
                return template(dir);
            }
            Path tmp = templatesRoot.resolve(NAME + ".tmp-" + UUID.randomUUID());
            build(tmp, json);
            if (Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
                // An older version may still be the lower layer of running sandboxes: set it aside.
                Files.move(dir, templatesRoot.resolve(NAME + ".old-" + System.currentTimeMillis()));
            }
            try {
                Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
            } catch (FileAlreadyExistsException raced) {
                deleteTree(tmp);
            }
            return template(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("building the default template under " + dir + " failed: " + e.getMessage()
                    + ". Check that the data directory is writable and has free space.", e);
        }
    }

    private static Template template(Path dir) {
        return new Template(NAME, dir, List.of(Path.of("/usr")));
    }

    static void build(Path root, ObjectMapper json) throws IOException {
        Files.createDirectories(root);
        for (String d : List.of("etc", "home/user", "tmp", "var/tmp", "proc", "sys", "dev", "usr", "opt/stockade",
                "run/stockade", "root", "mnt", "srv")) {
            Files.createDirectories(root.resolve(d));
        }
        Files.setPosixFilePermissions(root.resolve("tmp"), PosixFilePermissions.fromString("rwxrwxrwx"));
        Files.setPosixFilePermissions(root.resolve("var/tmp"), PosixFilePermissions.fromString("rwxrwxrwx"));
        for (String link : List.of("bin", "lib", "lib64", "sbin")) {
            Files.createSymbolicLink(root.resolve(link), Path.of("usr/" + link));
        }
        // The mount point of the egress proxy's socket directory: runc, root only inside the sandbox's user
        // namespace, cannot create it in the template's /run, which belongs to the host's root.
        Files.createDirectories(root.resolve(SandboxSpec.EGRESS_DIR_INSIDE.substring(1)));
        Path etc = root.resolve("etc");
        JsonNode policy;
        try (InputStream in = TemplateBuilder.class.getResourceAsStream(POLICY)) {
            if (in == null) throw new IOException("template policy missing from the classpath: " + POLICY);
            policy = json.readTree(in);
        }
        for (JsonNode entry : policy.path("copyFromHost")) {
            String rel = entry.get("path").asText();
            Path src = Path.of("/etc").resolve(rel);
            if (Files.exists(src, LinkOption.NOFOLLOW_LINKS)) {
                copyTree(src, etc.resolve(rel), policy.path("skipInside"));
            }
        }
        write(etc, "passwd", """
                root:x:0:0:root:/root:/bin/bash
                user:x:1000:1000:user:/home/user:/bin/bash
                nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
                """);
        write(etc, "group", """
                root:x:0:
                user:x:1000:
                nogroup:x:65534:
                """);
        write(etc, "hosts", """
                127.0.0.1\tlocalhost
                ::1\tlocalhost ip6-localhost ip6-loopback
                127.0.1.1\t%s
                """.formatted(OciConfigPlanner.HOSTNAME));
        write(etc, "hostname", OciConfigPlanner.HOSTNAME + "\n");
        write(etc, "resolv.conf", "");
        write(etc, "nsswitch.conf", """
                passwd: files
                group: files
                shadow: files
                hosts: files
                networks: files
                protocols: files
                services: files
                """);
        write(etc, "profile", """
                # Stockade sandbox login profile (not the host's).
                export PATH=/home/user/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
                umask 022
                %s""".formatted(NO_SUDO));
        write(etc, "pip.conf", PIP_CONF);
        Path zone = Path.of("/usr/share/zoneinfo/Etc/UTC");
        Files.deleteIfExists(etc.resolve("localtime"));
        Files.createSymbolicLink(etc.resolve("localtime"), zone);
        Files.writeString(root.resolve(MARKER), VERSION + "\n");
    }

    /**
     * E2B's image gives its user passwordless sudo; a Stockade sandbox has none on purpose (user code
     * has no privileges: docs/e2b-compatibility.md). Without this, code written for E2B fails with
     * bash's "sudo: command not found" (127); this login-shell function says why and what to do
     * instead. Commands run through {@code bash -l -c}, so every command sees it.
     */
    static final String NO_SUDO = """
            sudo() {
              echo "sudo: not available in a Stockade sandbox: user code runs without privileges." >&2
              echo "Run the command as the sandbox's root user instead (the SDK's user: 'root' option)." >&2
              return 1
            }
            """;

    /**
     * pip's system-wide configuration: packages come from the egress proxy's own index (through
     * HTTP_PROXY, which the agent sets), and installs go to the user's ~/.local because /usr is
     * read-only; break-system-packages lets pip past Debian's EXTERNALLY-MANAGED marker, which
     * would otherwise refuse every install.
     */
    static final String PIP_CONF = """
            # Stockade sandbox: packages come through the egress proxy's index.
            [global]
            index-url = http://pypi.stockade/simple/
            trusted-host = pypi.stockade
            break-system-packages = true
            disable-pip-version-check = true
            no-input = true
            timeout = 30
            """;

    private static void write(Path dir, String name, String content) throws IOException {
        Path p = dir.resolve(name);
        Files.deleteIfExists(p);
        Files.writeString(p, content, StandardCharsets.UTF_8);
        Files.setPosixFilePermissions(p, PosixFilePermissions.fromString("rw-r--r--"));
    }

    private static void copyTree(Path src, Path dst, JsonNode skipInside) throws IOException {
        Path etcRoot = Path.of("/etc");
        Files.walkFileTree(src, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) throws IOException {
                String rel = etcRoot.relativize(dir).toString();
                for (JsonNode skip : skipInside) {
                    if (rel.equals(skip.asText())) return FileVisitResult.SKIP_SUBTREE;
                }
                Files.createDirectories(dst.resolve(src.relativize(dir).toString()));
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                Path target = dst.resolve(src.relativize(file).toString());
                if (attrs.isSymbolicLink()) {
                    Files.createSymbolicLink(target, Files.readSymbolicLink(file));
                } else if (attrs.isRegularFile()) {
                    Files.copy(file, target, StandardCopyOption.COPY_ATTRIBUTES);
                }
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult visitFileFailed(Path file, IOException exc) {
                return FileVisitResult.CONTINUE; // unreadable entries are simply not part of the template
            }
        });
    }

    static void deleteTree(Path root) throws IOException {
        if (!Files.exists(root, LinkOption.NOFOLLOW_LINKS)) return;
        Files.walkFileTree(root, new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                Files.delete(file);
                return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path dir, IOException exc) throws IOException {
                Files.delete(dir);
                return FileVisitResult.CONTINUE;
            }
        });
    }
}
