package dev.stockade.server.templates;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What a ready build leaves for the sandboxes created from it, stored as JSON in its
 * template_builds row: the built-in template it runs on, the environment, working directory and
 * user its ENV/WORKDIR/USER steps set, and the start and ready commands (recorded, not run yet).
 * Immutable; made by {@link TemplateBuilds}, read by {@link TemplateStore#resolve}.
 *
 * @param workdir absolute; never null once built (the user's home when no WORKDIR set one)
 */
public record BuildConfig(String base, Map<String, String> env, String workdir, String user, String startCmd, String readyCmd) {
    private static final ObjectMapper JSON = new ObjectMapper();

    public BuildConfig {
        env = Collections.unmodifiableMap(new LinkedHashMap<>(env));
    }

    /** The home directory of the two users a template may run as. */
    static String home(String user) {
        return user.equals("root") ? "/root" : "/home/" + user;
    }

    String toJson() {
        ObjectNode n = JSON.createObjectNode();
        n.put("base", base);
        env.forEach(n.putObject("env")::put);
        if (!n.has("env")) n.putObject("env");
        n.put("workdir", workdir);
        n.put("user", user);
        if (startCmd != null) n.put("startCmd", startCmd);
        if (readyCmd != null) n.put("readyCmd", readyCmd);
        return n.toString();
    }

    static BuildConfig fromJson(String text) {
        try {
            JsonNode n = JSON.readTree(text);
            Map<String, String> env = new LinkedHashMap<>();
            n.path("env").properties().forEach(e -> env.put(e.getKey(), e.getValue().asText()));
            return new BuildConfig(n.path("base").asText(), env, n.path("workdir").asText(), n.path("user").asText(),
                    n.hasNonNull("startCmd") ? n.get("startCmd").asText() : null,
                    n.hasNonNull("readyCmd") ? n.get("readyCmd").asText() : null);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("bug: a stored build config is not JSON: " + e.getMessage(), e);
        }
    }
}
