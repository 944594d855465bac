package dev.stockade.server.core;

import dev.stockade.runtime.Limits;
import dev.stockade.server.egress.NetworkPolicy;
import dev.stockade.server.egress.SecretBinding;
import java.util.List;
import java.util.Map;

/**
 * A create request checked against the server's policy: every default resolved, every value within
 * bounds, the runtime offered and able to do what was asked. What {@link CreatePolicy} returns and
 * {@link SandboxManager} then carries out; nothing here has touched the host.
 *
 * @param templateId the template as the client named it ("base" when it named none)
 * @param alias the template the sandbox runs: a default template's name, or the seed snapshot's name or id
 * @param runtime the runtime it starts on (offered by this server)
 * @param seed the snapshot whose files it starts with, or null
 * @param processEnv envVars plus each secret's placeholder under the secret's name
 * @param idleTimeoutSeconds the idle policy (0: off)
 * @param defaultUser the user commands run as when they name none: a built template's (its USER), else null ("user")
 */
record CreatePlan(String templateId, String alias, String runtime, Snapshots.Snapshot seed, int timeoutSeconds,
                  int idleTimeoutSeconds, Limits limits, Map<String, String> metadata, Map<String, String> processEnv,
                  NetworkPolicy network, List<SecretBinding> secrets, boolean autoPause,
                  String defaultUser) {
    CreatePlan {
        metadata = Map.copyOf(metadata);
        processEnv = Map.copyOf(processEnv);
        secrets = List.copyOf(secrets);
    }

    /** What the create asked of the network and did not get (open access the server does not permit), or null. */
    NetworkPolicy.Downgrade networkDowngrade() {
        return network.downgrade();
    }

    /** Every default template is the same template on its runtime: a pooled sandbox can serve it. */
    boolean poolable() {
        return seed == null;
    }
}
