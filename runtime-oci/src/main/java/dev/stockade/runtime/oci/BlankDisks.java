package dev.stockade.runtime.oci;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.UUID;
import java.util.zip.CRC32C;

/**
 * Blank ext4 filesystems, one per disk size, made once by mkfs.ext4 ({@link LoopDisk#mkfs}) and kept
 * as sparse files in {@code STATE_ROOT/templates/disks/}. A sandbox's image is a copy of its size's
 * blank, of the blank's data extents only (a few hundred KiB; the rest stays holes, so the copy is as
 * sparse as a fresh mkfs), given a UUID and a directory hash seed of its own: running mkfs for every
 * start cost ~9 ms of CPU on the create path and on every pool refill (docs/BENCHMARKS.md). Why the
 * blank has metadata_csum_seed and why the ids are drawn again: ARCHITECTURE.md "The sandbox's disk".
 *
 * <p>Called by {@link LoopDisk#create} on the starting sandbox's thread, for several sandboxes at
 * once. Blanks are made one at a time (under {@code making}), written to a temporary file that is
 * renamed into place, and never written again, so a crash leaves either no blank or a whole one.
 */
final class BlankDisks {
    /** Bump when {@link LoopDisk#MKFS_OPTIONS} change, so that existing data directories make new blanks. */
    static final String VERSION = "1";
    /** Sizes kept: sizes are the callers' to choose, so the directory must not grow with them. */
    static final int KEPT = 8;
    /** A blank that failed is not tried again for this long (each try costs a mkfs on top of the fallback's). */
    private static final Duration RETRY = Duration.ofMinutes(1);
    private static final System.Logger LOG = System.getLogger(BlankDisks.class.getName());
    private static final SecureRandom RANDOM = new SecureRandom();

    // ext4's superblock (fs/ext4/ext4.h): at byte 1024 of the image, 1024 bytes, little-endian.
    static final int SUPERBLOCK = 1024, SB_SIZE = 1024;
    static final int S_BLOCKS_COUNT_LO = 0x04, S_FIRST_DATA_BLOCK = 0x14, S_LOG_BLOCK_SIZE = 0x18,
            S_BLOCKS_PER_GROUP = 0x20, S_MAGIC = 0x38, S_FEATURE_COMPAT = 0x5C, S_FEATURE_INCOMPAT = 0x60,
            S_FEATURE_RO_COMPAT = 0x64, S_UUID = 0x68, S_HASH_SEED = 0xEC, S_BLOCKS_COUNT_HI = 0x150,
            S_BACKUP_BGS = 0x24C, S_CHECKSUM = 0x3FC;
    private static final int EXT4_MAGIC = 0xEF53;
    private static final int COMPAT_SPARSE_SUPER2 = 0x200, INCOMPAT_64BIT = 0x80, INCOMPAT_CSUM_SEED = 0x2000,
            RO_COMPAT_SPARSE_SUPER = 0x1, RO_COMPAT_METADATA_CSUM = 0x400;

    private final Path dir;
    private final Object making = new Object();
    /** Usable blanks by size, least recently used first; guarded by itself. */
    private final LinkedHashMap<Integer, Blank> blanks = new LinkedHashMap<>(16, 0.75f, true);
    /** Whether making a blank failed, and the System.nanoTime() before which none is tried again; guarded by making. */
    private boolean failed;
    private long retryAfter;
    /** Whether the last failure has been logged: once per outage, not once per sandbox. */
    private volatile boolean told;
    private boolean swept; // guarded by making

    /** A blank image, its size, and the byte ranges of it that hold data (the rest are holes). */
    record Blank(Path file, long size, List<Extent> extents) {
        Blank {
            extents = List.copyOf(extents);
        }
    }

    record Extent(long offset, long length) {}

    BlankDisks(Path dir) {
        this.dir = dir;
    }

    /** The blank's file name: its size and the version of the options it was made with. */
    static String fileName(int diskMB) {
        return "ext4-v" + VERSION + "-" + diskMB + "m.img";
    }

