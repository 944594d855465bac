package dev.stockade.runtime.oci;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.runtime.RuntimeFailure;
import dev.stockade.runtime.RuntimeProvider;
import dev.stockade.runtime.SandboxRuntime;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/**
 * ServiceLoader entry for the runsc (gVisor, hardened) tier. The binary is {@code runsc} on the
 * PATH, or the one the system property {@code stockade.runsc} names. Besides what runc needs, it
 * needs a C compiler once, for the compatibility library of its template (policy/runsc.json).
 */
public final class RunscProvider implements RuntimeProvider {
    static final String BINARY = "runsc";

    @Override
    public String name() {
        return "runsc";
    }

    static String binary() {
        String override = System.getProperty("stockade.runsc");
        return override == null || override.isBlank() ? BINARY : override;
    }

    @Override
    public Availability probe() {
        Availability oci = RuncProvider.probeOci(binary());
        if (!oci.available()) return oci;
        HostCommand.Result cc = HostCommand.run(List.of("cc", "--version"), Duration.ofSeconds(10));
        if (!cc.ok()) {
            return Availability.no("runsc's template needs a C compiler once (for its compatibility library, policy/runsc.json): "
                    + cc.output() + ". Install it with `apt-get install gcc libc6-dev`.");
        }
        return Availability.yes();
    }

    /** "runsc version 0.0~20221219.0" → "0.0~20221219.0"; "unknown version" when it prints nothing usable. */
    static String version(String binary) {
        HostCommand.Result r = HostCommand.run(List.of(binary, "--version"), Duration.ofSeconds(10));
        for (String line : r.output().lines().toList()) {
            if (line.startsWith("runsc version ") && line.length() < 100) return line.substring("runsc version ".length()).strip();
        }
        return "unknown version";
    }

    /**
     * {@code stateRoot} is DATA/runtime/runsc: bundles under sandboxes/, runsc's own container state
     * under state/ (its --root), the template under templates/.
     */
    @Override
    public SandboxRuntime create(Path stateRoot) {
        Path runscRoot = stateRoot.toAbsolutePath().resolve("state");
        try {
            Files.createDirectories(runscRoot);
        } catch (IOException e) {
            throw new RuntimeFailure(RuntimeFailure.Code.HOST_ERROR, "cannot create " + runscRoot + ": " + e.getMessage());
        }
        String binary = binary();
        List<String> globalArgs = List.of(
                // Our containers' state, apart from any other runsc user's (default /var/run/runsc).
                "--root", runscRoot.toString(),
                // The spec's network namespace has no path, and runsc's default (sandbox) network
                // refuses to start in the host's namespace; "none" gives the sentry's loopback only,
                // which is what Stockade wants (egress goes through the bind-mounted proxy socket).
                "--network=none",
                // The agent listens on a unix socket bound from the host, and the egress relay
                // connects to one: "all" lets the sentry both create (bind) and open (connect)
                // host sockets; the default refuses even to mount them.
                "--host-uds=all",
                // Named rather than defaulted: ptrace is what was measured; kvm hangs at boot on
                // this version, and systrap does not exist yet.
                "--platform=ptrace");
        return new RunscRuntime(name(), binary, globalArgs, stateRoot, new ObjectMapper(), RuncProvider.swapAccounting(),
                version(binary));
    }
}
