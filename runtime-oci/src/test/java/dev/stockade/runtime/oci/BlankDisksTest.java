package dev.stockade.runtime.oci;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Sandbox disks copied from a blank made once per size ({@link BlankDisks}), against the real host's
 * e2fsprogs, loop devices and ext4: each copy is a sound, sparse filesystem with ids of its own that
 * mounts and grows; the blanks are bounded in number; an unusable blank falls back to mkfs.
 */
class BlankDisksTest {
    @TempDir
    Path tmp;

    @BeforeEach
    void needsLoopDisks() {
        assumeTrue(LoopDisk.unavailable() == null, "no loop disks here: " + LoopDisk.unavailable());
    }

    /** ext4's superblock checksum is the complement of java.util.zip.CRC32C's value, as mke2fs writes it. */
    @Test
    void theSuperblockChecksumConventionIsMkfss() throws Exception {
        Path image = tmp.resolve("mkfs.img");
        LoopDisk.mkfs(image, 64);
        byte[] sb = new byte[BlankDisks.SB_SIZE];
        try (FileChannel c = FileChannel.open(image)) {
            c.read(ByteBuffer.wrap(sb), BlankDisks.SUPERBLOCK);
        }
        assertEquals(ByteBuffer.wrap(sb).order(ByteOrder.LITTLE_ENDIAN).getInt(BlankDisks.S_CHECKSUM), BlankDisks.checksum(sb));
    }

