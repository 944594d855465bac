package dev.stockade.it;

import dev.stockade.conformance.CodeInterpreterContract;

/** The conformance kit's {@link CodeInterpreterContract} against runc (namespaces, seccomp, cgroups on the host kernel). */
class RuncCodeInterpreterIT extends CodeInterpreterContract {
    @Override
    protected String runtime() {
        return "runc";
    }
}
