package dev.stockade.it;

import dev.stockade.conformance.FileMetadataContract;

/** The conformance kit's {@link FileMetadataContract} against runsc (gVisor: no user xattrs, so metadata is refused). */
class RunscFileMetadataIT extends FileMetadataContract {
    @Override
    protected String runtime() {
        return "runsc";
    }
}
