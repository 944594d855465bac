package dev.stockade.it;

import dev.stockade.conformance.FileMetadataContract;

/** The conformance kit's {@link FileMetadataContract} against runc (user xattrs on the overlay's tmpfs upper). */
class RuncFileMetadataIT extends FileMetadataContract {
    @Override
    protected String runtime() {
        return "runc";
    }
}
