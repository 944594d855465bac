package dev.stockade.it;

import dev.stockade.conformance.LimitsContract;

/** The conformance kit's {@link LimitsContract} against runc (namespaces, seccomp, cgroups on the host kernel). */
class RuncLimitsIT extends LimitsContract {
    @Override
    protected String runtime() {
        return "runc";
    }
}
