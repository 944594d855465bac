package dev.stockade.runtime.oci;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.runtime.RuntimeProvider;
import dev.stockade.runtime.SandboxRuntime;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * ServiceLoader entry for the runc tier. The binary is {@code runc} on the PATH, or the one the
 * system property {@code stockade.runc} names (an operator's own build, or a test's faulty one).
 */
public final class RuncProvider implements RuntimeProvider {
    static final String BINARY = "runc";

    @Override
    public String name() {
        return "runc";
    }

    static String binary() {
        String override = System.getProperty("stockade.runc");
        return override == null || override.isBlank() ? BINARY : override;
    }

    @Override
    public Availability probe() {
        return probeOci(binary());
    }

    static Availability probeOci(String binary) {
        if (!"root".equals(System.getProperty("user.name"))) {
            return Availability.no(binary + " needs the server to run as root (it creates user namespaces, mounts and cgroups)");
        }
        if (!Files.exists(Path.of("/proc/self/ns/user"))) {
            return Availability.no("the kernel has no user namespaces (/proc/self/ns/user is missing)");
        }
        HostCommand.Result r = HostCommand.run(List.of(binary, "--version"), Duration.ofSeconds(10));
        if (!r.ok()) {
            return Availability.no(binary + " is not usable: " + r.output() + ". Install it with `apt-get install " + binary + "`.");
        }
        return Availability.yes();
    }

    static boolean swapAccounting() {
        return Files.exists(Path.of("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"))
                || Files.exists(Path.of("/sys/fs/cgroup/cgroup.controllers"));
    }

    @Override
    public SandboxRuntime create(Path stateRoot) {
        return new RuncRuntime(name(), binary(), List.of(), stateRoot, new ObjectMapper(), swapAccounting());
    }
}
