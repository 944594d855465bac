package dev.stockade.server.templates;

import static java.nio.file.LinkOption.NOFOLLOW_LINKS;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.server.templates.CopyRefused.Code;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * COPY uploads into layers as E2B's server places them, and every hostile archive refused with its
 * code, no host path in the message and no layer left (S14.1c–S14.6c). Runs as root (real chown).
 */
class CopyToLayerTest {
    private static final long MiB = 1 << 20;
    private static final CopyToLayer COPY = new CopyToLayer(8 * MiB, 1000, false);
    /** The image below: /home and the user's home as base images have them. */
    private static final ImageBelow HOME = path -> switch (path) {
        case "/", "/home" -> Optional.of(new ImageBelow.Directory(0, 0, 0755));
        case "/home/user" -> Optional.of(new ImageBelow.Directory(1000, 1000, 0750));
        default -> Optional.empty();
    };

    @TempDir Path tmp;

    private Path layer() {
        return tmp.resolve("layer");
    }

    private List<String> copy(CopyToLayer copy, byte[] upload, BuildContext ctx, ImageBelow below, String... args) throws IOException {
        copy.apply(CopyStep.of(List.of(args)), ctx, new ByteArrayInputStream(upload), layer(), below);
        return tree(layer());
    }

    private List<String> copy(byte[] upload, String... args) throws IOException {
        return copy(COPY, upload, BuildContext.ofUser(), HOME, args);
    }

    /** The refusal, checked to name no host path and to leave no layer behind. */
    private CopyRefused refused(Code code, CopyToLayer copy, byte[] upload, String... args) {
        CopyRefused e = assertThrows(CopyRefused.class, () -> copy.apply(CopyStep.of(List.of(args)),
                BuildContext.ofUser(), new ByteArrayInputStream(upload), layer(), HOME));
        assertEquals(code, e.code(), e.getMessage());
        assertFalse(e.getMessage().contains(tmp.toString()), "a host path in: " + e.getMessage());
        assertFalse(Files.exists(layer(), NOFOLLOW_LINKS), "the refused layer is removed");
        return e;
    }

    private CopyRefused refused(Code code, byte[] upload, String... args) {
        return refused(code, COPY, upload, args);
    }

    /** Every node of the layer: "path type uid:gid mode [size|-> target]", sorted. */
    static List<String> tree(Path root) throws IOException {
        List<String> out = new ArrayList<>();
        try (Stream<Path> s = Files.walk(root)) {
            for (Path p : s.sorted().toList()) {
                String name = "/" + root.relativize(p).toString().replace('\\', '/');
                if (p.equals(root)) name = "/";
                int uid = (Integer) Files.getAttribute(p, "unix:uid", NOFOLLOW_LINKS);
                int gid = (Integer) Files.getAttribute(p, "unix:gid", NOFOLLOW_LINKS);
                int mode = (Integer) Files.getAttribute(p, "unix:mode", NOFOLLOW_LINKS) & 07777;
                String owner = uid + ":" + gid;
                if (Files.isSymbolicLink(p)) out.add(name + " l " + owner + " -> " + Files.readSymbolicLink(p));
                else if (Files.isDirectory(p, NOFOLLOW_LINKS)) out.add(name + " d " + owner + " " + String.format("%04o", mode));
                else out.add(name + " f " + owner + " " + String.format("%04o", mode) + " " + Files.size(p));
            }
        }
        return out;
    }

    // ---- E2B's SDKs and server semantics (wire notes §3, §9) ----

    @Test
    void folderGlobMergesTheFolderContentIntoTheDestinationUnderHome() throws IOException {
        // node-tar for copy('folder/*', 'folder'): names relative to the context, no 'folder/' entry
        byte[] upload = new Archives().symlink("folder/symlink.txt", "test.txt").file("folder/test.txt", 0644, "hello").gz();
        assertEquals(List.of(
                "/ d 0:0 0755",
                "/home d 0:0 0755",
                "/home/user d 1000:1000 0750",
                "/home/user/folder d 1000:1000 0755",
                "/home/user/folder/symlink.txt l 1000:1000 -> test.txt",
                "/home/user/folder/test.txt f 1000:1000 0644 5"), copy(upload, "folder/*", "folder", "", ""));
        assertEquals("hello", Files.readString(layer().resolve("home/user/folder/test.txt")));
        assertEquals(1_700_000_000_000L, Files.getLastModifiedTime(layer().resolve("home/user/folder/test.txt")).toMillis());
    }

