package dev.stockade.server.core;

import java.time.Instant;

/**
 * A sandbox's lifecycle state: a closed family, so a new state breaks every exhaustive switch that
 * must handle it. Transitions: Starting → Running → Ended; Starting → Ended when start fails.
 */
public sealed interface SandboxState {
    record Starting() implements SandboxState {}

    record Running() implements SandboxState {}

    /** Ended for good; {@code why} says how (killed by a client, expired, lost, failed to start). */
    record Ended(Instant at, String why) implements SandboxState {}

    /** The E2B API's word for the state ("running"; ended sandboxes are not listed by E2B). */
    static String e2bName(SandboxState s) {
        return switch (s) {
            case Starting st -> "running";
            case Running r -> "running";
            case Ended e -> "killed";
        };
    }
}
