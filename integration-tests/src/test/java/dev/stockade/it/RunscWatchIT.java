package dev.stockade.it;

import dev.stockade.conformance.WatchContract;

/** The conformance kit's {@link WatchContract} against runsc (gVisor: a user-space kernel). */
class RunscWatchIT extends WatchContract {
    @Override
    protected String runtime() {
        return "runsc";
    }
}
