package dev.stockade.runtime.oci;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Turns policy/seccomp.json (reviewed data: an allow-list, a reason on every group and every denial)
 * into the OCI seccomp section. RuncRuntime calls it once, when its planner is built; pure (no host
 * access) and pinned by a golden test. It refuses a policy it cannot vouch for rather than let runc
 * guess: a rule without a reason, a name that is no system call (runc would skip it with a warning,
 * silently allowing or denying nothing), a call both allowed and denied unconditionally, a default
 * that allows.
 */
final class SeccompPolicy {
    static final String RESOURCE = "/dev/stockade/policy/seccomp.json";
    static final String NAMES_RESOURCE = "/dev/stockade/policy/syscall-names.txt";

    private static final Map<String, Long> CLONE_FLAGS = Map.of(
            "CLONE_NEWNS", 0x20000L,
            "CLONE_NEWCGROUP", 0x02000000L,
            "CLONE_NEWUTS", 0x04000000L,
            "CLONE_NEWIPC", 0x08000000L,
            "CLONE_NEWUSER", 0x10000000L,
            "CLONE_NEWPID", 0x20000000L,
            "CLONE_NEWNET", 0x40000000L);
    private static final Map<String, Integer> ERRNOS = Map.of("EPERM", 1, "ENOSYS", 38);
    /** The kernel reads int and unsigned int arguments (ioctl's command, socket's family) as 32 bits. */
    private static final long LOW_32 = 0xFFFF_FFFFL;

    private SeccompPolicy() {}

    static JsonNode loadPolicy(ObjectMapper json) {
        try (InputStream in = SeccompPolicy.class.getResourceAsStream(RESOURCE)) {
            if (in == null) throw new IllegalStateException("seccomp policy missing from the classpath: " + RESOURCE);
            return json.readTree(in);
        } catch (IOException e) {
            throw new IllegalStateException("seccomp policy unreadable: " + e.getMessage(), e);
        }
    }

