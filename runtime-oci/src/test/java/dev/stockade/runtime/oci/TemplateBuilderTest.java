package dev.stockade.runtime.oci;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The default template's /etc: what is generated matches the reviewed list, and pip is set up. */
class TemplateBuilderTest {
    private Path tmp;

    @BeforeEach
    void createDir() throws Exception {
        tmp = Files.createTempDirectory("stockade-template-test");
    }

    @AfterEach
    void deleteDir() throws Exception {
        TemplateBuilder.deleteTree(tmp); // removes the template's links without following them
    }

    private final ObjectMapper json = new ObjectMapper();

    private JsonNode policy() throws Exception {
        try (InputStream in = getClass().getResourceAsStream("/dev/stockade/policy/template-etc.json")) {
            return json.readTree(in);
        }
    }

    @Test
    void everyGeneratedFileIsListedWithAReasonAndNothingElseAppears() throws Exception {
        Path root = tmp.resolve("python");
        TemplateBuilder.build(root, json);
        JsonNode policy = policy();
        Set<String> copied = new HashSet<>();
        policy.path("copyFromHost").forEach(e -> copied.add(e.get("path").asText()));
        Set<String> listed = new TreeSet<>();
        for (JsonNode entry : policy.path("generated")) {
            assertTrue(!entry.path("reason").asText().isBlank(), "a reason for " + entry);
            listed.add(entry.get("path").asText());
        }
        Set<String> generated = new TreeSet<>();
        try (Stream<Path> entries = Files.list(root.resolve("etc"))) {
            entries.map(p -> p.getFileName().toString()).filter(n -> !copied.contains(n)).forEach(generated::add);
        }
        assertEquals(listed, generated, "policy/template-etc.json must list exactly what TemplateBuilder writes");
        assertEquals(TemplateBuilder.VERSION, Files.readString(root.resolve(".stockade-template")).strip());
    }

    @Test
    void pipInstallsFromTheProxiedIndexIntoTheUsersHome() throws Exception {
        Path root = tmp.resolve("python");
        TemplateBuilder.build(root, json);
        Path pipConf = root.resolve("etc/pip.conf");
        String conf = Files.readString(pipConf);
        assertEquals(TemplateBuilder.PIP_CONF, conf);
        assertEquals("rw-r--r--", java.nio.file.attribute.PosixFilePermissions.toString(
                Files.getPosixFilePermissions(pipConf)));
        for (String line : new String[] {"[global]", "index-url = http://pypi.stockade/simple/",
                "trusted-host = pypi.stockade", "break-system-packages = true", "disable-pip-version-check = true",
                "no-input = true", "timeout = 30"}) {
            assertTrue(conf.lines().anyMatch(line::equals), "pip.conf lacks: " + line);
        }

        // pip itself reads the file as meant (when the host has pip to ask).
        Process probe = new ProcessBuilder("/usr/bin/python3", "-m", "pip", "--version").redirectErrorStream(true).start();
        probe.getInputStream().readAllBytes();
        assumeTrue(probe.waitFor(30, TimeUnit.SECONDS) && probe.exitValue() == 0, "no pip on this host");
        ProcessBuilder builder = new ProcessBuilder("/usr/bin/python3", "-m", "pip", "config", "list")
                .redirectErrorStream(true);
        builder.environment().put("PIP_CONFIG_FILE", pipConf.toString());
        builder.environment().keySet().removeIf(k -> k.startsWith("PIP_") && !k.equals("PIP_CONFIG_FILE"));
        Process pip = builder.start();
        String out = new String(pip.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(pip.waitFor(30, TimeUnit.SECONDS));
        assertEquals(0, pip.exitValue(), out);
        for (String expected : new String[] {"global.index-url='http://pypi.stockade/simple/'",
                "global.trusted-host='pypi.stockade'", "global.break-system-packages='true'",
                "global.disable-pip-version-check='true'", "global.no-input='true'", "global.timeout='30'"}) {
            assertTrue(out.contains(expected), "pip config list lacks " + expected + ":\n" + out);
        }
    }
}
