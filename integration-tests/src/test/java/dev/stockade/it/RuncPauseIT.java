package dev.stockade.it;

import dev.stockade.conformance.PauseContract;

/** The conformance kit's {@link PauseContract} against runc (namespaces, seccomp, cgroups on the host kernel). */
class RuncPauseIT extends PauseContract {
    @Override
    protected String runtime() {
        return "runc";
    }
}
