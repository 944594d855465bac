package dev.stockade.runtime.oci;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.runtime.Limits;
import dev.stockade.runtime.SandboxSpec;
import dev.stockade.runtime.Template;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** runsc's plan as data, without root: what differs from runc's and why (docs/runtime-runsc.md). */
class RunscPlanTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static JsonNode plan(OciConfigPlanner planner) {
        Template t = new Template("python", Path.of("/data/templates/python"), List.of(Path.of("/usr")));
        return planner.plan(new SandboxSpec("abc123", 2_097_152L, Path.of("/data/runtime/runsc/sandboxes/abc123"), t,
                Path.of("/data/agent/0123456789abcdef"), new Limits(512, 1.5, 256, 1024, 16, 300),
                Path.of("/data/egress/abc123/proxy.sock"), SandboxSpec.Warmup.NONE));
    }

    static List<String> destinations(JsonNode c) {
        List<String> out = new ArrayList<>();
        c.get("mounts").forEach(m -> out.add(m.get("destination").asText()));
        return out;
    }

    @Test
    void runscPlanDropsWhatGvisorIgnoresAndAddsItsOverhead() {
        JsonNode c = plan(new OciConfigPlanner(JSON, RunscRuntime.PROFILE, true));
        assertTrue(c.at("/linux/seccomp").isMissingNode(), "no seccomp section: the sentry is the boundary");
        List<String> dests = destinations(c);
        assertFalse(dests.contains("/dev/mqueue"), "mqueue is ignored by runsc");
        assertFalse(dests.contains("/sys/fs/cgroup"), "the cgroup mount is ignored by runsc");
        for (JsonNode p : c.at("/linux/maskedPaths")) assertFalse(p.asText().startsWith("/proc/"), p.asText());
        assertTrue(c.at("/linux/maskedPaths").toString().contains("/sys/firmware"));
        // 512 MiB for the sandbox + the sentry's, gofer's and stubs' share of the host cgroup.
        assertEquals((512L + RunscRuntime.MEMORY_OVERHEAD_MB) << 20, c.at("/linux/resources/memory/limit").asLong());
        assertEquals(c.at("/linux/resources/memory/limit").asLong(), c.at("/linux/resources/memory/swap").asLong());
        assertEquals((OciConfigPlanner.API_USERS * 256L + OciConfigPlanner.AGENT_PIDS_RESERVE) * RunscRuntime.PIDS_PER_PROCESS + RunscRuntime.PIDS_OVERHEAD, c.at("/linux/resources/pids/limit").asLong());
        // The same isolation otherwise: user namespace range, capabilities, no_new_privs, binds.
        assertEquals(2_097_152L, c.at("/linux/uidMappings/0/hostID").asLong());
        assertTrue(c.at("/process/noNewPrivileges").asBoolean());
        assertTrue(dests.containsAll(List.of("/proc", "/dev", "/sys", "/usr", "/opt/stockade", "/run/stockade", "/run/stockade-egress")));
    }

    @Test
    void tmpIsTheOverlaysOwnTmpSoItCountsAgainstTheDisk() {
        JsonNode c = plan(new OciConfigPlanner(JSON, RunscRuntime.PROFILE, true));
        JsonNode tmp = null;
        for (JsonNode m : c.get("mounts")) if (m.get("destination").asText().equals("/tmp")) tmp = m;
        assertTrue(tmp != null, "an explicit /tmp, or runsc mounts an unlimited memory tmpfs there");
        assertEquals("/data/runtime/runsc/sandboxes/abc123/rootfs/tmp", tmp.get("source").asText());
        assertEquals("bind", tmp.get("type").asText());
    }

    @Test
    void runcPlanKeepsEverything() {
        JsonNode c = plan(new OciConfigPlanner(JSON, SeccompPolicy.loadPolicy(JSON), true));
        assertTrue(destinations(c).containsAll(List.of("/dev/mqueue", "/sys/fs/cgroup")));
        assertFalse(destinations(c).contains("/tmp"));
        assertTrue(c.at("/linux/maskedPaths").toString().contains("/proc/kcore"));
        assertEquals(512L << 20, c.at("/linux/resources/memory/limit").asLong());
        assertEquals(OciConfigPlanner.API_USERS * 256 + OciConfigPlanner.AGENT_PIDS_RESERVE, c.at("/linux/resources/pids/limit").asInt());
    }

    /** policy/runsc.json's compat entries and the library's definitions are the same set, each with a reason. */
    @Test
    void compatLibraryDefinesExactlyThePolicysFunctions() throws Exception {
        JsonNode policy;
        try (InputStream in = getClass().getResourceAsStream("/dev/stockade/policy/runsc.json")) {
            policy = JSON.readTree(in);
        }
        TreeSet<String> listed = new TreeSet<>();
        for (JsonNode rule : policy.get("compat")) {
            assertFalse(rule.path("reason").asText("").isBlank(), "a reason on every rule: " + rule);
            listed.add(rule.get("function").asText());
        }
        assertFalse(policy.at("/seccomp/applied").asBoolean(true));
        assertFalse(policy.at("/seccomp/reason").asText("").isBlank());
        String source;
        try (InputStream in = getClass().getResourceAsStream(RunscRuntime.COMPAT_SOURCE)) {
            source = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        TreeSet<String> defined = new TreeSet<>();
        Matcher m = Pattern.compile("(?m)^int (\\w+)\\(").matcher(source);
        while (m.find()) defined.add(m.group(1));
        assertEquals(listed, defined);
    }
}