    @Test
    void aFolderGoesToAnAbsoluteDestinationWithItsOwnModeAndTheDefaultOwner() throws IOException {
        byte[] upload = new Archives().dir("folder/", 0750).symlink("folder/symlink.txt", "test.txt")
                .file("folder/test.txt", 0600, "x").dir("folder/sub/", 0700).file("folder/sub/deep", 0644, "deep").gz();
        assertEquals(List.of(
                "/ d 0:0 0755",
                "/opt d 0:0 0755",
                "/opt/f d 1000:1000 0750",
                "/opt/f/sub d 1000:1000 0700",
                "/opt/f/sub/deep f 1000:1000 0644 4",
                "/opt/f/symlink.txt l 1000:1000 -> test.txt",
                "/opt/f/test.txt f 1000:1000 0600 1"), copy(upload, "folder", "/opt/f", "", ""));
    }

    @Test
    void theStepsOwnerAndModeReplaceTheArchivesExceptOnSymlinks() throws IOException {
        byte[] upload = new Archives().dir("folder/", 0755).symlink("folder/l", "/etc/passwd")
                .file("folder/x", 0644, "x").file("folder/implicit/y", 0644, "y").gz();
        assertEquals(List.of(
                "/ d 0:0 0755",
                "/srv d 0:0 0755",
                "/srv/app d 0:0 0700",
                "/srv/app/implicit d 0:0 0700",
                "/srv/app/implicit/y f 0:0 0700 1",
                "/srv/app/l l 0:0 -> /etc/passwd",
                "/srv/app/x f 0:0 0700 1"), copy(upload, "folder", "/srv/app", "root", "0700"));
    }

    @Test
    void aSingleFileGoesToTheExactPathOrIntoADirectory() throws IOException {
        byte[] upload = new Archives().file("config/a.txt", 0640, "abc").gz();
        assertEquals(List.of("/ d 0:0 0755", "/etc d 0:0 0755", "/etc/b.conf f 1000:1000 0640 3"),
                copy(upload, "config/a.txt", "/etc/b.conf", "", ""));
        LayerWriter.remove(layer());
        // a trailing slash: the directory is made (the owner's) and the file keeps its name
        assertEquals(List.of("/ d 0:0 0755", "/home d 0:0 0755", "/home/user d 1000:1000 0750",
                        "/home/user/data d 0:0 0755", "/home/user/data/a.txt f 0:0 0600 3"),
                copy(upload, "config/a.txt", "data/", "root:root", "0600"));
        LayerWriter.remove(layer());
        // a destination the image has as a directory: inside it, as mv does
        ImageBelow srv = path -> path.equals("/srv") ? Optional.of(new ImageBelow.Directory(0, 0, 0711)) : Optional.empty();
        assertEquals(List.of("/ d 0:0 0755", "/srv d 0:0 0711", "/srv/a.txt f 1000:1000 0640 3"),
                copy(COPY, upload, BuildContext.ofUser(), srv, "config/a.txt", "/srv", "", ""));
        LayerWriter.remove(layer());
        // "." is the workdir (here the home) as a directory, whatever the image says; "/" is the root
        assertEquals(List.of("/ d 0:0 0755", "/home d 0:0 0755", "/home/user d 1000:1000 0755", "/home/user/a.txt f 1000:1000 0640 3"),
                copy(COPY, upload, BuildContext.ofUser(), ImageBelow.NOTHING, "config/a.txt", ".", "", ""));
        LayerWriter.remove(layer());
        assertEquals(List.of("/ d 0:0 0755", "/a.txt f 1000:1000 0640 3"),
                copy(COPY, upload, BuildContext.ofUser(), ImageBelow.NOTHING, "config/a.txt", "/", "", ""));
    }

    @Test
    void aPatternWithoutAStaticPrefixCopiesTheUploadsRootIntoTheWorkdir() throws IOException {
        byte[] upload = new Archives().file("a.txt", 0644, "a").file("b.txt", 0644, "bb").tar(); // gzip: false
        BuildContext ctx = new BuildContext("user", "/app", "/home/user", BuildContext.CANONICAL);
        assertEquals(List.of("/ d 0:0 0755", "/app d 1000:1000 0755", "/app/a.txt f 1000:1000 0644 1", "/app/b.txt f 1000:1000 0644 2"),
                copy(COPY, upload, ctx, ImageBelow.NOTHING, "*.txt", ".", "", ""));
        LayerWriter.remove(layer());
        // ".." in the destination is resolved lexically and stops at the sandbox's root
        assertEquals(List.of("/ d 0:0 0755", "/x d 1000:1000 0755", "/x/a.txt f 1000:1000 0644 1", "/x/b.txt f 1000:1000 0644 2"),
                copy(COPY, upload, ctx, ImageBelow.NOTHING, "*.txt", "../../../x", "", ""));
    }

