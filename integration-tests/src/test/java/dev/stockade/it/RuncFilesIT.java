package dev.stockade.it;

import dev.stockade.conformance.FilesContract;

/** The conformance kit's {@link FilesContract} against runc (namespaces, seccomp, cgroups on the host kernel). */
class RuncFilesIT extends FilesContract {
    @Override
    protected String runtime() {
        return "runc";
    }
}
