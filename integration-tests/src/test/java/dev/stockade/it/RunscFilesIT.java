package dev.stockade.it;

import dev.stockade.conformance.FilesContract;

/** The conformance kit's {@link FilesContract} against runsc (gVisor: a user-space kernel). */
class RunscFilesIT extends FilesContract {
    @Override
    protected String runtime() {
        return "runsc";
    }
}
