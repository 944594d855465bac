package dev.stockade.runtime.oci;

import dev.stockade.runtime.RuntimeFailure;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;

/**
 * A sandbox's writable storage ({@code STATE/disk}) as a filesystem of its own: ext4 in a sparse
 * image file ({@code STATE/disk.img}) on a loop device. Its size is the disk quota and its inode
 * count the file quota, so a writer that fills either gets ENOSPC and the sandbox lives on; the
 * pages are the host's page cache of one file, not memory charged to the sandbox (the tmpfs this
 * replaces made a full disk an out-of-memory kill). Why each choice (no journal, direct I/O,
 * autoclear, discard, the ballast) is in ARCHITECTURE.md "The sandbox's disk".
 *
 * <p>Called by {@link OciRuntime} under the sandbox's lock (start, the limits' update) and, for
 * {@link #usage}, from the server's metrics sampler thread and request threads (it only reads).
 */
final class LoopDisk {
    /** ext4's own default ratio: one inode per 16 KiB of disk (65 536 per GiB). */
    static final int BYTES_PER_INODE = 16384;
    private static final Duration MKFS_TIMEOUT = Duration.ofSeconds(30);
    private static final long LOOP_CTL_GET_FREE = 0x4C82, LOOP_CONFIGURE = 0x4C0A, LOOP_SET_CAPACITY = 0x4C07;
    private static final int LO_FLAGS_AUTOCLEAR = 4, LO_FLAGS_DIRECT_IO = 16;
    private static final int EBUSY = 16, ENOSPC = 28;

    private LoopDisk() {}

    /** What the sandbox's disk holds and may hold; the ballast of a shrunk quota counts as neither. */
    record Usage(long usedBytes, long totalBytes, long usedInodes, long totalInodes) {}

    /** Null when this host can give sandboxes loop-mounted disks, or why it cannot (one sentence, with the fix). */
    static String unavailable() {
        try {
            if (!Files.readString(Path.of("/proc/filesystems")).contains("\text4\n")) {
                return "the kernel has no ext4 filesystem (/proc/filesystems)";
            }
            Libc.close(Libc.open("/dev/loop-control", Libc.O_RDWR | Libc.O_CLOEXEC));
        } catch (IOException | RuntimeException e) {
            return "loop devices are not usable (" + e.getMessage() + "); load the loop module (`modprobe loop`)"
                    + " or, in a container, give it /dev/loop-control and the loop devices";
        }
        HostCommand.Result mkfs = HostCommand.run(List.of("mkfs.ext4", "-V"), MKFS_TIMEOUT);
        if (!mkfs.ok()) return "mkfs.ext4 does not run (" + mkfs.output().strip() + "); install e2fsprogs";
        return null;
    }

    /**
     * Makes the sandbox's disk and mounts it at {@code layout.disk()} (which must exist), nosuid and
     * nodev, its root directory mode 0711: a copy of the blank of its size from {@code blanks}, or, if
     * that fails, a mkfs of its own. The caller unmounts it if a later step fails; the image goes with
     * the state directory.
     */
    static void create(BundleLayout layout, int diskMB, BlankDisks blanks) throws IOException {
        Path image = layout.image();
        if (!blanks.copyTo(image, diskMB)) mkfs(image, diskMB);
        Attached loop = attach(image);
        try {
            // discard: blocks freed inside return to the host (holes in the image); noinit_itable:
            // the kernel does not zero the unused inode tables in the background (the image stays sparse).
            Libc.mount(loop.device(), layout.disk().toString(), "ext4", Libc.MS_NOSUID | Libc.MS_NODEV,
                    "discard,noinit_itable");
        } finally {
            // Kept open until the mount holds the device: with autoclear, the last close of an
            // unmounted device detaches it (so a failed mount leaves no device behind either).
            Libc.close(loop.fd());
        }
        Files.setPosixFilePermissions(layout.disk(), PosixFilePermissions.fromString("rwx--x--x"));
    }

    /**
     * mkfs.ext4's options for every sandbox disk and blank ({@link BlankDisks}; bump its VERSION when
     * they change). -b, -I and -i pinned: mke2fs's "small" profile would pick 1 KiB blocks, 128-byte
     * inodes and four times the inodes below 512 MiB. -g: full-size groups, so that a grown disk keeps
     * the ratio. No journal, no reserved blocks (nobody inside is the host's root). ea_inode: extended
     * attribute values up to 64 KiB, as the tmpfs before took (an attribute is otherwise one block).
     * metadata_csum_seed: the metadata checksums do not depend on the UUID, so a copy of a blank gets
     * a UUID of its own by rewriting its superblocks alone.
     */
    static final List<String> MKFS_OPTIONS = List.of("-q", "-F", "-b", "4096", "-I", "256",
            "-i", Integer.toString(BYTES_PER_INODE), "-g", "32768", "-m", "0", "-O", "^has_journal,ea_inode,metadata_csum_seed",
            "-E", "lazy_itable_init=1,nodiscard,root_owner=0:0");

