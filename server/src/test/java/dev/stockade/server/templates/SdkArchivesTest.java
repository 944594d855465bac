package dev.stockade.server.templates;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Uploads byte for byte as the SDKs make them, placed as E2B's server places them (S14.1c, S14.2c).
 * The archives in src/test/resources/templates were written once by the e2b JS SDK 2.51's own
 * archiver (node-tar 7.5.23, {@code create({gzip, cwd, follow: false, noDirRecurse: true, file},
 * paths)} over the SDK's file list) and by Python's tarfile as the Python SDK calls it (PAX, a
 * 150-character name), from a context holding {@code folder/test.txt} (0644, 21 bytes) and
 * {@code folder/symlink.txt -> test.txt}: {@code node-tar-folder-glob.tar.gz} is
 * {@code copy('folder/*', ...)}'s list (no {@code folder/} entry), {@code node-tar-folder.tar.gz}
 * {@code copy('folder', ...)}'s, {@code node-tar-file.tar} a single file with {@code gzip: false}.
 */
class SdkArchivesTest {
    private static final ImageBelow HOME = path -> switch (path) {
        case "/", "/home" -> Optional.of(new ImageBelow.Directory(0, 0, 0755));
        case "/home/user" -> Optional.of(new ImageBelow.Directory(1000, 1000, 0750));
        default -> Optional.empty();
    };
    private static final List<String> HOME_DIRS = List.of("/ d 0:0 0755", "/home d 0:0 0755", "/home/user d 1000:1000 0750");

    @TempDir Path tmp;

    private List<String> copy(String resource, String... args) throws IOException {
        Path layer = tmp.resolve(resource);
        try (InputStream in = SdkArchivesTest.class.getResourceAsStream("/templates/" + resource)) {
            new CopyToLayer(1 << 20, 100, false).apply(CopyStep.of(List.of(args)), BuildContext.ofUser(), in, layer, HOME);
        }
        return CopyToLayerTest.tree(layer);
    }

    @Test
    void theBuildTestsCopyOfFolderGlobIntoFolder() throws IOException {
        // e2b's build.test.ts: copy('folder/*', 'folder', {forceUpload: true}) then `cat folder/test.txt` as user
        assertEquals(concat(HOME_DIRS, List.of(
                "/home/user/folder d 1000:1000 0755",
                "/home/user/folder/symlink.txt l 1000:1000 -> test.txt",
                "/home/user/folder/test.txt f 1000:1000 0644 21")), copy("node-tar-folder-glob.tar.gz", "folder/*", "folder", "", ""));
        assertEquals("This is a test file.\n", Files.readString(tmp.resolve("node-tar-folder-glob.tar.gz/home/user/folder/test.txt")));
    }

    @Test
    void aFolderToAnAbsoluteDestinationAsRootWithAMode() throws IOException {
        assertEquals(List.of(
                "/ d 0:0 0755",
                "/opt d 0:0 0755",
                "/opt/f d 0:0 0755",
                "/opt/f/symlink.txt l 0:0 -> test.txt",
                "/opt/f/test.txt f 0:0 0755 21"), copy("node-tar-folder.tar.gz", "folder", "/opt/f", "root", "0755"));
    }

    @Test
    void aSingleFileUploadedWithoutGzip() throws IOException {
        assertEquals(concat(HOME_DIRS, List.of("/home/user/test.txt f 1000:1000 0644 21")),
                copy("node-tar-file.tar", "folder/test.txt", "test.txt", "", ""));
    }

    @Test
    void pythonsTarfileWithAPaxLongName() throws IOException {
        assertEquals(List.of(
                "/ d 0:0 0755",
                "/app d 1000:1000 0755",
                "/app/" + "n".repeat(150) + ".txt f 1000:1000 0644 5",
                "/app/symlink.txt l 1000:1000 -> test.txt",
                "/app/test.txt f 1000:1000 0644 21"), copy("python-tarfile-folder.tar.gz", "folder", "/app", "", ""));
    }

    private static List<String> concat(List<String> a, List<String> b) {
        return Stream.concat(a.stream(), b.stream()).toList();
    }
}
