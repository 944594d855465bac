package dev.stockade.it;

import dev.stockade.conformance.SecretsContract;

/** The conformance kit's {@link SecretsContract} against runc (namespaces, seccomp, cgroups on the host kernel). */
class RuncSecretsIT extends SecretsContract {
    @Override
    protected String runtime() {
        return "runc";
    }
}
