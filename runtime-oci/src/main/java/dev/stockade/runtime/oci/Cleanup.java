package dev.stockade.runtime.oci;

import java.util.ArrayDeque;
import java.util.Deque;

/**
 * Undo steps of a partially built sandbox, run in reverse order unless {@link #release()} is
 * called once everything succeeded. Failures of undo steps are added as suppressed exceptions.
 */
final class Cleanup implements AutoCloseable {
    interface Step {
        void run() throws Exception;
    }

    private final Deque<Step> steps = new ArrayDeque<>();
    private Throwable primary;

    void add(Step step) {
        steps.push(step);
    }

    void release() {
        steps.clear();
    }

    /** Records the failure that triggered the cleanup so undo failures attach to it. */
    void failedWith(Throwable t) {
        primary = t;
    }

    @Override
    public void close() {
        while (!steps.isEmpty()) {
            try {
                steps.pop().run();
            } catch (Exception e) {
                if (primary != null) primary.addSuppressed(e);
            }
        }
    }
}