    @Test
    void sourcePrefixesAreDoublestarsSplitPattern() {
        assertEquals("folder", CopyStep.staticPrefix("folder/*"));
        assertEquals(".", CopyStep.staticPrefix("*.txt"));
        assertEquals("a.txt", CopyStep.staticPrefix("a.txt"));
        assertEquals("a/b", CopyStep.staticPrefix("a/b/**/*.py"));
        assertEquals("dir/", CopyStep.staticPrefix("dir/")); // as doublestar; normalised to "dir" afterwards
        assertEquals("a/\\*b", CopyStep.staticPrefix("a/\\*b/[x]")); // an escaped glob character stays, escaped, as in doublestar
    }

    @Test
    void longNamesAsPaxAndAsGnuEntries() throws IOException {
        String longName = "folder/" + "d".repeat(120) + "/" + "f".repeat(150) + ".txt";
        for (Archives a : List.of(new Archives(), Archives.gnu())) {
            byte[] upload = a.file(longName, 0644, "long").symlink("folder/l", "x".repeat(200)).gz();
            List<String> tree = copy(upload, "folder", "/o", "", "");
            assertTrue(tree.contains("/o/" + longName.substring(7) + " f 1000:1000 0644 4"), tree.toString());
            assertTrue(tree.contains("/o/l l 1000:1000 -> " + "x".repeat(200)), tree.toString());
            LayerWriter.remove(layer());
        }
    }

    @Test
    void concatenatedGzipMembersAreOneArchive() throws IOException {
        byte[] tar = new Archives().file("folder/a", 0644, "a".repeat(3000)).file("folder/b", 0644, "b").tar();
        byte[] upload = concat(Archives.gzip(Arrays.copyOf(tar, 1500)), Archives.gzip(Arrays.copyOfRange(tar, 1500, tar.length)));
        List<String> tree = copy(upload, "folder", "/f", "", "");
        assertTrue(tree.containsAll(List.of("/f/a f 1000:1000 0644 3000", "/f/b f 1000:1000 0644 1")), tree.toString());
    }

    @Test
    void hardLinksToFilesOfTheCopyShareTheInode() throws IOException {
        byte[] upload = new Archives().file("folder/a", 0644, "same").hardLink("folder/b", "folder/a").gz();
        copy(upload, "folder", "/h", "", "");
        Object a = Files.getAttribute(layer().resolve("h/a"), "unix:ino");
        assertEquals(a, Files.getAttribute(layer().resolve("h/b"), "unix:ino"));
        assertEquals(2, Files.getAttribute(layer().resolve("h/a"), "unix:nlink"));
    }

    // ---- hostile uploads ----

    @Test
    void namesWithDotDotOrAbsoluteAreRefused() throws IOException {
        assertTrue(refused(Code.UNSAFE_NAME, Archives.handMade().file("folder/../../../etc/x", 0644, "x").gz(), "folder", "/f", "", "")
                .getMessage().contains("'folder/../../../etc/x'"));
        refused(Code.UNSAFE_NAME, Archives.handMade().file("/etc/cron.d/x", 0644, "x").gz(), "*", "/f", "", "");
        refused(Code.UNSAFE_NAME, Archives.handMade().symlink("folder/l", "x").hardLink("folder/h", "../../etc/shadow").gz(), "folder", "/f", "", "");
        refused(Code.BAD_ARGUMENTS, new Archives().file("a", 0644, "a").gz(), "../a", "/f", "", "");
    }

    @Test
    void namesThroughAnEarlierSymlinkEntryAreRefusedAndNothingIsWrittenOutside() throws IOException {
        Path outside = Files.createDirectory(tmp.resolve("outside"));
        byte[] upload = Archives.handMade().symlink("folder/l", outside.toString()).file("folder/l/pwned", 0644, "x").gz();
        refused(Code.THROUGH_SYMLINK, upload, "folder", "/f", "", "");
        byte[] dirViaLink = Archives.handMade().symlink("folder/l", outside.toString()).dir("folder/l/sub/", 0755).gz();
        refused(Code.THROUGH_SYMLINK, dirViaLink, "folder", "/f", "", "");
        // the source itself a symlink, then content under it
        refused(Code.THROUGH_SYMLINK, Archives.handMade().symlink("folder", outside.toString()).file("folder/x", 0644, "x").gz(), "folder", "/f", "", "");
        try (Stream<Path> s = Files.list(outside)) {
            assertEquals(0, s.count(), "nothing written through the symlink");
        }
    }

