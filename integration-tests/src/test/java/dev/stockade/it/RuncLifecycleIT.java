package dev.stockade.it;

import dev.stockade.conformance.LifecycleContract;

/** The conformance kit's {@link LifecycleContract} against runc (namespaces, seccomp, cgroups on the host kernel). */
class RuncLifecycleIT extends LifecycleContract {
    @Override
    protected String runtime() {
        return "runc";
    }
}
