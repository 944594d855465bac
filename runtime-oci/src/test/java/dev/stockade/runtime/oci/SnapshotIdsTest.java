package dev.stockade.runtime.oci;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** How a snapshot's owners move out of one sandbox's uid range and into a fork's ({@code OciRuntime.shifted}). */
class SnapshotIdsTest {
    private static final long ORIGIN = 40L * 65536;
    private static final long FORK = 77L * 65536;

    @Test
    void aSandboxsOwnIdsMoveAndEveryOtherStaysForeign() {
        // The origin's root and user: 0 and 1000 in the snapshot, the fork's root and user after.
        assertEquals(0, OciRuntime.shifted(ORIGIN, -ORIGIN));
        assertEquals(1000, OciRuntime.shifted(ORIGIN + 1000, -ORIGIN));
        assertEquals(FORK + 1000, OciRuntime.shifted(1000, FORK));
        // Host root's files (the template's /var, copied up by overlayfs) never become the fork's root's.
        long hostRoot = OciRuntime.shifted(0, -ORIGIN);
        assertEquals(OciRuntime.FOREIGN_ID, hostRoot);
        assertEquals(OciRuntime.FOREIGN_ID, OciRuntime.shifted(hostRoot, FORK));
        // Nor do another range's ids.
        assertEquals(OciRuntime.FOREIGN_ID, OciRuntime.shifted(FORK + 5, -ORIGIN));
    }
}