    @Test
    void symlinksPointingOutsideAreKeptAsLinksAndNeverFollowed() throws IOException {
        Path victim = Files.writeString(tmp.resolve("victim"), "host");
        byte[] upload = new Archives().symlink("folder/abs", victim.toString()).symlink("folder/rel", "../../../../../../etc/shadow")
                .symlink("folder/dangling", "/nope").gz();
        List<String> tree = copy(upload, "folder", "/f", "", "0777");
        assertTrue(tree.contains("/f/abs l 1000:1000 -> " + victim), tree.toString());
        assertTrue(tree.contains("/f/rel l 1000:1000 -> ../../../../../../etc/shadow"), tree.toString());
        assertEquals(0, (Integer) Files.getAttribute(victim, "unix:uid"), "the target's owner is untouched");
        assertEquals("host", Files.readString(victim));
        LayerWriter.remove(layer());
        refused(Code.BAD_SYMLINK, Archives.handMade().symlink("folder/e", "").gz(), "folder", "/f", "", "");
    }

    @Test
    void hardLinksOutsideTheCopyOrThroughASymlinkAreRefused() throws IOException {
        refused(Code.BAD_HARD_LINK, new Archives().hardLink("folder/h", "etc/passwd").gz(), "folder", "/f", "", "");
        refused(Code.BAD_HARD_LINK, new Archives().symlink("folder/l", "/etc").hardLink("folder/h", "folder/l/passwd").gz(), "folder", "/f", "", "");
        refused(Code.BAD_HARD_LINK, new Archives().dir("folder/d/", 0755).hardLink("folder/h", "folder/d").gz(), "folder", "/f", "", "");
        refused(Code.BAD_HARD_LINK, new Archives().symlink("folder/s", "/etc/passwd").hardLink("folder/h", "folder/s").gz(), "folder", "/f", "", "");
        // a file of the upload outside the copied source
        refused(Code.BAD_HARD_LINK, new Archives().file("other/a", 0644, "a").hardLink("folder/h", "other/a").gz(), "folder", "/f", "", "");
    }

    @Test
    void devicesFifosSparseAndUnknownTypesAreRefusedByName() throws IOException {
        Map<Byte, String> kinds = Map.of(TarArchiveEntry.LF_CHR, "a character device", TarArchiveEntry.LF_BLK, "a block device",
                TarArchiveEntry.LF_FIFO, "a fifo", TarArchiveEntry.LF_GNUTYPE_SPARSE, "a sparse file", (byte) 'Z', "of tar type 'Z'");
        for (var k : kinds.entrySet()) {
            byte[] upload = Archives.handMade().dir("folder/", 0755).special("folder/dev", k.getKey()).gz();
            String m = refused(Code.UNSUPPORTED_TYPE, upload, "folder", "/f", "", "").getMessage();
            assertTrue(m.contains("'folder/dev'") && m.contains(k.getValue()), m);
        }
    }

    @Test
    void setuidAndSetgidAreClearedUnlessTheOperatorAllowsThem() throws IOException {
        byte[] upload = new Archives().file("folder/su", 04755, "x").file("folder/sg", 02755, "x").dir("folder/t/", 01777).gz();
        List<String> tree = copy(upload, "folder", "/f", "", "");
        assertTrue(tree.containsAll(List.of("/f/su f 1000:1000 0755 1", "/f/sg f 1000:1000 0755 1", "/f/t d 1000:1000 1777")), tree.toString());
        LayerWriter.remove(layer());
        assertTrue(copy(upload, "folder", "/f", "", "4755").contains("/f/su f 1000:1000 0755 1"));
        LayerWriter.remove(layer());
        CopyToLayer allowing = new CopyToLayer(8 * MiB, 1000, true);
        tree = copy(allowing, upload, BuildContext.ofUser(), HOME, "folder", "/f", "", "");
        assertTrue(tree.containsAll(List.of("/f/su f 1000:1000 4755 1", "/f/sg f 1000:1000 2755 1")), tree.toString());
    }

