package dev.stockade.it;

import dev.stockade.conformance.LimitsContract;

/** The conformance kit's {@link LimitsContract} against runsc (gVisor: a user-space kernel). */
class RunscLimitsIT extends LimitsContract {
    @Override
    protected String runtime() {
        return "runsc";
    }
}
