package dev.stockade.it;

import dev.stockade.conformance.SnapshotContract;

/** The conformance kit's {@link SnapshotContract} against runsc (gVisor: a user-space kernel). */
class RunscSnapshotIT extends SnapshotContract {
    @Override
    protected String runtime() {
        return "runsc";
    }
}
