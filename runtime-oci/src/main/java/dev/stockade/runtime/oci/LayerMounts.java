package dev.stockade.runtime.oci;

import dev.stockade.runtime.RuntimeFailure;
import dev.stockade.runtime.Template;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A custom template's read-only layers under one sandbox's overlay. Each layer directory (owners
 * canonical: 0..65535, {@link Template#layers}) is mounted at {@code STATE/l/N} through an idmapped,
 * read-only mount (open_tree + mount_setattr(MOUNT_ATTR_IDMAP) + move_mount) whose id map is the
 * sandbox's user namespace ({@link IdmapUserns}): inside, its files belong to the sandbox's root and
 * user, on the host they never change. No copy, no chown: one layer serves every sandbox at once, and
 * what a sandbox changes is copied up by overlayfs to its own disk. Needs Linux 5.19 (overlayfs on
 * idmapped lower layers).
 *
 * <p>Called by {@link OciRuntime#start} (mount, its undo list unmounts) and {@link OciRuntime#destroy}
 * (unmount whatever is left, also for the orphan reaper), under the sandbox's lock.
 */
final class LayerMounts {
    /** mount(2) copies at most a page of options, with its terminating NUL. */
    static final int MAX_OPTIONS_BYTES = 4095;

    private LayerMounts() {}

    /** Where layer {@code i} (0 = top) of a sandbox is mounted: a short path, as overlay's options are a page at most. */
    static Path mountPoint(BundleLayout layout, int i) {
        return layout.state().resolve("l").resolve(Integer.toString(i));
    }

    /**
     * The overlay's lowerdir value for {@code template}: its layers' mount points top first, then its
     * own lower directory. Exactly the lower directory when it has no layers.
     */
    static String lowerdir(Template template, BundleLayout layout) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < template.layers().size(); i++) b.append(mountPoint(layout, i)).append(':');
        return b.append(template.lowerDir()).toString();
    }

    /** Refuses overlay options that would not fit mount(2)'s page (many layers under a deep data directory). */
    static void checkLength(String options, Template template) {
        int bytes = options.getBytes(StandardCharsets.UTF_8).length;
        if (bytes > MAX_OPTIONS_BYTES) {
            throw new RuntimeFailure(RuntimeFailure.Code.START_FAILED, "template " + template.name() + " has "
                    + template.layers().size() + " layers, more than this server can stack: the overlay's options take "
                    + bytes + " bytes, at most " + MAX_OPTIONS_BYTES + " fit (a shorter data directory path allows more)");
        }
    }

    /**
     * Mounts every layer of {@code template} idmapped read-only for the sandbox whose user namespace
     * is {@code usernsFd}; each mount's unmount is added to {@code undo} as soon as it exists.
     */
    static void mount(Template template, BundleLayout layout, int usernsFd, Cleanup undo) throws IOException {
        List<Path> layers = template.layers();
        for (int i = 0; i < layers.size(); i++) {
            Path target = mountPoint(layout, i);
            Files.createDirectories(target);
            int tree;
            try {
                tree = Libc.openTreeClone(layers.get(i).toString());
            } catch (Libc.LibcException e) {
                throw new RuntimeFailure(e.errno == 38 /* ENOSYS */ ? RuntimeFailure.Code.UNAVAILABLE
                        : RuntimeFailure.Code.START_FAILED, "layer " + i + " of template " + template.name()
                        + " cannot be opened (" + Libc.strerror(e.errno) + ")" + needs(e.errno), e);
            }
            try {
                Libc.mountSetattr(tree, Libc.MOUNT_ATTR_IDMAP | Libc.MOUNT_ATTR_RDONLY | Libc.MOUNT_ATTR_NODEV, usernsFd);
                Libc.moveMount(tree, target.toString());
                undo.add(() -> OciRuntime.unmount(target));
            } catch (Libc.LibcException e) {
                boolean unsupported = e.errno == 22 || e.errno == 38 || e.errno == 1; // EINVAL, ENOSYS, EPERM
                throw new RuntimeFailure(unsupported ? RuntimeFailure.Code.UNAVAILABLE : RuntimeFailure.Code.START_FAILED,
                        "layer " + i + " of template " + template.name() + " could not be mounted ("
                                + Libc.strerror(e.errno) + ")" + (unsupported ? needs(38) : ""), e);
            } finally {
                Libc.close(tree);
            }
        }
    }

    private static String needs(int errno) {
        return errno == 38 || errno == 22 || errno == 1
                ? ": template layers need idmapped mounts under overlayfs (Linux >= 5.19) on the filesystem holding them"
                : "";
    }

    /** Unmounts every layer of the sandbox still mounted (destroy, the orphan reaper), deepest number first. */
    static void unmountAll(BundleLayout layout) {
        for (Path p : mounted(layout).reversed()) OciRuntime.unmount(p);
    }

    /** The sandbox's layer mount points that are mounted now, from /proc/self/mountinfo. */
    static List<Path> mounted(BundleLayout layout) {
        String prefix = layout.state().toAbsolutePath().normalize().resolve("l") + "/";
        List<Path> found = new ArrayList<>();
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/mountinfo"))) {
                String[] f = line.split(" ");
                if (f.length > 4) {
                    String point = OciRuntime.unescape(f[4]);
                    if (point.startsWith(prefix)) found.add(Path.of(point));
                }
            }
        } catch (IOException e) {
            throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "cannot read /proc/self/mountinfo: " + e.getMessage());
        }
        found.sort(null);
        return found;
    }
}
