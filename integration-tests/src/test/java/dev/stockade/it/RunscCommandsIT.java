package dev.stockade.it;

import dev.stockade.conformance.CommandsContract;

/** The conformance kit's {@link CommandsContract} against runsc (gVisor: a user-space kernel). */
class RunscCommandsIT extends CommandsContract {
    @Override
    protected String runtime() {
        return "runsc";
    }
}
