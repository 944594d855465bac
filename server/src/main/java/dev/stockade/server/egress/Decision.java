package dev.stockade.server.egress;

import java.time.Instant;

/**
 * One egress decision: a sandbox tried to reach something and Stockade allowed or refused it.
 * Never carries secret values, request bodies or credentials: only where, who and why.
 *
 * @param time when the decision was taken
 * @param sandboxId the sandbox that asked (known from the socket it came in on, never from what it said)
 * @param pid the process inside the sandbox, as reported by the sandbox's relay; null if unknown
 * @param uid the uid inside the sandbox owning the connecting socket, as reported; null if unknown
 * @param kind {@code http} (plain request through the proxy), {@code connect} (a CONNECT tunnel),
 *     {@code https} (a request inside an intercepted tunnel), or {@code package} (the package index)
 * @param host the destination name (or IP literal) the sandbox asked for; for packages, the project
 * @param port the destination port (0 for packages)
 * @param address the address Stockade resolved and would connect to; null if none was reached
 * @param allowed whether the attempt went ahead
 * @param rule the policy entry that decided (e.g. {@code allow *.example.com}, {@code mode none},
 *     {@code private-range 10.0.0.0/8}, {@code host-address 203.0.113.9}, {@code package-allowlist})
 * @param reason a sentence a person can read
 */
public record Decision(Instant time, String sandboxId, Integer pid, Integer uid, String kind, String host, int port,
                       String address, boolean allowed, String rule, String reason) {}
