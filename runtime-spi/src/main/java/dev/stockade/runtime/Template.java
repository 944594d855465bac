package dev.stockade.runtime;

import java.nio.file.Path;
import java.util.List;

/**
 * A root filesystem template: a read-only lower directory shared by every sandbox of the template,
 * plus host directories bind-mounted read-only on top of it (for the host-Python template, /usr).
 *
 * @param name the template's name as clients see it
 * @param lowerDir the template's own read-only root (its /etc, mount points, symlinks)
 * @param readOnlyBinds host paths bound read-only at the same path inside the sandbox
 */
public record Template(String name, Path lowerDir, List<Path> readOnlyBinds) {
    public Template {
        readOnlyBinds = List.copyOf(readOnlyBinds);
    }
}