    @Test
    void aRepeatedNameIsRefused() throws IOException {
        refused(Code.DUPLICATE_ENTRY, new Archives().file("folder/a", 0644, "1").file("folder/a", 0644, "2").gz(), "folder", "/f", "", "");
        refused(Code.DUPLICATE_ENTRY, new Archives().dir("folder/a/", 0755).file("folder/a", 0644, "2").gz(), "folder", "/f", "", "");
        refused(Code.DUPLICATE_ENTRY, new Archives().dir("folder/a/", 0755).dir("folder/a/", 0700).gz(), "folder", "/f", "", "");
        refused(Code.DUPLICATE_ENTRY, new Archives().file("a.txt", 0644, "1").file("a.txt", 0644, "2").gz(), "a.txt", "/f", "", "");
    }

    @Test
    void sizeAndEntryLimitsAndAGzipBombStopAtTheLimit() throws IOException {
        CopyToLayer small = new CopyToLayer(MiB, 3, false);
        refused(Code.TOO_LARGE, small, new Archives().zeros("folder/big", 2 * MiB).gz(), "folder", "/f", "", "");
        refused(Code.TOO_MANY_ENTRIES, small, new Archives().file("folder/1", 0644, "").file("folder/2", 0644, "")
                .file("folder/3", 0644, "").file("folder/4", 0644, "").gz(), "folder", "/f", "", "");
        // a bomb: 64 MiB of zeros in ~64 KiB, outside the copied source (skipped, still counted)
        byte[] bomb = new Archives().zeros("other/zeros", 64 * MiB).gz();
        assertTrue(bomb.length < 200_000, "the bomb is small: " + bomb.length);
        refused(Code.TOO_LARGE, small, bomb, "folder", "/f", "", "");
        // headers are read into memory: one entry's PAX records get 1 MiB, whatever the archive's limit
        String m = refused(Code.TOO_LARGE, Archives.handMade().pax("path", "folder/" + "n/".repeat(600_000) + "x")
                .file("folder/x", 0644, "x").gz(), "folder", "/f", "", "").getMessage();
        assertTrue(m.contains("headers"), m);
        // zeros past the end-of-archive blocks are never inflated, so they do not count
        byte[] padded = Archives.gzip(concat(Archives.handMade().file("folder/a", 0644, new byte[0]).tar(), new byte[(int) (2 * MiB)]));
        assertEquals(List.of("/ d 0:0 0755", "/home d 0:0 0755", "/home/user d 1000:1000 0750", "/home/user/f d 1000:1000 0755",
                "/home/user/f/a f 1000:1000 0644 0"), copy(small, padded, BuildContext.ofUser(), HOME, "folder", "f", "", ""));
    }

    @Test
    void anExistingLayerDirectoryIsNeitherWrittenNorRemoved() throws IOException {
        Files.createDirectory(layer());
        CopyRefused e = assertThrows(CopyRefused.class, () -> COPY.apply(CopyStep.of(List.of("a", "/a")), BuildContext.ofUser(),
                new ByteArrayInputStream(new Archives().file("a", 0644, "a").gz()), layer(), HOME));
        assertEquals(Code.WRITE_FAILED, e.code());
        assertTrue(Files.isDirectory(layer()));
    }

    @Test
    void badArgumentsOwnersSourcesAndArchives() throws IOException {
        byte[] upload = new Archives().file("folder/a", 0644, "a").gz();
        refused(Code.UNKNOWN_OWNER, upload, "folder", "/f", "mallory", "");
        refused(Code.UNKNOWN_OWNER, upload, "folder", "/f", "user:65536", "");
        refused(Code.BAD_ARGUMENTS, upload, "folder", "/f", "", "u+x");
        refused(Code.SOURCE_NOT_FOUND, upload, "missing/*", "/f", "", "");
        refused(Code.MALFORMED_ARCHIVE, "not a tar at all, just text that is long enough to be read as a header".repeat(10).getBytes(), "folder", "/f", "", "");
        assertThrows(CopyRefused.class, () -> CopyStep.of(List.of("only-src")));
        assertTrue(copy(upload, "folder", "/f", "1234:55", "").contains("/f/a f 1234:55 0644 1"));
    }

    private static byte[] concat(byte[] a, byte[] b) {
        byte[] c = new byte[a.length + b.length];
        System.arraycopy(a, 0, c, 0, a.length);
        System.arraycopy(b, 0, c, a.length, b.length);
        return c;
    }
}
