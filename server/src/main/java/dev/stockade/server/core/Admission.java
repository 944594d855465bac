package dev.stockade.server.core;

import dev.stockade.server.error.StockadeError;

import dev.stockade.runtime.Limits;

/**
 * Decides, once a create's limits are resolved, whether its owner may start one more sandbox. A
 * refusal is a {@link StockadeError} (400 for limits beyond the owner's maxima, 429 for a quota that
 * is full). An admission holds its share of the owner's quota until its lease is closed: when the
 * sandbox ends, or at once if the create fails.
 */
@FunctionalInterface
public interface Admission {
    Lease admit(String owner, Limits limits);

    /**
     * Counts a sandbox that already exists (taken over after a restart) against its owner's quota,
     * without refusing it: what was admitted once is not taken back because a quota changed since.
     */
    default Lease restore(String owner, Limits limits) {
        return admit(owner, limits);
    }

    /** Releases what an admission holds; closing twice releases once. */
    interface Lease {
        void close();
    }
}
