package dev.stockade.it;

import dev.stockade.conformance.WatchContract;

/** The conformance kit's {@link WatchContract} against runc (namespaces, seccomp, cgroups on the host kernel). */
class RuncWatchIT extends WatchContract {
    @Override
    protected String runtime() {
        return "runc";
    }
}
