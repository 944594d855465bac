package dev.stockade.it;

import dev.stockade.conformance.NetworkContract;

/** The conformance kit's {@link NetworkContract} against runc (namespaces, seccomp, cgroups on the host kernel). */
class RuncNetworkIT extends NetworkContract {
    @Override
    protected String runtime() {
        return "runc";
    }
}
