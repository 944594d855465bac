package dev.stockade.server.egress;

import java.util.Map;

/**
 * A request to an {@link InternalSite}.
 *
 * @param method HTTP method, upper case
 * @param target the origin-form target: path and query, starting with '/'
 * @param headers request headers, names in lower case (last value wins)
 */
public record InternalRequest(String method, String target, Map<String, String> headers) {
    public InternalRequest {
        headers = Map.copyOf(headers);
    }
}
