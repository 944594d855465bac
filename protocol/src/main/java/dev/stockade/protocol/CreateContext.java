package dev.stockade.protocol;

import java.util.Map;

/**
 * A new interpreter context (see docs/agent-protocol.md, "Code contexts"). {@code language} null
 * means "python"; "bash" is a persistent shell (anything else is INVALID_ARGUMENT). {@code cwd} null
 * means the user's home (relative paths and {@code ~} resolve against it). {@code envs} are added to
 * the context's environment for its whole life (null: none). {@code user} is "user" or "root", null
 * meaning "user".
 */
public record CreateContext(String language, String cwd, Map<String, String> envs, String user) {
    public CreateContext {
        envs = envs == null ? Map.of() : Map.copyOf(envs);
    }

    /** The default: python, in the user's home, as "user", with no extra environment. */
    public static CreateContext python() {
        return new CreateContext("python", null, Map.of(), null);
    }
}
