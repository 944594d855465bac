package dev.stockade.it;

import dev.stockade.conformance.LifecycleContract;

/** The conformance kit's {@link LifecycleContract} against runsc (gVisor: a user-space kernel). */
class RunscLifecycleIT extends LifecycleContract {
    @Override
    protected String runtime() {
        return "runsc";
    }
}
