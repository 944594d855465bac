package dev.stockade.server.templates;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.server.store.Store;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The template records and the build executor without a server: a restart marks builds that were
 * running as failed, ENV values expand as E2B's builder expands them, the log pages and is bounded,
 * and a ready build's tags resolve (SPECIFICATION S17.*a).
 */
class TemplateBuildsTest {
    @TempDir
    Path dir;

    @Test
    void aBuildRunningWhenTheServerStoppedIsAnErrorAfterTheRestart() {
        String buildId;
        String templateId;
        try (Store store = Store.open(dir)) {
            TemplateStore s = new TemplateStore(store);
            TemplateStore.Build b = s.newBuild("t1", "tpl", List.of("default"));
            s.start(b.id(), "{}"); // started, never finished: the server stopped mid-build
            buildId = b.id();
            templateId = b.templateId();
            TemplateStore.Build waiting = s.newBuild("t1", "tpl", List.of("default"));
            assertEquals(TemplateStore.Status.WAITING, waiting.status());
        }
        try (Store store = Store.open(dir)) {
            TemplateStore s = new TemplateStore(store);
            try (TemplateBuilds builds = new TemplateBuilds(s)) {
                TemplateStore.Build b = s.build(templateId, buildId);
                assertEquals(TemplateStore.Status.ERROR, b.status());
                assertTrue(b.reason().contains(TemplateBuilds.RESTARTED), b.reason());
                assertEquals(1, s.builds(templateId).stream().filter(x -> x.status() == TemplateStore.Status.WAITING).count(),
                        "a build not started yet stays waiting");
                assertNull(builds.live(buildId));
            }
        }
    }

    @Test
    void aReadyBuildIsResolvedByItsTagsForItsTenantOnly() throws Exception {
        try (Store store = Store.open(dir)) {
            TemplateStore s = new TemplateStore(store);
            try (TemplateBuilds builds = new TemplateBuilds(s)) {
                TemplateStore.Build b = s.newBuild("t1", "tpl", List.of("default", "v1"));
                builds.start("t1", b.id(), new TemplateBuilds.Start(null, "base-hardened", List.of(
                        new TemplateBuilds.Step("ENV", List.of("A", "1")), new TemplateBuilds.Step("USER", List.of("root")),
                        new TemplateBuilds.Step("WORKDIR", List.of("x/../y"))), null, null), "{}");
                for (int i = 0; i < 100 && s.build(b.templateId(), b.id()).status() != TemplateStore.Status.READY; i++) Thread.sleep(20);
                var r = s.resolve("t1", "tpl:v1");
                assertEquals("base-hardened", r.base());
                assertEquals(Map.of("A", "1"), r.env());
                assertEquals("/root/y", r.workdir());
                assertEquals("root", r.user());
                assertEquals(b.templateId(), s.resolve("t1", "tpl").templateId());
                assertNull(s.resolve("t2", "tpl"), "another tenant's template is not found");
                assertNull(s.resolve("t1", "tpl:nope"));
            }
        }
    }

    @Test
    void envValuesExpandVariablesSoFarButNeverCommands() {
        Map<String, String> env = new LinkedHashMap<>(Map.of("A", "1", "JAVA_VERSION", "21"));
        assertEquals("1-x", TemplateBuilds.expand("$A-x", env, "user"));
        assertEquals("/usr/lib/jvm/jdk-21", TemplateBuilds.expand("/usr/lib/jvm/jdk-${JAVA_VERSION}", env, "user"));
        assertEquals("", TemplateBuilds.expand("$UNSET", env, "user"));
        assertEquals("/root:root", TemplateBuilds.expand("$HOME:$USER", env, "root"));
        assertEquals("$(id) `id` $ $1 ${A", TemplateBuilds.expand("$(id) `id` $ $1 ${A", env, "user"));
        assertTrue(TemplateBuilds.expand("$PATH:/opt", env, "user").endsWith(":/usr/bin:/sbin:/bin:/opt"));
    }

    @Test
    void theLogPagesFromAnOffsetAndIsBounded() {
        BuildLog log = new BuildLog();
        for (int i = 0; i < BuildLog.MAX + 50; i++) log.add(i % 2 == 0 ? "info" : "warn", "1", "line " + i);
        assertEquals(100, log.page(0, 100, null).size());
        assertEquals("line 5", log.page(5, 1, null).getFirst().message());
        assertEquals(List.of(), log.page(BuildLog.MAX, 100, null));
        assertEquals("line 3", log.page(1, 1, "warn").getFirst().message(), "the offset counts the filtered entries");
        assertTrue(log.page(BuildLog.MAX - 1, 1, null).getFirst().message().contains("at most"));
        BuildLog copy = BuildLog.fromJson(log.toJson());
        assertEquals(log.page(17, 3, null), copy.page(17, 3, null));
    }
}
