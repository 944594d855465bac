package dev.stockade.sdk.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.stockade.sdk.CreateOptions;
import dev.stockade.sdk.EntryInfo;
import dev.stockade.sdk.FileType;
import dev.stockade.sdk.Limits;
import dev.stockade.sdk.SandboxInfo;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

class WireTest {

    private static com.fasterxml.jackson.databind.JsonNode json(String s) {
        return Json.parse(s.getBytes(StandardCharsets.UTF_8), "test");
    }

    @Test
    void defaultCreateBodyNamesOnlyTheTemplate() {
        assertEquals("{\"templateID\":\"base\"}", Wire.createBody(CreateOptions.defaults()).toString());
    }

    @Test
    void fullCreateBodyUsesE2bNamesAndStockadeExtensions() {
        CreateOptions o = CreateOptions.builder()
                .template("code-interpreter-v1")
                .timeout(Duration.ofMillis(1500))
                .metadata("team", "a")
                .env("A", "1")
                .runtime("runsc")
                .limits(Limits.builder().memoryMB(256).cpus(0.5).commandTimeoutSeconds(30).build())
                .allowOut(List.of("pypi.org"))
                .build();
        assertEquals("{\"templateID\":\"code-interpreter-v1\",\"timeout\":2,\"metadata\":{\"team\":\"a\"},"
                + "\"envVars\":{\"A\":\"1\"},\"runtime\":\"runsc\","
                + "\"limits\":{\"memoryMB\":256,\"cpus\":0.5,\"commandTimeoutSeconds\":30},"
                + "\"network\":{\"allowOut\":[\"pypi.org\"],\"mode\":\"allowlist\"}}", Wire.createBody(o).toString());
    }

    @Test
    void sandboxInfoFromDetail() {
        SandboxInfo i = Wire.sandboxInfo(json("{\"sandboxID\":\"sb1\",\"templateID\":\"base\",\"alias\":null,"
                + "\"startedAt\":\"2026-11-27T10:00:00Z\",\"endAt\":\"2026-11-27T10:05:00Z\",\"state\":\"running\","
                + "\"cpuCount\":1,\"memoryMB\":512,\"envdVersion\":\"0.5.7\",\"metadata\":{\"k\":\"v\"},"
                + "\"runtime\":\"runc\",\"limits\":{\"memoryMB\":512,\"cpus\":1.0,\"pids\":256}}"));
        assertEquals("sb1", i.sandboxId());
        assertNull(i.alias());
        assertEquals(Instant.parse("2026-11-27T10:05:00Z"), i.endAt());
        assertEquals("v", i.metadata().get("k"));
        assertEquals(256, i.limits().pids());
        assertNull(i.limits().diskMB());
    }

    @Test
    void entryInfoInEveryShape() {
        EntryInfo rpc = Wire.entryInfo(json("{\"name\":\"a.txt\",\"type\":\"FILE_TYPE_FILE\",\"path\":\"/home/user/a.txt\","
                + "\"size\":\"12\",\"mode\":420,\"permissions\":\"-rw-r--r--\",\"owner\":\"user\",\"group\":\"user\","
                + "\"modifiedTime\":\"2026-11-27T10:00:00.123Z\"}"));
        assertEquals(FileType.FILE, rpc.type());
        assertEquals(12, rpc.size());
        assertEquals(420, rpc.mode());
        assertEquals(Instant.parse("2026-11-27T10:00:00.123Z"), rpc.modifiedTime());
        assertEquals(FileType.DIR, Wire.entryInfo(json("{\"path\":\"/d\",\"type\":\"FILE_TYPE_DIRECTORY\"}")).type());
        assertEquals(FileType.SYMLINK, Wire.entryInfo(json("{\"path\":\"/l\",\"type\":3}")).type());
        assertEquals(FileType.FILE, Wire.entryInfo(json("{\"path\":\"/f\",\"name\":\"f\",\"type\":\"file\"}")).type());
        assertNull(Wire.entryInfo(json("{\"path\":\"/x\",\"type\":\"FILE_TYPE_UNSPECIFIED\"}")).type());
    }

    @Test
    void secondsRoundUp() {
        assertEquals(1, Wire.seconds(Duration.ofMillis(1)));
        assertEquals(300, Wire.seconds(Duration.ofMinutes(5)));
    }

    @Test
    void pathSegmentsAndQueriesAreEncoded() {
        assertEquals("..%2Fadmin", Transport.segment("../admin"));
        assertEquals("?path=%2Fhome%2Fuser%2Fa%20b%26c.txt", Transport.query(java.util.Map.of("path", "/home/user/a b&c.txt")));
    }
}
