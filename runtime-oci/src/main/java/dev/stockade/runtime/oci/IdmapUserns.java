package dev.stockade.runtime.oci;

import dev.stockade.runtime.RuntimeFailure;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;

/**
 * User namespaces that serve only as id maps for idmapped mounts ({@link LayerMounts}): one per
 * sandbox uid range, mapping ids 0..65535 onto {@code uidBase..uidBase+65535} for users and groups,
 * held as a close-on-exec descriptor of its /proc/PID/ns/user. Nothing ever runs in them.
 *
 * <p>The JVM is multithreaded, so it cannot unshare(CLONE_NEWUSER) itself: a helper
 * ({@code unshare --user sh}) makes the namespace, says so on stdout, and waits on its stdin; this
 * class, host root, writes the maps, opens the namespace and closes the helper's stdin, which ends
 * it. The helper is waited for (killed by its own handle if it lingers), so none is ever left
 * behind. That costs a process start (a few ms), once per uid range: descriptors are cached, at
 * most {@link #MAX_CACHED}, the least recently used closed first (mounts already made keep their
 * namespace alive by themselves).
 *
 * <p>Called by {@link OciRuntime#start} on its caller's thread, only for templates with layers;
 * {@link #use} is serialised (a descriptor is never closed while a caller maps with it).
 */
final class IdmapUserns implements AutoCloseable {
    static final int MAX_CACHED = 64;
    private static final long HELPER_TIMEOUT_MS = 10_000;

    private final Map<Long, Integer> fds = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<Long, Integer> eldest) {
            if (size() <= MAX_CACHED) return false;
            Libc.close(eldest.getValue());
            return true;
        }
    };
    private boolean closed;

    /** Runs {@code action} with the namespace descriptor of {@code uidBase}'s range, made on first use. */
    synchronized <T> T use(long uidBase, IntFunction<T> action) {
        if (closed) throw new IllegalStateException("the runtime is closed");
        Integer fd = fds.get(uidBase);
        if (fd == null) {
            fd = create(uidBase);
            fds.put(uidBase, fd);
        }
        return action.apply(fd);
    }

    /** How many namespace descriptors are held (for tests). */
    synchronized int cached() {
        return fds.size();
    }

    @Override
    public synchronized void close() {
        closed = true;
        fds.values().forEach(Libc::close);
        fds.clear();
    }

    /** A new user namespace mapping 0..65535 onto {@code uidBase}'s range, as a descriptor. */
    static int create(long uidBase) {
        Process helper;
        try {
            helper = new ProcessBuilder(List.of("unshare", "--user", "--", "/bin/sh", "-c", "echo ready; read _"))
                    .redirectErrorStream(true).start();
        } catch (IOException e) {
            throw unavailable("cannot run unshare: " + e.getMessage());
        }
        try {
            String first = readLine(helper.getInputStream());
            if (!"ready".equals(first)) {
                helper.waitFor(HELPER_TIMEOUT_MS, TimeUnit.MILLISECONDS);
                throw unavailable("`unshare --user` failed: " + first.strip());
            }
            Path proc = Path.of("/proc", Long.toString(helper.pid()));
            String map = "0 " + uidBase + " 65536\n";
            Files.writeString(proc.resolve("uid_map"), map);
            Files.writeString(proc.resolve("gid_map"), map);
            int fd = Libc.open(proc.resolve("ns/user").toString(), Libc.O_RDONLY | Libc.O_CLOEXEC);
            helper.getOutputStream().close(); // the helper's `read` ends: it exits
            if (!helper.waitFor(HELPER_TIMEOUT_MS, TimeUnit.MILLISECONDS)) {
                Libc.close(fd);
                throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "the user-namespace helper did not exit");
            }
            return fd;
        } catch (IOException | Libc.LibcException e) {
            throw unavailable("cannot set up a user namespace for uid " + uidBase + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "interrupted while setting up a user namespace");
        } finally {
            if (helper.isAlive()) {
                helper.destroyForcibly();
                try {
                    helper.waitFor(HELPER_TIMEOUT_MS, TimeUnit.MILLISECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        }
    }

    /** The helper's first line (or all it said before ending), without waiting past its end. */
    private static String readLine(InputStream in) throws IOException {
        StringBuilder b = new StringBuilder();
        for (int c; (c = in.read()) >= 0 && c != '\n'; ) b.append((char) c);
        return b.toString();
    }

    private static RuntimeFailure unavailable(String why) {
        return new RuntimeFailure(RuntimeFailure.Code.UNAVAILABLE, "template layers need user namespaces for"
                + " idmapped mounts: " + why);
    }
}
