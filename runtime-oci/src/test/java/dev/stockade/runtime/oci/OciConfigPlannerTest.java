package dev.stockade.runtime.oci;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.stockade.runtime.Limits;
import dev.stockade.runtime.SandboxSpec;
import dev.stockade.runtime.Template;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The OCI plan as data, without root: pinned by a golden file (regenerate with
 * {@code -Dgolden.update=true} and review the diff), plus the properties a reviewer cares about.
 */
class OciConfigPlannerTest {
    static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
    static final Path GOLDEN = Path.of("src/test/resources/golden/config.json");

    static JsonNode plan() {
        OciConfigPlanner planner = new OciConfigPlanner(JSON, SeccompPolicy.loadPolicy(JSON), true);
        Template t = new Template("python", Path.of("/data/templates/python"), List.of(Path.of("/usr")));
        return planner.plan(new SandboxSpec("abc123", 2_097_152L, Path.of("/data/runtime/runc/sandboxes/abc123"), t,
                Path.of("/data/agent/0123456789abcdef"), new Limits(512, 1.5, 256, 1024, 16, 300),
                Path.of("/data/egress/abc123/proxy.sock"), new SandboxSpec.Warmup(true, List.of("numpy", "matplotlib.pyplot"))));
    }

    @Test
    void planMatchesTheGoldenFile() throws Exception {
        String actual = JSON.writeValueAsString(plan()) + "\n";
        if (Boolean.getBoolean("golden.update")) Files.writeString(GOLDEN, actual);
        assertEquals(Files.readString(GOLDEN), actual, "config.json plan changed: review, then run with -Dgolden.update=true");
    }

    @Test
    void planIsolatesAndLimits() {
        JsonNode c = plan();
        List<String> ns = c.at("/linux/namespaces").findValuesAsText("type");
        assertEquals(List.of("pid", "network", "ipc", "uts", "mount", "user", "cgroup"), ns);
        assertEquals(2_097_152L, c.at("/linux/uidMappings/0/hostID").asLong());
        assertEquals(65536, c.at("/linux/uidMappings/0/size").asInt());
        assertTrue(c.at("/process/noNewPrivileges").asBoolean());
        assertEquals(536_870_912L, c.at("/linux/resources/memory/limit").asLong());
        assertEquals(536_870_912L, c.at("/linux/resources/memory/swap").asLong(), "memory+swap == memory: no swap");
        // Headroom: each user's processes get pids (RLIMIT_NPROC, inherited from the agent); the cgroup
        // allows the agent's reserve on top, so user code at its limit never takes the agent's.
        assertEquals(OciConfigPlanner.API_USERS * 256 + OciConfigPlanner.AGENT_PIDS_RESERVE, c.at("/linux/resources/pids/limit").asInt());
        JsonNode nproc = null;
        for (JsonNode r : c.at("/process/rlimits")) if (r.get("type").asText().equals("RLIMIT_NPROC")) nproc = r;
        assertEquals("{\"type\":\"RLIMIT_NPROC\",\"hard\":256,\"soft\":256}", String.valueOf(nproc));
        assertFalse(c.at("/process/capabilities/bounding").toString().contains("SYS_RESOURCE"), "nobody inside may raise it");
        assertEquals(150_000, c.at("/linux/resources/cpu/quota").asLong());
        for (JsonNode m : c.get("mounts")) {
            if (m.get("destination").asText().equals("/usr") || m.get("destination").asText().equals("/sys")) {
                assertTrue(m.get("options").toString().contains("\"ro\""), m.toString());
            }
        }
        assertFalse(c.at("/process/capabilities/bounding").toString().contains("SYS_ADMIN"));
        assertEquals(0, c.at("/process/capabilities/ambient").size());
        assertTrue(c.at("/linux/seccomp/syscalls").toString().contains("\"mount\""));
    }

    @Test
    void aRuleWithoutAReasonIsRefused() throws Exception {
        JsonNode bad = JSON.readTree("{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrno\":\"ENOSYS\",\"defaultReason\":\"r\","
                + "\"deny\":[{\"syscalls\":[\"mount\"],\"errno\":\"EPERM\"}]}");
        assertThrows(IllegalStateException.class, () -> SeccompPolicy.toOci(JSON, bad));
    }
}
