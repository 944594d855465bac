package dev.stockade.server.core;

import java.time.Instant;

/**
 * A sandbox's lifecycle state: a closed family, so a new state breaks every exhaustive switch that
 * must handle it. Transitions: Starting → Running → Ended; Starting → Ended when start fails;
 * Running ⇄ Paused (frozen: no CPU, memory and files kept); Paused → Ended.
 */
public sealed interface SandboxState {
    record Starting() implements SandboxState {}

    record Running() implements SandboxState {}

    /** Frozen since {@code at}, with {@code remaining} of its timeout to run once resumed. */
    record Paused(Instant at, java.time.Duration remaining) implements SandboxState {}

    /** Ended for good; {@code why} says how (killed by a client, expired, lost, failed to start). */
    record Ended(Instant at, String why) implements SandboxState {}

    /** The E2B API's word for the state ("running"; ended sandboxes are not listed by E2B). */
    static String e2bName(SandboxState s) {
        return switch (s) {
            case Starting st -> "running";
            case Running r -> "running";
            case Paused p -> "paused";
            case Ended e -> "killed";
        };
    }
}
