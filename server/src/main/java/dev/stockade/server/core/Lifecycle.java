package dev.stockade.server.core;

import dev.stockade.server.error.StockadeError;

/**
 * Which operation a sandbox's state allows, and what an allowed one does to it: one exhaustive switch
 * over {@link SandboxState}, so a new state breaks the build here until each operation is decided
 * for it. {@link SandboxManager} asks before it acts (under the sandbox's lock); {@code LifecycleTest}
 * lists, per state, every operation allowed and refused.
 *
 * <p>A starting sandbox is not yet its owner's and an ended one is gone: both answer every operation
 * with the one not-found answer, as a sandbox that never existed does.
 */
final class Lifecycle {
    private Lifecycle() {}

    /** What a client (or the reaper) can ask of a sandbox. */
    enum Operation {
        /** Reach its agent: commands, files, cells, packages. */
        USE,
        PAUSE,
        /** Resume a paused sandbox (E2B's connect); on a running one only its timeout changes. */
        RESUME,
        SET_TIMEOUT,
        SNAPSHOT,
        SET_NETWORK,
        KILL
    }

    /** What an allowed operation does to the state. */
    enum Effect {
        /** The state stays as it is. */
        STAYS,
        /** Running → Paused. */
        PAUSES,
        /** Paused → Running. */
        RESUMES,
        /** Running → Paused for the copy, then Running again. */
        FREEZES_FOR_COPY,
        /** → Ended. */
        ENDS
    }

    /** The effect of {@code op} on a sandbox in {@code state}, or the error that refuses it. */
    static Effect allow(SandboxState state, Operation op, String id) {
        return switch (state) {
            case SandboxState.Starting s -> throw SandboxManager.notFound(id);
            case SandboxState.Ended e -> throw SandboxManager.notFound(id);
            case SandboxState.Running r -> switch (op) {
                case USE, RESUME, SET_TIMEOUT, SET_NETWORK -> Effect.STAYS;
                case PAUSE -> Effect.PAUSES;
                case SNAPSHOT -> Effect.FREEZES_FOR_COPY;
                case KILL -> Effect.ENDS;
            };
            case SandboxState.Paused p -> switch (op) {
                case USE -> throw SandboxManager.paused(id);
                case PAUSE -> throw new StockadeError(StockadeError.Code.CONFLICT, "sandbox " + id + " is already paused");
                case RESUME -> Effect.RESUMES;
                case SET_TIMEOUT, SNAPSHOT, SET_NETWORK -> Effect.STAYS; // a new timeout counts from the resume
                case KILL -> Effect.ENDS;
            };
        };
    }
}