    /**
     * Two copies of one blank pass e2fsck, differ from each other and from the blank in UUID and hash
     * seed (the backup superblocks too), keep the
     * checksum seed, and stay sparse: a 1 GiB copy allocates what the blank holds (~600 KiB), not GiBs.
     */
    @Test
    void copiesAreSoundSparseAndHaveIdsOfTheirOwn() throws Exception {
        BlankDisks blanks = new BlankDisks(tmp.resolve("disks"));
        Path a = tmp.resolve("a.img"), b = tmp.resolve("b.img");
        assertTrue(blanks.copyTo(a, 1024));
        assertTrue(blanks.copyTo(b, 1024));
        Path blank = tmp.resolve("disks").resolve(BlankDisks.fileName(1024));
        assertTrue(Files.isRegularFile(blank), "the blank is kept under its size's name");

        for (Path p : List.of(a, b)) {
            assertEquals(1L << 30, Files.size(p));
            assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(p)));
            long allocated = Long.parseLong(run("stat", "-c", "%b", p.toString()).strip()) * 512;
            assertTrue(allocated < 4L << 20, p + " allocates " + allocated + " bytes: the copy is not sparse");
            run("e2fsck", "-fn", p.toString());
        }
        var ia = header(a);
        var ib = header(b);
        var iBlank = header(blank);
        for (String field : List.of("Filesystem UUID", "Directory Hash Seed")) {
            assertNotEquals(ia.get(field), ib.get(field), field);
            assertNotEquals(iBlank.get(field), ia.get(field), field);
        }
        assertEquals(iBlank.get("Checksum seed"), ia.get("Checksum seed"), "metadata_csum_seed keeps the checksums valid");
        assertEquals(ia.get("Filesystem UUID"), backupUuid(a), "the backup superblock has the copy's UUID");
    }

    /** A copied disk is what LoopDisk mounts: written to, then unmounted (the loop device goes with it). */
    @Test
    void aCopiedDiskMountsAndTakesFiles() throws Exception {
        mountCheckAndUnmount(64, new BlankDisks(tmp.resolve("disks")), layout -> {
            String device = LoopDisk.mountSource(layout.disk());
            assertTrue(device != null && device.startsWith("/dev/loop"), "mounted from " + device);
            Files.write(layout.disk().resolve("f"), new byte[1 << 20]);
            var usage = LoopDisk.usage(layout);
            assertEquals(4096, usage.totalInodes(), "one inode per 16 KiB, as mkfs made it");
            assertTrue(usage.usedBytes() >= 1 << 20, usage.toString());
        });
    }

    private interface MountedCheck {
        void check(BundleLayout layout) throws Exception;
    }

    /** LoopDisk.create of a disk of {@code diskMB}, {@code check} on it, then unmounted (autoclear frees the loop device) and fsck'd. */
    private void mountCheckAndUnmount(int diskMB, BlankDisks blanks, MountedCheck check) throws Exception {
        BundleLayout layout = new BundleLayout(tmp.resolve("state"));
        Files.createDirectories(layout.disk());
        LoopDisk.create(layout, diskMB, blanks);
        try {
            check.check(layout);
        } finally {
            assertEquals(0, Libc.umount2(layout.disk().toString(), 0));
        }
        run("e2fsck", "-fn", layout.image().toString());
    }

    /**
     * resize2fs grows a copy (LoopDisk.resize grows a mounted disk with it online; this host lacks the
     * CAP_SYS_RESOURCE that needs, so the copy is grown unmounted) and the result is sound.
     */
    @Test
    void aCopyGrowsWithResize2fs() throws Exception {
        Path image = tmp.resolve("grow.img");
        assertTrue(new BlankDisks(tmp.resolve("disks")).copyTo(image, 64));
        try (var f = new java.io.RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(256L << 20);
        }
        run("resize2fs", image.toString());
        run("e2fsck", "-fn", image.toString());
        assertEquals(String.valueOf(256 * 256), header(image).get("Block count"));
    }

    /** Starts that ask for a new size at once share one blank, made once; no temporary file is left. */
    @Test
    void concurrentStartsMakeOneBlank() throws Exception {
        BlankDisks blanks = new BlankDisks(tmp.resolve("disks"));
        List<Path> images = java.util.stream.IntStream.range(0, 4).mapToObj(i -> tmp.resolve("c" + i + ".img")).toList();
        try (var pool = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
            var copied = pool.invokeAll(images.stream()
                    .<java.util.concurrent.Callable<Boolean>>map(p -> () -> blanks.copyTo(p, 48)).toList());
            for (var f : copied) assertTrue(f.get());
        }
        try (var files = Files.list(tmp.resolve("disks"))) {
            assertEquals(List.of(BlankDisks.fileName(48)), files.map(p -> p.getFileName().toString()).toList());
        }
        Set<String> uuids = new java.util.HashSet<>();
        for (Path p : images) {
            run("e2fsck", "-fn", p.toString());
            uuids.add(header(p).get("Filesystem UUID"));
        }
        assertEquals(4, uuids.size(), "each copy has its own UUID");
    }

    /**
     * Only {@link BlankDisks#KEPT} sizes stay on disk, the least recently used going first, also across
     * a restart (the next run takes the earlier run's blanks over before it makes one).
     */
    @Test
    void blanksAreBoundedInNumber() throws Exception {
        BlankDisks blanks = new BlankDisks(tmp.resolve("disks"));
        for (int i = 0; i <= BlankDisks.KEPT; i++) {
            Path image = tmp.resolve("d" + i + ".img");
            assertTrue(blanks.copyTo(image, 16 + i));
            Files.delete(image);
        }
        Set<String> kept;
        try (var files = Files.list(tmp.resolve("disks"))) {
            kept = files.map(p -> p.getFileName().toString()).collect(Collectors.toSet());
        }
        assertEquals(BlankDisks.KEPT, kept.size(), kept.toString());
        assertFalse(kept.contains(BlankDisks.fileName(16)), "the least recently used size went: " + kept);

        assertTrue(new BlankDisks(tmp.resolve("disks")).copyTo(tmp.resolve("next-run.img"), 64));
        try (var files = Files.list(tmp.resolve("disks"))) {
            kept = files.map(p -> p.getFileName().toString()).collect(Collectors.toSet());
        }
        assertEquals(BlankDisks.KEPT, kept.size(), kept.toString());
        assertTrue(kept.contains(BlankDisks.fileName(64)), kept.toString());
    }

    /**
     * A blank that cannot be made (its directory is a regular file) costs no sandbox its disk: the
     * copy says no, leaves nothing, and LoopDisk runs mkfs for the sandbox as before.
     */
    @Test
    void anUnusableBlankFallsBackToMkfs() throws Exception {
        Path notADir = Files.writeString(tmp.resolve("disks"), "in the way");
        BlankDisks blanks = new BlankDisks(notADir);
        assertFalse(blanks.copyTo(tmp.resolve("x.img"), 16));
        assertFalse(Files.exists(tmp.resolve("x.img")), "a failed copy leaves nothing");

        mountCheckAndUnmount(16, blanks, layout -> assertEquals(1024, LoopDisk.usage(layout).totalInodes()));
    }

    /**
     * A blank left by an earlier run is used as it is; a damaged one is made again; blanks of other
     * option versions and a crashed run's temporary files go, another start's fresh temporary file stays.
     */
    @Test
    void aBlankFromAnEarlierRunIsReusedAndADamagedOneRemade() throws Exception {
        Path dir = tmp.resolve("disks");
        assertTrue(new BlankDisks(dir).copyTo(tmp.resolve("a.img"), 32));
        Path blank = dir.resolve(BlankDisks.fileName(32));
        String uuid = header(blank).get("Filesystem UUID");
        Path otherVersion = Files.copy(blank, dir.resolve("ext4-v0-32m.img"));
        Path crashed = Files.writeString(dir.resolve(BlankDisks.fileName(48) + ".tmp-crashed"), "");
        Files.setLastModifiedTime(crashed, java.nio.file.attribute.FileTime.fromMillis(System.currentTimeMillis() - 120_000));
        Path starting = Files.writeString(dir.resolve(BlankDisks.fileName(48) + ".tmp-starting"), "");
        assertTrue(new BlankDisks(dir).copyTo(tmp.resolve("b.img"), 32));
        assertEquals(uuid, header(blank).get("Filesystem UUID"), "the earlier run's blank was reused");
        assertFalse(Files.exists(otherVersion));
        assertFalse(Files.exists(crashed));
        assertTrue(Files.exists(starting));

        try (FileChannel c = FileChannel.open(blank, java.nio.file.StandardOpenOption.WRITE)) {
            c.write(ByteBuffer.wrap(new byte[16]), BlankDisks.SUPERBLOCK + BlankDisks.S_UUID); // checksum now wrong
        }
        Path c = tmp.resolve("c.img");
        assertTrue(new BlankDisks(dir).copyTo(c, 32));
        assertNotEquals(uuid, header(blank).get("Filesystem UUID"), "the damaged blank was made again");
        run("e2fsck", "-fn", c.toString());
    }

    /** A blank deleted under a running server costs one start a mkfs; the next start makes it again. */
    @Test
    void aBlankDeletedBehindItsBackIsMadeAgain() throws Exception {
        BlankDisks blanks = new BlankDisks(tmp.resolve("disks"));
        assertTrue(blanks.copyTo(tmp.resolve("a.img"), 16));
        Files.delete(tmp.resolve("disks").resolve(BlankDisks.fileName(16)));
        assertFalse(blanks.copyTo(tmp.resolve("b.img"), 16));
        assertFalse(Files.exists(tmp.resolve("b.img")), "a failed copy leaves nothing");
        assertTrue(blanks.copyTo(tmp.resolve("c.img"), 16));
        assertTrue(Files.isRegularFile(tmp.resolve("disks").resolve(BlankDisks.fileName(16))));
        run("e2fsck", "-fn", tmp.resolve("c.img").toString());
    }

    private static java.util.Map<String, String> header(Path image) {
        java.util.Map<String, String> fields = new java.util.HashMap<>();
        for (String line : run("dumpe2fs", "-h", image.toString()).lines().toList()) {
            int colon = line.indexOf(':');
            if (colon > 0) fields.put(line.substring(0, colon).strip(), line.substring(colon + 1).strip());
        }
        return fields;
    }

    /** The UUID in the superblock backup of group 1, as dumpe2fs reads it from there. */
    private static String backupUuid(Path image) {
        for (String line : run("dumpe2fs", "-h", "-o", "superblock=32768", "-o", "blocksize=4096", image.toString()).lines().toList()) {
            if (line.startsWith("Filesystem UUID:")) return line.substring(line.indexOf(':') + 1).strip();
        }
        return null;
    }

    private static String run(String... argv) {
        HostCommand.Result r = HostCommand.run(List.of(argv), Duration.ofSeconds(30));
        assertEquals(0, r.exitCode(), String.join(" ", argv) + ": " + r.output());
        return r.output();
    }
}
