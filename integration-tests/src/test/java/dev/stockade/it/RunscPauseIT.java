package dev.stockade.it;

import dev.stockade.conformance.PauseContract;

/** The conformance kit's {@link PauseContract} against runsc (gVisor: a user-space kernel). */
class RunscPauseIT extends PauseContract {
    @Override
    protected String runtime() {
        return "runsc";
    }
}
