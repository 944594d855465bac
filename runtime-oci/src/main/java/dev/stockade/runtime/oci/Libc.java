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
 * The few libc calls the OCI runtime makes itself, through the FFM API: mount(2), umount2(2) and
 * prlimit(2).
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