    /** Makes a fresh filesystem of {@code diskMB} in a sparse file at {@code image}, mode 0600 (created if absent). */
    static void mkfs(Path image, int diskMB) throws IOException {
        if (!Files.exists(image)) {
            Files.createFile(image, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        }
        try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
            f.setLength(diskMB * 1024L * 1024L); // sparse: host disk is used as the sandbox writes
        }
        List<String> argv = new java.util.ArrayList<>(List.of("mkfs.ext4"));
        argv.addAll(MKFS_OPTIONS);
        argv.add(image.toString());
        HostCommand.Result r = HostCommand.run(argv, MKFS_TIMEOUT);
        if (!r.ok()) {
            throw new RuntimeFailure(RuntimeFailure.Code.START_FAILED, "making the sandbox's " + diskMB
                    + " MiB disk failed (mkfs.ext4 exit " + r.exitCode() + "): " + r.output().strip());
        }
    }

    /** A loop device configured onto an image, and our open descriptor of it. */
    private record Attached(int fd, String device) {}

    /**
     * A free loop device configured onto {@code image}. Two sandboxes starting at once may be told
     * the same free device; the second's LOOP_CONFIGURE fails with EBUSY and it asks again.
     */
    private static Attached attach(Path image) {
        int imageFd = Libc.open(image.toString(), Libc.O_RDWR | Libc.O_CLOEXEC);
        try {
            int ctl = Libc.open("/dev/loop-control", Libc.O_RDWR | Libc.O_CLOEXEC);
            try {
                for (int attempt = 0; attempt < 64; attempt++) {
                    int n = Libc.ioctl(ctl, LOOP_CTL_GET_FREE, 0L);
                    if (n < 0) {
                        throw new RuntimeFailure(RuntimeFailure.Code.EXHAUSTED, "no free loop device for the sandbox's disk: "
                                + Libc.strerror(-n) + "; check /dev/loop-control and the loop module's max_loop");
                    }
                    String device = "/dev/loop" + n;
                    int fd = Libc.open(device, Libc.O_RDWR | Libc.O_CLOEXEC);
                    int rc = configure(fd, imageFd, image);
                    if (rc == 0) return new Attached(fd, device);
                    Libc.close(fd);
                    if (rc != -EBUSY) {
                        throw new RuntimeFailure(RuntimeFailure.Code.START_FAILED, "attaching the sandbox's disk to "
                                + device + " failed: " + Libc.strerror(-rc));
                    }
                }
                throw new RuntimeFailure(RuntimeFailure.Code.EXHAUSTED, "no loop device stayed free for the sandbox's disk");
            } finally {
                Libc.close(ctl);
            }
        } finally {
            Libc.close(imageFd); // the loop device holds the file itself
        }
    }

    /** LOOP_CONFIGURE of loop device {@code fd} onto the image: autoclear, direct I/O. 0 or -errno. */
    private static int configure(int fd, int imageFd, Path image) {
        try (Arena arena = Arena.ofConfined()) {
            // struct loop_config { u32 fd; u32 block_size; struct loop_info64 info; u64 reserved[8]; }
            // loop_info64: lo_flags at 52, lo_file_name[64] at 56; 232 bytes in all.
            MemorySegment cfg = arena.allocate(304, 8);
            cfg.set(ValueLayout.JAVA_INT, 0, imageFd);
            cfg.set(ValueLayout.JAVA_INT, 8 + 52, LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO);
            byte[] name = image.toString().getBytes(StandardCharsets.UTF_8);
            MemorySegment.copy(name, 0, cfg, ValueLayout.JAVA_BYTE, 8 + 56, Math.min(name.length, 63));
            return Libc.ioctl(fd, LOOP_CONFIGURE, cfg);
        }
    }

