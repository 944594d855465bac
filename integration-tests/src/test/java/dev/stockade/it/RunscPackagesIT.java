package dev.stockade.it;

import dev.stockade.conformance.PackagesContract;

/** The conformance kit's {@link PackagesContract} against runsc (gVisor: a user-space kernel). */
class RunscPackagesIT extends PackagesContract {
    @Override
    protected String runtime() {
        return "runsc";
    }
}
