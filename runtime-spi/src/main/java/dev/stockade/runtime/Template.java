package dev.stockade.runtime;

import java.nio.file.Path;
import java.util.List;

/**
 * A root filesystem template: a read-only lower directory shared by every sandbox of the template,
 * plus host directories bind-mounted read-only on top of it (for the host-Python template, /usr),
 * plus, for a custom template, read-only layers stacked above the lower directory.
 *
 * @param name the template's name as clients see it
 * @param lowerDir the template's own read-only root (its /etc, mount points, symlinks)
 * @param readOnlyBinds host paths bound read-only at the same path inside the sandbox
 * @param layers read-only layer directories above {@code lowerDir}, TOP FIRST (the first one's files
 *     win). Their owners are CANONICAL, as snapshots store them: 0 is the sandbox's root, 1000 its
 *     user, 0..65535 its id range. A runtime maps them into each sandbox's own range without copying
 *     or chowning (runc: idmapped mounts), so one layer on the host serves every sandbox at once and
 *     is never written: what a sandbox changes is copied up to its own disk. Empty for the default
 *     template.
 */
public record Template(String name, Path lowerDir, List<Path> readOnlyBinds, List<Path> layers) {
    /**
     * At most this many layers. overlayfs takes every lower directory in one mount option string of
     * at most a page (4096 bytes); the runtime also checks the actual length before mounting.
     */
    public static final int MAX_LAYERS = 64;

    public Template {
        readOnlyBinds = List.copyOf(readOnlyBinds);
        layers = List.copyOf(layers);
        if (layers.size() > MAX_LAYERS) {
            throw new IllegalArgumentException("template " + name + " has " + layers.size() + " layers; at most "
                    + MAX_LAYERS + " are supported");
        }
        for (Path layer : layers) {
            if (!layer.isAbsolute()) throw new IllegalArgumentException("layer path is not absolute: " + layer);
            // overlayfs separates lower directories with ':' and options with ','.
            String s = layer.toString();
            if (s.contains(":") || s.contains(",") || s.contains("\\")) {
                throw new IllegalArgumentException("layer path holds ':', ',' or '\\': " + layer);
            }
        }
    }

    /** A template without layers (the default template). */
    public Template(String name, Path lowerDir, List<Path> readOnlyBinds) {
        this(name, lowerDir, readOnlyBinds, List.of());
    }
}