    /**
     * Writes a fresh filesystem of {@code diskMB} into {@code image} (which must not exist), copied
     * from the blank of that size (made first if need be). False when there is no usable blank or the
     * copy failed: then nothing is left at {@code image}, the reason is logged (once until a copy
     * works again), and the caller runs mkfs itself.
     */
    boolean copyTo(Path image, int diskMB) {
        Blank blank = null;
        try {
            blank = blank(diskMB);
            copy(blank, image);
            if (told) {
                told = false;
                LOG.log(System.Logger.Level.INFO, "sandbox disks are copied from blank images again (" + dir + ")");
            }
            return true;
        } catch (IOException | RuntimeException e) {
            if (blank != null) forget(diskMB, blank); // the next start looks at its file again
            if (!told) {
                told = true;
                LOG.log(System.Logger.Level.WARNING, "sandbox disks are made by mkfs.ext4 for each sandbox (milliseconds of"
                        + " CPU per start) instead of copied from a blank image in " + dir + ": "
                        + (e instanceof FileSystemException ? e.toString() : e.getMessage()));
            }
            return false;
        }
    }

    /** The usable blank of {@code diskMB}, made now if there is none. */
    Blank blank(int diskMB) throws IOException {
        synchronized (blanks) {
            Blank b = blanks.get(diskMB);
            if (b != null) return b;
        }
        synchronized (making) {
            synchronized (blanks) {
                Blank b = blanks.get(diskMB);
                if (b != null) return b;
            }
            if (failed && System.nanoTime() - retryAfter < 0) {
                throw new IOException("making a blank failed less than " + RETRY.toSeconds() + " s ago");
            }
            try {
                if (!swept && Files.isDirectory(dir)) sweep();
                swept = true;
                synchronized (blanks) {
                    Blank b = blanks.get(diskMB); // an earlier run's, just taken over
                    if (b != null) return b;
                }
                Path file = dir.resolve(fileName(diskMB));
                Files.deleteIfExists(file); // unusable: the sweep or a failed copy let it go
                Blank b = inspect(make(file, diskMB), diskMB);
                keep(diskMB, b);
                failed = false;
                return b;
            } catch (IOException | RuntimeException e) {
                failed = true;
                retryAfter = System.nanoTime() + RETRY.toNanos();
                throw e instanceof IOException io ? io : new IOException(e.getMessage(), e);
            }
        }
    }

