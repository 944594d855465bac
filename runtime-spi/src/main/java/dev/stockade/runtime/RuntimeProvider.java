package dev.stockade.runtime;

import java.nio.file.Path;

/**
 * A ServiceLoader entry point for a runtime. {@link #probe()} is cheap and says whether this host
 * can run it, and if not, why (the server prints one aggregated message of every reason).
 */
public interface RuntimeProvider {
    String name();

    Availability probe();

    /** Creates the runtime; {@code stateRoot} is a directory the runtime owns exclusively. */
    SandboxRuntime create(Path stateRoot);

    record Availability(boolean available, String reason) {
        public static Availability yes() {
            return new Availability(true, "available");
        }

        public static Availability no(String reason) {
            return new Availability(false, reason);
        }
    }
}