    /**
     * Sets the disk quota of a running sandbox to {@code diskMB}. Within the image's size, a ballast
     * file ({@link BundleLayout#ballast}, outside what the sandbox sees) takes the difference: a
     * smaller quota grows it (refused when the sandbox's files do not leave that much free), a
     * larger one shrinks it. Past the image, the image and the filesystem grow online (resize2fs,
     * which needs CAP_SYS_RESOURCE). ext4 cannot shrink while mounted, hence the ballast.
     */
    static void resize(BundleLayout layout, String id, int diskMB) {
        long want = diskMB * 1024L * 1024L;
        Path ballast = layout.ballast();
        try {
            long image = Files.size(layout.image());
            if (want >= image) {
                Files.deleteIfExists(ballast);
                if (want > image) grow(layout, want);
                return;
            }
            // The filesystem's own metadata (inode tables, bitmaps) is not in its statvfs size: leave the
            // share a fresh disk of diskMB would have, so both show about the same total.
            Libc.FsStat s = Libc.statvfs(layout.disk().toString());
            long fsBytes = s.blocks() * s.blockSize();
            long target = fsBytes - Math.round((double) want * fsBytes / image);
            long held = Files.exists(ballast) ? Files.size(ballast) : 0;
            if (target > held) {
                int fd = Libc.open(ballast.toString(), Libc.O_RDWR | Libc.O_CLOEXEC | Libc.O_CREAT);
                try {
                    int errno = Libc.fallocate(fd, 0, target);
                    if (errno == ENOSPC) {
                        Usage u = usage(layout);
                        throw new RuntimeFailure(RuntimeFailure.Code.EXHAUSTED, "the disk quota of sandbox " + id
                                + " cannot shrink to " + diskMB + " MiB: its files use " + u.usedBytes() / (1024 * 1024)
                                + " MiB of it");
                    }
                    if (errno != 0) throw new IOException("fallocate: " + Libc.strerror(errno));
                } finally {
                    Libc.close(fd);
                }
            } else if (target < held) {
                try (RandomAccessFile f = new RandomAccessFile(ballast.toFile(), "rw")) {
                    f.setLength(target); // frees the blocks past it
                }
            }
        } catch (IOException | Libc.LibcException e) {
            throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "changing the disk quota of sandbox " + id
                    + " failed: " + e.getMessage());
        }
    }

    private static void grow(BundleLayout layout, long bytes) throws IOException {
        String device = mountSource(layout.disk());
        if (device == null || !device.startsWith("/dev/loop")) {
            throw new IOException("its disk is not mounted from a loop device");
        }
        try (RandomAccessFile f = new RandomAccessFile(layout.image().toFile(), "rw")) {
            f.setLength(bytes);
        }
        int fd = Libc.open(device, Libc.O_RDWR | Libc.O_CLOEXEC);
        try {
            int rc = Libc.ioctl(fd, LOOP_SET_CAPACITY, 0L);
            if (rc < 0) throw new IOException("LOOP_SET_CAPACITY: " + Libc.strerror(-rc));
        } finally {
            Libc.close(fd);
        }
        HostCommand.Result r = HostCommand.run(List.of("resize2fs", device), MKFS_TIMEOUT);
        if (!r.ok()) {
            throw new IOException("resize2fs (exit " + r.exitCode() + "): " + r.output().strip()
                    + (r.output().contains("Permission denied") ? " (growing a mounted ext4 needs CAP_SYS_RESOURCE)" : ""));
        }
    }

    /** The source (device) of the mount at {@code p}, from /proc/self/mountinfo; null when nothing is mounted there. */
    static String mountSource(Path p) {
        String want = p.toAbsolutePath().normalize().toString();
        try {
            String source = null;
            for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
                String[] f = line.split(" ");
                int dash = java.util.Arrays.asList(f).indexOf("-");
                if (f.length > 4 && OciRuntime.unescape(f[4]).equals(want) && dash > 0 && dash + 2 < f.length) {
                    source = OciRuntime.unescape(f[dash + 2]); // the last one mounted there is the one seen
                }
            }
            return source;
        } catch (IOException e) {
            throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "cannot read /proc/self/mountinfo: " + e.getMessage());
        }
    }

    /**
     * Bytes and inodes of the sandbox's disk, from statvfs: a loop disk's or the tmpfs fallback's
     * (OciRuntime). The total of a loop disk is its quota (the image less the ballast's share), and
     * what is used is the total less what may still be written, so the filesystem's own metadata
     * counts as used, as in a VM's disk; a tmpfs's total is its size.
     */
    static Usage usage(BundleLayout layout) {
        Libc.FsStat s = Libc.statvfs(layout.disk().toString());
        long fsBytes = s.blocks() * s.blockSize();
        long total = fsBytes;
        try {
            if (Files.exists(layout.image()) && fsBytes > 0) {
                long image = Files.size(layout.image());
                long ballast = Files.exists(layout.ballast()) ? Files.size(layout.ballast()) : 0;
                total = image - Math.round((double) ballast * image / fsBytes);
            }
        } catch (IOException e) {
            // the sandbox is going away: the filesystem's own size will do
        }
        long used = total - s.availableBlocks() * s.blockSize();
        return new Usage(Math.max(0, used), Math.max(0, total), Math.max(0, s.inodes() - s.freeInodes()), s.inodes());
    }
}
