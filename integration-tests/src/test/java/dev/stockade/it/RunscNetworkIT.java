package dev.stockade.it;

import dev.stockade.conformance.NetworkContract;

/** The conformance kit's {@link NetworkContract} against runsc (gVisor: a user-space kernel). */
class RunscNetworkIT extends NetworkContract {
    @Override
    protected String runtime() {
        return "runsc";
    }
}
