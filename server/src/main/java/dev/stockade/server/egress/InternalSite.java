package dev.stockade.server.egress;

import java.io.IOException;

/**
 * A site the egress proxy serves itself instead of connecting anywhere: the package index at
 * {@code http://pypi.stockade/}. Reached only through the sandbox's own proxy socket, so the
 * proxy knows which sandbox asks; the site never sees the sandbox's network.
 */
public interface InternalSite {
    /** The host name the site answers for, lowercase, e.g. {@code pypi.stockade}. */
    String host();

    /**
     * Answers one request. Must not throw for bad input: answer 4xx instead.
     *
     * @param sandboxId the sandbox asking
     * @param request the request (its body, if any, is not forwarded: sites answer GET and HEAD)
     * @param sink where to record decisions (e.g. a refused package)
     */
    InternalResponse handle(String sandboxId, InternalRequest request, DecisionSink sink) throws IOException;
}
