package dev.stockade.runtime.oci;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.runtime.RuntimeProvider;
import dev.stockade.runtime.SandboxRuntime;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/** ServiceLoader entry for the runc tier. */
public final class RuncProvider implements RuntimeProvider {
    static final String BINARY = "runc";

    @Override
    public String name() {
        return "runc";
    }

    @Override
    public Availability probe() {
        return probeOci(BINARY);
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
        return new RuncRuntime(name(), BINARY, List.of(), stateRoot, new ObjectMapper(), swapAccounting());
    }
}
