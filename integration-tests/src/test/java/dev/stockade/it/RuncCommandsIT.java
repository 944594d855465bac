package dev.stockade.it;

import dev.stockade.conformance.CommandsContract;

/** The conformance kit's {@link CommandsContract} against runc (namespaces, seccomp, cgroups on the host kernel). */
class RuncCommandsIT extends CommandsContract {
    @Override
    protected String runtime() {
        return "runc";
    }
}