    /** Runs mkfs into a temporary file and renames it to {@code file}. Called holding {@code making}. */
    private Path make(Path file, int diskMB) throws IOException {
        Files.createDirectories(dir);
        Path tmp = dir.resolve(file.getFileName() + ".tmp-" + UUID.randomUUID());
        try {
            LoopDisk.mkfs(tmp, diskMB);
            try (FileChannel c = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
                c.force(true); // the rename must not reach the disk before the blank's blocks do
            }
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
            return file;
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /**
     * Takes over the blanks an earlier run left (the most recent {@link #KEPT}, so the bound holds
     * across restarts) and deletes the rest: damaged ones, those of other option versions, and
     * temporary files of a crashed run (older than a minute; making a blank takes milliseconds).
     * Called once, holding {@code making}.
     */
    private void sweep() throws IOException {
        FileTime stale = FileTime.fromMillis(System.currentTimeMillis() - Duration.ofMinutes(1).toMillis());
        List<Path> files;
        try (var list = Files.list(dir)) {
            files = new ArrayList<>(list.toList());
        }
        files.sort(java.util.Comparator.comparing(BlankDisks::modified)); // oldest first: keep() evicts them first
        String prefix = "ext4-v" + VERSION + "-";
        for (Path p : files) {
            String name = p.getFileName().toString();
            if (name.contains(".tmp-")) {
                if (modified(p).compareTo(stale) < 0) Files.deleteIfExists(p);
                continue;
            }
            String size = name.startsWith(prefix) && name.endsWith("m.img")
                    ? name.substring(prefix.length(), name.length() - "m.img".length()) : "";
            if (!size.matches("[1-9][0-9]{0,8}") || !name.equals(fileName(Integer.parseInt(size)))) {
                Files.deleteIfExists(p);
                continue;
            }
            try {
                keep(Integer.parseInt(size), inspect(p, Integer.parseInt(size)));
            } catch (IOException | RuntimeException damaged) {
                Files.deleteIfExists(p);
            }
        }
    }

    private static FileTime modified(Path p) {
        try {
            return Files.getLastModifiedTime(p);
        } catch (IOException e) {
            return FileTime.fromMillis(0); // gone meanwhile: sorted first, then skipped
        }
    }

    /** Records a usable blank; past {@link #KEPT} sizes, the least recently used one's file goes. */
    private void keep(int diskMB, Blank b) {
        synchronized (blanks) {
            blanks.put(diskMB, b);
            var it = blanks.entrySet().iterator();
            while (blanks.size() > KEPT && it.hasNext()) {
                Blank old = it.next().getValue();
                it.remove();
                try {
                    // A start copying from it holds it open; one about to open it falls back to mkfs.
                    Files.deleteIfExists(old.file());
                } catch (IOException e) {
                    LOG.log(System.Logger.Level.WARNING, "cannot delete the blank disk " + old.file() + ": " + e.getMessage());
                }
            }
        }
    }

    private void forget(int diskMB, Blank b) {
        synchronized (blanks) {
            blanks.remove(diskMB, b);
        }
    }

    /**
     * The blank at {@code file} with its data extents, if it is one this class can copy: of the size
     * asked, an ext4 whose checksums do not depend on its UUID (metadata_csum_seed), whose superblock
     * checksum holds, on a filesystem that reports its holes (else a copy would write the whole image).
     */
    static Blank inspect(Path file, int diskMB) throws IOException {
        long size = diskMB * 1024L * 1024L;
        if (Files.size(file) != size) throw new IOException(file + " is not " + diskMB + " MiB long");
        List<Extent> extents = new ArrayList<>();
        long data = 0;
        int fd = Libc.open(file.toString(), Libc.O_RDONLY | Libc.O_CLOEXEC);
        try {
            long at = 0;
            while (at < size) {
                long start = Libc.lseek(fd, at, Libc.SEEK_DATA);
                if (start == -Libc.ENXIO) break; // holes to the end
                if (start < 0) throw new IOException("SEEK_DATA on " + file + ": " + Libc.strerror((int) -start));
                long end = Libc.lseek(fd, start, Libc.SEEK_HOLE);
                if (end < 0) throw new IOException("SEEK_HOLE on " + file + ": " + Libc.strerror((int) -end));
                extents.add(new Extent(start, end - start));
                data += end - start;
                at = end;
            }
        } finally {
            Libc.close(fd);
        }
        if (data > size / 8) {
            throw new IOException("the filesystem of " + file + " reports " + data + " of its " + size + " bytes as data"
                    + " (no SEEK_HOLE support?): a copy would write them all");
        }
        byte[] sb = new byte[SB_SIZE];
        try (FileChannel c = FileChannel.open(file)) {
            readFully(c, ByteBuffer.wrap(sb), SUPERBLOCK);
        }
        ByteBuffer le = ByteBuffer.wrap(sb).order(ByteOrder.LITTLE_ENDIAN);
        if ((le.getShort(S_MAGIC) & 0xFFFF) != EXT4_MAGIC
                || (le.getInt(S_FEATURE_INCOMPAT) & INCOMPAT_CSUM_SEED) == 0
                || (le.getInt(S_FEATURE_RO_COMPAT) & RO_COMPAT_METADATA_CSUM) == 0
                || le.getInt(S_CHECKSUM) != checksum(sb)) {
            throw new IOException(file + " is not an ext4 image with metadata_csum_seed and a valid superblock checksum");
        }
        return new Blank(file, size, extents);
    }

    /**
     * Copies {@code blank}'s data extents into a new sparse {@code image}, mode 0600, and gives it ids of
     * its own; on failure the image is deleted.
     */
    static void copy(Blank blank, Path image) throws IOException {
        Files.createFile(image, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        try (RandomAccessFile out = new RandomAccessFile(image.toFile(), "rw");
             FileChannel src = FileChannel.open(blank.file())) {
            out.setLength(blank.size());
            FileChannel dst = out.getChannel();
            for (Extent e : blank.extents()) {
                // In the kernel (copy_file_range, or a reflink where the filesystem shares blocks).
                for (long done = 0; done < e.length(); ) {
                    long n = src.transferTo(e.offset() + done, e.length() - done, dst.position(e.offset() + done));
                    if (n <= 0) throw new IOException("copying " + blank.file() + " stopped at byte " + (e.offset() + done));
                    done += n;
                }
            }
            personalise(dst);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(image);
            throw e;
        }
    }

    /**
     * Draws a new UUID and directory hash seed for the image open on {@code c}, in its superblock and in
     * every backup of it that still carries the blank's UUID, each with its checksum recomputed. The
     * other metadata checksums are seeded by s_checksum_seed (metadata_csum_seed), which stays; no
     * hash made with the old seed is stored, as a blank's only directories (/, lost+found) are linear.
     */
    static void personalise(FileChannel c) throws IOException {
        byte[] primary = new byte[SB_SIZE];
        readFully(c, ByteBuffer.wrap(primary), SUPERBLOCK);
        byte[] oldUuid = Arrays.copyOfRange(primary, S_UUID, S_UUID + 16);
        byte[] uuid = randomUuid(), hashSeed = randomUuid();
        int patched = 0;
        for (long offset : superblockOffsets(primary)) {
            byte[] sb = offset == SUPERBLOCK ? primary : new byte[SB_SIZE];
            if (offset != SUPERBLOCK) readFully(c, ByteBuffer.wrap(sb), offset);
            ByteBuffer le = ByteBuffer.wrap(sb).order(ByteOrder.LITTLE_ENDIAN);
            if ((le.getShort(S_MAGIC) & 0xFFFF) != EXT4_MAGIC
                    || !Arrays.equals(sb, S_UUID, S_UUID + 16, oldUuid, 0, 16)) {
                continue;
            }
            System.arraycopy(uuid, 0, sb, S_UUID, 16);
            System.arraycopy(hashSeed, 0, sb, S_HASH_SEED, 16);
            le.putInt(S_CHECKSUM, checksum(sb));
            ByteBuffer w = ByteBuffer.wrap(sb);
            while (w.hasRemaining()) c.write(w, offset + w.position());
            patched++;
        }
        if (patched == 0) throw new IOException("the copied image has no ext4 superblock at byte " + SUPERBLOCK);
    }

    /**
     * Byte offsets of the superblock and its backups: one at the start of group 1 and of groups that
     * are powers of 3, 5 and 7 (sparse_super), of the two groups named (sparse_super2), or of every group.
     */
    static List<Long> superblockOffsets(byte[] primary) {
        ByteBuffer le = ByteBuffer.wrap(primary).order(ByteOrder.LITTLE_ENDIAN);
        long blockSize = 1024L << le.getInt(S_LOG_BLOCK_SIZE);
        long first = Integer.toUnsignedLong(le.getInt(S_FIRST_DATA_BLOCK));
        long perGroup = Integer.toUnsignedLong(le.getInt(S_BLOCKS_PER_GROUP));
        long blocks = Integer.toUnsignedLong(le.getInt(S_BLOCKS_COUNT_LO));
        if ((le.getInt(S_FEATURE_INCOMPAT) & INCOMPAT_64BIT) != 0) {
            blocks |= Integer.toUnsignedLong(le.getInt(S_BLOCKS_COUNT_HI)) << 32;
        }
        List<Long> offsets = new ArrayList<>(List.of((long) SUPERBLOCK));
        if (perGroup == 0 || blocks <= first) return offsets;
        long groups = (blocks - first + perGroup - 1) / perGroup;
        boolean sparse = (le.getInt(S_FEATURE_RO_COMPAT) & RO_COMPAT_SPARSE_SUPER) != 0;
        boolean sparse2 = (le.getInt(S_FEATURE_COMPAT) & COMPAT_SPARSE_SUPER2) != 0;
        for (long g = 1; g < groups; g++) {
            boolean backup = sparse2
                    ? g == Integer.toUnsignedLong(le.getInt(S_BACKUP_BGS)) || g == Integer.toUnsignedLong(le.getInt(S_BACKUP_BGS + 4))
                    : !sparse || g == 1 || powerOf(g, 3) || powerOf(g, 5) || powerOf(g, 7);
            if (backup) offsets.add((g * perGroup + first) * blockSize);
        }
        return offsets;
    }

    private static boolean powerOf(long g, int base) {
        while (g > 1 && g % base == 0) g /= base;
        return g == 1;
    }

    /**
     * s_checksum: ext4 keeps crc32c of the bytes before it, seeded with ~0 and not inverted at the end,
     * which is the complement of the standard CRC-32C that {@link CRC32C} computes.
     */
    static int checksum(byte[] superblock) {
        CRC32C crc = new CRC32C();
        crc.update(superblock, 0, S_CHECKSUM);
        return ~(int) crc.getValue();
    }

    /** 16 random bytes laid out as a version-4 UUID, as mke2fs draws its UUID and hash seed. */
    private static byte[] randomUuid() {
        byte[] b = new byte[16];
        RANDOM.nextBytes(b);
        b[6] = (byte) ((b[6] & 0x0F) | 0x40);
        b[8] = (byte) ((b[8] & 0x3F) | 0x80);
        return b;
    }

    private static void readFully(FileChannel c, ByteBuffer b, long offset) throws IOException {
        while (b.hasRemaining()) {
            if (c.read(b, offset + b.position()) < 0) throw new IOException("unexpected end of the image at " + offset);
        }
    }
}
