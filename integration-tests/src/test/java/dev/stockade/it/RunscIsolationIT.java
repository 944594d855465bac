package dev.stockade.it;

import dev.stockade.conformance.IsolationContract;

/** The conformance kit's {@link IsolationContract} against runsc (gVisor: a user-space kernel). */
class RunscIsolationIT extends IsolationContract {
    @Override
    protected String runtime() {
        return "runsc";
    }
}
