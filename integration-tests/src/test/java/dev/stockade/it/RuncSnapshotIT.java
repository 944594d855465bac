package dev.stockade.it;

import dev.stockade.conformance.SnapshotContract;

/** The conformance kit's {@link SnapshotContract} against runc (namespaces, seccomp, cgroups on the host kernel). */
class RuncSnapshotIT extends SnapshotContract {
    @Override
    protected String runtime() {
        return "runc";
    }
}
