package dev.stockade.it;

import dev.stockade.conformance.PackagesContract;

/** The conformance kit's {@link PackagesContract} against runc (namespaces, seccomp, cgroups on the host kernel). */
class RuncPackagesIT extends PackagesContract {
    @Override
    protected String runtime() {
        return "runc";
    }
}
