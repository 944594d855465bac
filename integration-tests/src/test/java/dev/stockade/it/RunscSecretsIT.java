package dev.stockade.it;

import dev.stockade.conformance.SecretsContract;

/** The conformance kit's {@link SecretsContract} against runsc (gVisor: a user-space kernel). */
class RunscSecretsIT extends SecretsContract {
    @Override
    protected String runtime() {
        return "runsc";
    }
}
