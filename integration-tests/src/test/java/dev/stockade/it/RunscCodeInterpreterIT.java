package dev.stockade.it;

import dev.stockade.conformance.CodeInterpreterContract;

/** The conformance kit's {@link CodeInterpreterContract} against runsc (gVisor: a user-space kernel). */
class RunscCodeInterpreterIT extends CodeInterpreterContract {
    @Override
    protected String runtime() {
        return "runsc";
    }
}
