package dev.stockade.it;

import dev.stockade.conformance.IsolationContract;

/** The conformance kit's {@link IsolationContract} against runc (namespaces, seccomp, cgroups on the host kernel). */
class RuncIsolationIT extends IsolationContract {
    @Override
    protected String runtime() {
        return "runc";
    }
}
