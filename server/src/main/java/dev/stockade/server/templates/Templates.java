package dev.stockade.server.templates;

import dev.stockade.server.store.Store;
import java.nio.file.Path;

/**
 * E2B's Template API's server side (issue 17), as the server wires it: the records, the build
 * executor and the uploads. Made once at server start (after the store, before the sandbox manager,
 * which resolves built templates through {@link #store()}); closed at stop.
 */
public record Templates(TemplateStore store, TemplateBuilds builds, TemplateFiles files) implements AutoCloseable {
    /** The templates of a data directory: builds a stopped server left running are marked failed now. */
    public static Templates open(Store store, Path dataDir) {
        TemplateStore s = new TemplateStore(store);
        return new Templates(s, new TemplateBuilds(s), new TemplateFiles(dataDir.resolve("template-files")));
    }

    @Override
    public void close() {
        builds.close();
    }
}
