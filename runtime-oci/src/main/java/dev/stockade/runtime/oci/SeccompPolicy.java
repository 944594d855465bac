package dev.stockade.runtime.oci;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.util.Map;

/**
 * Turns policy/seccomp.json (reviewed data, a reason on every rule) into the OCI seccomp section.
 * Pure: no host access; pinned by a golden test.
 */
final class SeccompPolicy {
    static final String RESOURCE = "/dev/stockade/policy/seccomp.json";

    private static final Map<String, Long> CLONE_FLAGS = Map.of(
            "CLONE_NEWTIME", 0x80L,
            "CLONE_NEWNS", 0x20000L,
            "CLONE_NEWCGROUP", 0x02000000L,
            "CLONE_NEWUTS", 0x04000000L,
            "CLONE_NEWIPC", 0x08000000L,
            "CLONE_NEWUSER", 0x10000000L,
            "CLONE_NEWPID", 0x20000000L,
            "CLONE_NEWNET", 0x40000000L);
    private static final Map<String, Integer> ERRNOS = Map.of("EPERM", 1, "ENOSYS", 38);

    private SeccompPolicy() {}

    static JsonNode loadPolicy(ObjectMapper json) {
        try (InputStream in = SeccompPolicy.class.getResourceAsStream(RESOURCE)) {
            if (in == null) throw new IllegalStateException("seccomp policy missing from the classpath: " + RESOURCE);
            return json.readTree(in);
        } catch (IOException e) {
            throw new IllegalStateException("seccomp policy unreadable: " + e.getMessage(), e);
        }
    }

    /** The OCI {@code linux.seccomp} object for {@code policy}. */
    static ObjectNode toOci(ObjectMapper json, JsonNode policy) {
        ObjectNode out = json.createObjectNode();
        out.put("defaultAction", policy.path("defaultAction").asText("SCMP_ACT_ALLOW"));
        out.set("architectures", policy.path("architectures").deepCopy());
        ArrayNode syscalls = out.putArray("syscalls");
        for (JsonNode rule : policy.path("rules")) {
            if (!rule.hasNonNull("reason") || rule.get("reason").asText().isBlank()) {
                throw new IllegalStateException("seccomp rule without a reason: " + rule);
            }
            String errnoName = rule.path("errno").asText("EPERM");
            Integer errno = ERRNOS.get(errnoName);
            if (errno == null) throw new IllegalStateException("seccomp rule with unknown errno " + errnoName);
            if (rule.has("argMask")) {
                // One OCI rule per flag: (arg0 & flag) == flag denies. Rules' args are ANDed, so
                // "any of the flags" needs separate rules.
                for (JsonNode flag : rule.get("argMask")) {
                    Long value = CLONE_FLAGS.get(flag.asText());
                    if (value == null) throw new IllegalStateException("unknown clone flag " + flag);
                    ObjectNode s = syscallRule(json, rule, errno);
                    ObjectNode arg = s.putArray("args").addObject();
                    arg.put("index", 0);
                    arg.put("value", value);
                    arg.put("valueTwo", value);
                    arg.put("op", "SCMP_CMP_MASKED_EQ");
                    syscalls.add(s);
                }
            } else if (rule.has("argEquals")) {
                JsonNode eq = rule.get("argEquals");
                for (JsonNode v : eq.get("values")) {
                    ObjectNode s = syscallRule(json, rule, errno);
                    ObjectNode arg = s.putArray("args").addObject();
                    arg.put("index", eq.get("index").asInt());
                    arg.put("value", v.asLong());
                    arg.put("op", "SCMP_CMP_EQ");
                    syscalls.add(s);
                }
            } else {
                syscalls.add(syscallRule(json, rule, errno));
            }
        }
        return out;
    }

    private static ObjectNode syscallRule(ObjectMapper json, JsonNode rule, int errno) {
        ObjectNode s = json.createObjectNode();
        s.set("names", rule.get("syscalls").deepCopy());
        s.put("action", "SCMP_ACT_ERRNO");
        s.put("errnoRet", errno);
        return s;
    }
}
