package dev.stockade.runtime.oci;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * The few libc calls the OCI runtime makes itself, through the FFM API: mount(2), umount2(2),
 * prlimit(2), and for the sandboxes' disk images ({@link LoopDisk}, {@link BlankDisks}) open(2),
 * close(2), ioctl(2), fallocate(2), lseek(2) and statvfs(3); for template layers ({@link LayerMounts})
 * open_tree(2), mount_setattr(2) and move_mount(2), which glibc 2.36 does not wrap.
 * Calling them directly costs a tenth of a millisecond; running /bin/mount costs milliseconds on
 * the create path. Errors carry errno's text.
 */
final class Libc {
    static final long MS_NOSUID = 2, MS_NODEV = 4, MS_NOEXEC = 8, MS_REMOUNT = 32;
    static final int MNT_DETACH = 2;
    static final int RLIMIT_NPROC = 6;

    private static final Linker LINKER = Linker.nativeLinker();
    private static final StructLayout CAPTURE = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO = CAPTURE.varHandle(java.lang.foreign.MemoryLayout.PathElement.groupElement("errno"));
    private static final Linker.Option CCS = Linker.Option.captureCallState("errno");
    private static final MethodHandle MOUNT = LINKER.downcallHandle(
            LINKER.defaultLookup().find("mount").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS,
                    ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS),
            CCS);
    private static final MethodHandle UMOUNT2 = LINKER.downcallHandle(
            LINKER.defaultLookup().find("umount2").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT),
            CCS);
    private static final MethodHandle PRLIMIT = LINKER.downcallHandle(
            LINKER.defaultLookup().find("prlimit").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT,
                    ValueLayout.ADDRESS, ValueLayout.ADDRESS),
            CCS);
    private static final MethodHandle OPEN = LINKER.downcallHandle(
            LINKER.defaultLookup().find("open").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT),
            CCS, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle CLOSE = LINKER.downcallHandle(
            LINKER.defaultLookup().find("close").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
    private static final MethodHandle IOCTL = LINKER.downcallHandle(
            LINKER.defaultLookup().find("ioctl").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.ADDRESS),
            CCS, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle IOCTL_LONG = LINKER.downcallHandle(
            LINKER.defaultLookup().find("ioctl").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG),
            CCS, Linker.Option.firstVariadicArg(2));
    private static final MethodHandle FALLOCATE = LINKER.downcallHandle(
            LINKER.defaultLookup().find("fallocate").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_LONG),
            CCS);
    private static final MethodHandle LSEEK = LINKER.downcallHandle(
            LINKER.defaultLookup().find("lseek").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT),
            CCS);
    private static final MethodHandle STATVFS = LINKER.downcallHandle(
            LINKER.defaultLookup().find("statvfs").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS),
            CCS);
    private static final MethodHandle SYSCALL2 = LINKER.downcallHandle(
            LINKER.defaultLookup().find("syscall").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG),
            CCS, Linker.Option.firstVariadicArg(1));
    private static final MethodHandle SYSCALL4 = LINKER.downcallHandle(
            LINKER.defaultLookup().find("syscall").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG),
            CCS, Linker.Option.firstVariadicArg(1));
    /** syscall(2) with five arguments; calls that take fewer get zeros in the rest, which the kernel ignores. */
    private static final MethodHandle SYSCALL5 = LINKER.downcallHandle(
            LINKER.defaultLookup().find("syscall").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG),
            CCS, Linker.Option.firstVariadicArg(1));
    private static final MethodHandle POLL = LINKER.downcallHandle(
            LINKER.defaultLookup().find("poll").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT),
            CCS);
    private static final MethodHandle STRERROR = LINKER.downcallHandle(
            LINKER.defaultLookup().find("strerror").orElseThrow(),
            FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.JAVA_INT));

    private Libc() {}

    /** mount(2); throws {@link LibcException} with errno on failure. */
    static void mount(String source, String target, String fsType, long flags, String data) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            MemorySegment dataArg = data == null ? MemorySegment.NULL : arena.allocateFrom(data);
            int rc = (int) MOUNT.invokeExact(state, arena.allocateFrom(source), arena.allocateFrom(target),
                    arena.allocateFrom(fsType), flags, dataArg);
            if (rc != 0) {
                int errno = (int) ERRNO.get(state, 0L);
                throw new LibcException("mount " + fsType + " on " + target, errno, strerror(errno));
            }
        } catch (LibcException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("mount: native call failed", t);
        }
    }

    /** umount2(2); returns errno (0 on success) so callers can decide what EINVAL or EBUSY mean. */
    static int umount2(String target, int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            int rc = (int) UMOUNT2.invokeExact(state, arena.allocateFrom(target), flags);
            return rc == 0 ? 0 : (int) ERRNO.get(state, 0L);
        } catch (Throwable t) {
            throw new IllegalStateException("umount2: native call failed", t);
        }
    }

    /**
     * prlimit(2): sets resource {@code resource} of process {@code pid} to {@code limit} (soft and
     * hard); returns errno (0 on success; ESRCH when the process has ended meanwhile).
     */
    static int prlimit(long pid, int resource, long limit) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            MemorySegment value = arena.allocate(ValueLayout.JAVA_LONG, 2);
            value.setAtIndex(ValueLayout.JAVA_LONG, 0, limit);
            value.setAtIndex(ValueLayout.JAVA_LONG, 1, limit);
            int rc = (int) PRLIMIT.invokeExact(state, (int) pid, resource, value, MemorySegment.NULL);
            return rc == 0 ? 0 : (int) ERRNO.get(state, 0L);
        } catch (Throwable t) {
            throw new IllegalStateException("prlimit: native call failed", t);
        }
    }

    /** The generic syscall numbers (the same on every architecture since Linux 5.1). */
    private static final long SYS_PIDFD_SEND_SIGNAL = 424, SYS_PIDFD_OPEN = 434;
    static final int SIGKILL = 9;

    /**
     * pidfd_open(2): a descriptor that stays bound to process {@code pid} even after its id is
     * reused, or -errno (ESRCH: no such process).
     */
    static int pidfdOpen(long pid) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            long rc = (long) SYSCALL2.invokeExact(state, SYS_PIDFD_OPEN, pid, 0L);
            return rc >= 0 ? (int) rc : -(int) ERRNO.get(state, 0L);
        } catch (Throwable t) {
            throw new IllegalStateException("pidfd_open: native call failed", t);
        }
    }

    /** pidfd_send_signal(2); returns errno (0 on success; ESRCH when the process has ended). */
    static int pidfdSendSignal(int pidfd, int signal) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            long rc = (long) SYSCALL4.invokeExact(state, SYS_PIDFD_SEND_SIGNAL, (long) pidfd, (long) signal, 0L, 0L);
            return rc == 0 ? 0 : (int) ERRNO.get(state, 0L);
        } catch (Throwable t) {
            throw new IllegalStateException("pidfd_send_signal: native call failed", t);
        }
    }

    /**
     * poll(2) of one descriptor for input (a pidfd: the process has ended) for at most
     * {@code timeoutMillis}; true when it is ready, false on timeout or error.
     */
    static boolean pollIn(int fd, int timeoutMillis) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            MemorySegment pfd = arena.allocate(8, 4); // struct pollfd { int fd; short events; short revents; }
            pfd.set(ValueLayout.JAVA_INT, 0, fd);
            pfd.set(ValueLayout.JAVA_SHORT, 4, (short) 1 /* POLLIN */);
            int rc = (int) POLL.invokeExact(state, pfd, 1L, timeoutMillis);
            return rc > 0;
        } catch (Throwable t) {
            throw new IllegalStateException("poll: native call failed", t);
        }
    }

    /** The new mount API's generic syscall numbers (Linux 5.2; mount_setattr 5.12). */
    private static final long SYS_OPEN_TREE = 428, SYS_MOVE_MOUNT = 429, SYS_MOUNT_SETATTR = 442;
    private static final long AT_FDCWD = -100, AT_EMPTY_PATH = 0x1000;
    private static final long OPEN_TREE_CLONE = 1, OPEN_TREE_CLOEXEC = 02000000;
    private static final long MOVE_MOUNT_F_EMPTY_PATH = 0x4;
    static final long MOUNT_ATTR_RDONLY = 0x1, MOUNT_ATTR_NOSUID = 0x2, MOUNT_ATTR_NODEV = 0x4, MOUNT_ATTR_IDMAP = 0x00100000;

    /**
     * open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount at {@code path} (not its
     * submounts), as a close-on-exec descriptor. Throws {@link LibcException} with errno on failure.
     */
    static int openTreeClone(String path) {
        try (Arena arena = Arena.ofConfined()) {
            return (int) syscall5(arena, "open_tree", SYS_OPEN_TREE, AT_FDCWD, arena.allocateFrom(path).address(),
                    OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC, 0L, 0L);
        }
    }

    /**
     * mount_setattr(2) of the detached mount {@code treeFd}: sets {@code attrSet} (MOUNT_ATTR_*),
     * with MOUNT_ATTR_IDMAP mapping its owners through the user namespace {@code usernsFd}. Throws
     * {@link LibcException} with errno on failure (EINVAL, ENOSYS, EPERM: no idmapped mounts here).
     */
    static void mountSetattr(int treeFd, long attrSet, int usernsFd) {
        try (Arena arena = Arena.ofConfined()) {
            // struct mount_attr { __u64 attr_set, attr_clr, propagation, userns_fd; } (MOUNT_ATTR_SIZE_VER0 = 32)
            MemorySegment attr = arena.allocate(ValueLayout.JAVA_LONG, 4);
            attr.setAtIndex(ValueLayout.JAVA_LONG, 0, attrSet);
            attr.setAtIndex(ValueLayout.JAVA_LONG, 3, usernsFd);
            syscall5(arena, "mount_setattr", SYS_MOUNT_SETATTR, treeFd, arena.allocateFrom("").address(), AT_EMPTY_PATH,
                    attr.address(), attr.byteSize());
        }
    }

    /** move_mount(2): attaches the detached mount {@code treeFd} at {@code target}. Throws {@link LibcException}. */
    static void moveMount(int treeFd, String target) {
        try (Arena arena = Arena.ofConfined()) {
            syscall5(arena, "move_mount", SYS_MOVE_MOUNT, treeFd, arena.allocateFrom("").address(), AT_FDCWD,
                    arena.allocateFrom(target).address(), MOVE_MOUNT_F_EMPTY_PATH);
        }
    }

    /** syscall(2) {@code nr} with five arguments (pointers as addresses in {@code arena}); its result, or a {@link LibcException}. */
    private static long syscall5(Arena arena, String what, long nr, long a, long b, long c, long d, long e) {
        MemorySegment state = arena.allocate(CAPTURE);
        long rc;
        try {
            rc = (long) SYSCALL5.invokeExact(state, nr, a, b, c, d, e);
        } catch (Throwable t) {
            throw new IllegalStateException(what + ": native call failed", t);
        }
        if (rc < 0) {
            int errno = (int) ERRNO.get(state, 0L);
            throw new LibcException(what, errno, strerror(errno));
        }
        return rc;
    }

    static final int O_RDWR = 2, O_CREAT = 0100, O_CLOEXEC = 02000000;

    /** open(2); a file it creates (O_CREAT) gets mode 0600. Throws {@link LibcException} with errno on failure. */
    static int open(String path, int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            int fd = (int) OPEN.invokeExact(state, arena.allocateFrom(path), flags, 0600);
            if (fd < 0) {
                int errno = (int) ERRNO.get(state, 0L);
                throw new LibcException("open " + path, errno, strerror(errno));
            }
            return fd;
        } catch (LibcException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("open: native call failed", t);
        }
    }

    static void close(int fd) {
        try {
            int ignored = (int) CLOSE.invokeExact(fd);
        } catch (Throwable t) {
            throw new IllegalStateException("close: native call failed", t);
        }
    }

    /** ioctl(2) with a pointer argument; returns its result (≥ 0), or -errno on failure. */
    static int ioctl(int fd, long request, MemorySegment arg) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            int rc = (int) IOCTL.invokeExact(state, fd, request, arg);
            return rc >= 0 ? rc : -(int) ERRNO.get(state, 0L);
        } catch (Throwable t) {
            throw new IllegalStateException("ioctl: native call failed", t);
        }
    }

    /** ioctl(2) with an integer argument (or none); returns its result (≥ 0), or -errno on failure. */
    static int ioctl(int fd, long request, long arg) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            int rc = (int) IOCTL_LONG.invokeExact(state, fd, request, arg);
            return rc >= 0 ? rc : -(int) ERRNO.get(state, 0L);
        } catch (Throwable t) {
            throw new IllegalStateException("ioctl: native call failed", t);
        }
    }

    /** fallocate(2) mode 0 (allocate, extending the file); returns errno (0 on success, ENOSPC when it does not fit). */
    static int fallocate(int fd, long offset, long length) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            int rc = (int) FALLOCATE.invokeExact(state, fd, 0, offset, length);
            return rc == 0 ? 0 : (int) ERRNO.get(state, 0L);
        } catch (Throwable t) {
            throw new IllegalStateException("fallocate: native call failed", t);
        }
    }

    static final int O_RDONLY = 0, SEEK_DATA = 3, SEEK_HOLE = 4, ENXIO = 6;

    /** lseek(2); returns the new offset, or -errno on failure (ENXIO: no data at or after {@code offset}). */
    static long lseek(int fd, long offset, int whence) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            long rc = (long) LSEEK.invokeExact(state, fd, offset, whence);
            return rc >= 0 ? rc : -(int) ERRNO.get(state, 0L);
        } catch (Throwable t) {
            throw new IllegalStateException("lseek: native call failed", t);
        }
    }

    /**
     * A filesystem's size and use from statvfs(3).
     *
     * @param blockSize f_frsize, the unit of the block counts
     */
    record FsStat(long blockSize, long blocks, long freeBlocks, long availableBlocks, long inodes, long freeInodes) {}

    /** statvfs(3) of the filesystem holding {@code path}; throws {@link LibcException} with errno on failure. */
    static FsStat statvfs(String path) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment state = arena.allocate(CAPTURE);
            // struct statvfs on 64-bit Linux: f_bsize, f_frsize, f_blocks, f_bfree, f_bavail, f_files,
            // f_ffree, f_favail, f_fsid, f_flag, f_namemax (unsigned longs), then int __f_spare[6].
            MemorySegment buf = arena.allocate(ValueLayout.JAVA_LONG, 16);
            int rc = (int) STATVFS.invokeExact(state, arena.allocateFrom(path), buf);
            if (rc != 0) {
                int errno = (int) ERRNO.get(state, 0L);
                throw new LibcException("statvfs " + path, errno, strerror(errno));
            }
            return new FsStat(buf.getAtIndex(ValueLayout.JAVA_LONG, 1), buf.getAtIndex(ValueLayout.JAVA_LONG, 2),
                    buf.getAtIndex(ValueLayout.JAVA_LONG, 3), buf.getAtIndex(ValueLayout.JAVA_LONG, 4),
                    buf.getAtIndex(ValueLayout.JAVA_LONG, 5), buf.getAtIndex(ValueLayout.JAVA_LONG, 6));
        } catch (LibcException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("statvfs: native call failed", t);
        }
    }

    static String strerror(int errno) {
        try {
            MemorySegment s = (MemorySegment) STRERROR.invokeExact(errno);
            return s.reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "errno " + errno;
        }
    }

    static final class LibcException extends RuntimeException {
        final int errno;

        LibcException(String what, int errno, String text) {
            super(what + ": " + text + " (errno " + errno + ")");
            this.errno = errno;
        }
    }
}