    /** Every system call name of the kernels Stockade supports (policy/syscall-names.txt). */
    static Set<String> knownNames() {
        try (InputStream in = SeccompPolicy.class.getResourceAsStream(NAMES_RESOURCE)) {
            if (in == null) throw new IllegalStateException("syscall names missing from the classpath: " + NAMES_RESOURCE);
            Set<String> names = new HashSet<>();
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                String name = line.strip();
                if (!name.isEmpty() && !name.startsWith("#")) names.add(name);
            }
            return names;
        } catch (IOException e) {
            throw new IllegalStateException("syscall names unreadable: " + e.getMessage(), e);
        }
    }

    /** The OCI {@code linux.seccomp} object for {@code policy}. */
    static ObjectNode toOci(ObjectMapper json, JsonNode policy) {
        String defaultAction = policy.path("defaultAction").asText("");
        if (!defaultAction.equals("SCMP_ACT_ERRNO")) {
            throw new IllegalStateException("seccomp default must refuse (SCMP_ACT_ERRNO), not " + defaultAction);
        }
        requireReason(policy, "defaultReason");
        Set<String> known = knownNames();
        List<JsonNode> allow = rules(policy, "allow");
        List<JsonNode> deny = rules(policy, "deny");
        Map<String, Integer> deniedArgIndex = checkOverlaps(allow, deny, known);

        ObjectNode out = json.createObjectNode();
        out.put("defaultAction", defaultAction);
        out.put("defaultErrnoRet", errno(policy.path("defaultErrno").asText("")));
        out.set("architectures", policy.path("architectures").deepCopy());
        ArrayNode syscalls = out.putArray("syscalls");
        for (JsonNode rule : deny) emit(json, syscalls, rule, false, deniedArgIndex);
        for (JsonNode rule : allow) emit(json, syscalls, rule, true, deniedArgIndex);
        return out;
    }

    private static List<JsonNode> rules(JsonNode policy, String field) {
        List<JsonNode> rules = new ArrayList<>();
        for (JsonNode rule : policy.path(field)) {
            requireReason(rule, "reason");
            if (!rule.path("syscalls").isArray() || rule.get("syscalls").isEmpty()) {
                throw new IllegalStateException("seccomp rule without syscalls: " + rule);
            }
            rules.add(rule);
        }
        return rules;
    }

    private static void requireReason(JsonNode node, String field) {
        if (!node.hasNonNull(field) || node.get(field).asText().isBlank()) {
            throw new IllegalStateException("seccomp rule without a reason: " + node);
        }
    }

    private static boolean conditional(JsonNode rule) {
        return rule.has("argIn") || rule.has("argFlagsClear") || rule.has("argFlagsSet");
    }

    private static int argIndex(JsonNode rule) {
        for (String f : List.of("argIn", "argFlagsClear", "argFlagsSet")) if (rule.has(f)) return rule.get(f).path("index").asInt();
        throw new IllegalStateException("unconditional rule has no argument index: " + rule);
    }

    /**
     * Names each syscall once per kind and refuses contradictions. Returns, for every syscall allowed
     * unconditionally but denied for some argument values, the index of that argument: libseccomp lets an
     * unconditional allow override conditional denials of the same call, so such an allow is emitted with
     * an always-true comparison on that argument instead (see {@link #emit}).
     */
    private static Map<String, Integer> checkOverlaps(List<JsonNode> allow, List<JsonNode> deny, Set<String> known) {
        Set<String> allowedAlways = new HashSet<>();
        Set<String> allowedIf = new HashSet<>();
        for (JsonNode rule : allow) {
            if (rule.has("errno")) throw new IllegalStateException("an allow rule has no errno: " + rule);
            for (JsonNode n : rule.get("syscalls")) {
                String name = checkedName(n, known);
                if (allowedAlways.contains(name) || (!conditional(rule) && allowedIf.contains(name))) {
                    throw new IllegalStateException("syscall allowed twice: " + name);
                }
                (conditional(rule) ? allowedIf : allowedAlways).add(name);
            }
        }
        Set<String> deniedAlways = new HashSet<>();
        Map<String, Integer> deniedIf = new HashMap<>();
        Set<String> both = new TreeSet<>();
        for (JsonNode rule : deny) {
            errno(rule.path("errno").asText(""));
            for (JsonNode n : rule.get("syscalls")) {
                String name = checkedName(n, known);
                if (!conditional(rule)) {
                    if (!deniedAlways.add(name)) throw new IllegalStateException("syscall denied twice: " + name);
                    if (allowedAlways.contains(name) || allowedIf.contains(name)) both.add(name);
                } else {
                    Integer previous = deniedIf.put(name, argIndex(rule));
                    if (previous != null && previous != argIndex(rule)) {
                        throw new IllegalStateException("conditional denials of " + name + " on two arguments");
                    }
                }
            }
        }
        for (String name : deniedIf.keySet()) if (deniedAlways.contains(name)) both.add(name);
        if (!both.isEmpty()) throw new IllegalStateException("syscalls both allowed and denied: " + both);
        Map<String, Integer> guard = new HashMap<>();
        for (var e : deniedIf.entrySet()) if (allowedAlways.contains(e.getKey())) guard.put(e.getKey(), e.getValue());
        return guard;
    }

    private static String checkedName(JsonNode n, Set<String> known) {
        String name = n.asText();
        if (!known.contains(name)) throw new IllegalStateException("not a system call name: " + name);
        return name;
    }

    private static int errno(String name) {
        Integer errno = ERRNOS.get(name);
        if (errno == null) throw new IllegalStateException("seccomp rule with unknown errno " + name);
        return errno;
    }

    private static void emit(ObjectMapper json, ArrayNode out, JsonNode rule, boolean allow, Map<String, Integer> guard) {
        if (rule.has("argFlagsClear")) {
            // Allowed when none of the flags is set: (arg & OR(flags)) == 0.
            long mask = 0;
            for (JsonNode flag : rule.get("argFlagsClear").get("flags")) mask |= cloneFlag(flag);
            out.add(rule(json, rule, rule.get("syscalls"), allow, arg(json, rule.get("argFlagsClear"), "SCMP_CMP_MASKED_EQ", mask, 0L)));
        } else if (rule.has("argFlagsSet")) {
            // One OCI rule per flag: a rule's comparisons are ANDed, so "any of the flags" needs separate rules.
            for (JsonNode flag : rule.get("argFlagsSet").get("flags")) {
                long value = cloneFlag(flag);
                out.add(rule(json, rule, rule.get("syscalls"), allow, arg(json, rule.get("argFlagsSet"), "SCMP_CMP_MASKED_EQ", value, value)));
            }
        } else if (rule.has("argIn")) {
            // One rule per value. An allowed value must match all 64 bits (high bits set: not allowed); a
            // denied one matches on the low 32 bits the kernel reads, so high bits cannot dodge the denial.
            JsonNode in = rule.get("argIn");
            for (JsonNode v : in.get("values")) {
                ObjectNode arg = allow ? arg(json, in, "SCMP_CMP_EQ", v.asLong(), null) : arg(json, in, "SCMP_CMP_MASKED_EQ", LOW_32, v.asLong());
                out.add(rule(json, rule, rule.get("syscalls"), allow, arg));
            }
        } else {
            ArrayNode plain = json.createArrayNode();
            for (JsonNode n : rule.get("syscalls")) {
                Integer index = allow ? guard.get(n.asText()) : null;
                if (index == null) {
                    plain.add(n.asText());
                } else {
                    // arg >= 0 always holds: the call stays allowed, but as a conditional rule, so
                    // libseccomp keeps the conditional denials of the same call ahead of it.
                    ObjectNode always = json.createObjectNode().put("index", index).put("value", 0L).put("op", "SCMP_CMP_GE");
                    out.add(rule(json, rule, json.createArrayNode().add(n.asText()), true, always));
                }
            }
            if (!plain.isEmpty()) out.add(rule(json, rule, plain, allow, null));
        }
    }

    private static long cloneFlag(JsonNode flag) {
        Long value = CLONE_FLAGS.get(flag.asText());
        if (value == null) throw new IllegalStateException("unknown clone flag " + flag);
        return value;
    }

    private static ObjectNode arg(ObjectMapper json, JsonNode spec, String op, long value, Long valueTwo) {
        ObjectNode arg = json.createObjectNode();
        arg.put("index", spec.path("index").asInt());
        arg.put("value", value);
        if (valueTwo != null) arg.put("valueTwo", valueTwo);
        arg.put("op", op);
        return arg;
    }

    private static ObjectNode rule(ObjectMapper json, JsonNode rule, JsonNode names, boolean allow, ObjectNode arg) {
        ObjectNode s = json.createObjectNode();
        s.set("names", names.deepCopy());
        if (allow) {
            s.put("action", "SCMP_ACT_ALLOW");
        } else {
            s.put("action", "SCMP_ACT_ERRNO");
            s.put("errnoRet", errno(rule.path("errno").asText("")));
        }
        if (arg != null) s.putArray("args").add(arg);
        return s;
    }
}
