package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.stockade.protocol.AgentException;
import dev.stockade.protocol.WatchEvent;
import dev.stockade.protocol.WatchRequest;
import dev.stockade.protocol.link.AgentClient;
import dev.stockade.protocol.link.EventStream;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The watch operation (inotify) against the real agent script. */
class AgentWatchTest {
    private AgentProcess agent;
    private AgentClient client;
    private final List<EventStream<WatchEvent>> open = new ArrayList<>();

    @BeforeEach
    void start() throws IOException {
        agent = AgentProcess.start();
        client = agent.client;
    }

    @AfterEach
    void stop() throws IOException {
        open.forEach(EventStream::close);
        agent.close();
    }

    private EventStream<WatchEvent> watch(String path, boolean recursive, boolean includeEntry) {
        EventStream<WatchEvent> s = client.watchDir(new WatchRequest(path, recursive, includeEntry, "user"));
        open.add(s);
        return s;
    }

    private void write(String path, String text) {
        client.writeFile(path, new ByteArrayInputStream(text.getBytes(StandardCharsets.UTF_8)), "user");
    }

    /** Reads changes as "kind name" into {@code seen} until one matches, within 5 s. */
    private static WatchEvent.Changed until(EventStream<WatchEvent> s, List<String> seen, Predicate<String> wanted) {
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (System.nanoTime() < deadline) {
            Optional<WatchEvent> ev = s.next(Duration.ofMillis(200));
            if (ev.isEmpty()) continue;
            if (!(ev.get() instanceof WatchEvent.Changed c)) fail("the watch ended: " + ev.get() + " after " + seen);
            else {
                String text = c.kind().wireName() + " " + c.name();
                seen.add(text);
                if (wanted.test(text)) return c;
            }
        }
        return fail("no matching change within 5 s; seen " + seen);
    }

    @Test
    void eachKindOfChangeNamedRelativeToTheDirectoryAndTheAgentsWritesAsWrites() throws IOException {
        client.makeDir("w", "user");
        EventStream<WatchEvent> s = watch("w", false, false);
        List<String> seen = new ArrayList<>();
        write("w/a.txt", "one");
        until(s, seen, "write a.txt"::equals);
        assertEquals(List.of("create a.txt", "chmod a.txt", "write a.txt"), seen,
                "a new file as envd's upload reports it: open(O_CREAT), chown, data");
        seen.clear();
        write("w/a.txt", "two");
        until(s, seen, "write a.txt"::equals);
        assertEquals(List.of("chmod a.txt", "write a.txt"), seen,
                "an overwrite is envd's in-place write (chown, data); the temporary file is never reported");
        seen.clear();
        Files.setPosixFilePermissions(agent.userHome.resolve("w/a.txt"), PosixFilePermissions.fromString("rw-------"));
        until(s, seen, "chmod a.txt"::equals);
        client.move("w/a.txt", "w/b.txt", "user");
        until(s, seen, "create b.txt"::equals);
        assertTrue(seen.contains("rename a.txt"), seen.toString());
        client.remove("w/b.txt", "user");
        until(s, seen, "remove b.txt"::equals);
        assertTrue(seen.stream().noneMatch(e -> e.contains("stockade-tmp")), seen.toString());
    }

    @Test
    void recursiveWatchesFollowNewDirectoriesAndIncludeEntries() {
        client.makeDir("t/old", "user");
        EventStream<WatchEvent> s = watch("t", true, true);
        List<String> seen = new ArrayList<>();
        write("t/old/f", "x");
        WatchEvent.Changed w = until(s, seen, "write old/f"::equals);
        assertNotNull(w.entry());
        assertEquals(agent.userHome.resolve("t/old/f").toString(), w.entry().path());
        assertEquals("file", w.entry().type());
        client.makeDir("t/new", "user");
        until(s, seen, "create new"::equals);
        write("t/new/g", "y");
        until(s, seen, "write new/g"::equals);
        client.remove("t/new/g", "user");
        WatchEvent.Changed removed = until(s, seen, "remove new/g"::equals);
        assertNull(removed.entry(), "a removed entry has no entry info");
    }

    @Test
    void aRemovedDirectoryEndsTheWatch() {
        client.makeDir("gone", "user");
        EventStream<WatchEvent> s = watch("gone", false, false);
        client.remove("gone", "user");
        List<String> seen = new ArrayList<>();
        until(s, seen, "remove ."::equals);
        Optional<WatchEvent> end = s.next(Duration.ofSeconds(5));
        assertTrue(end.isPresent() && end.get() instanceof WatchEvent.Ended, "ended: " + end);
    }

    @Test
    void refusalsHaveCodesAndWatchersAreBounded() throws Exception {
        assertEquals(AgentException.Code.NOT_FOUND,
                assertThrows(AgentException.class, () -> watch("missing", false, false)).code());
        write("file.txt", "x");
        assertEquals(AgentException.Code.NOT_A_DIRECTORY,
                assertThrows(AgentException.class, () -> watch("file.txt", false, false)).code());
        if (AgentProcess.ROOT) {
            Path closed = Files.createDirectories(agent.userHome.resolve("closed"));
            Files.setPosixFilePermissions(closed, PosixFilePermissions.fromString("rwx------"));
            assertEquals(AgentException.Code.PERMISSION_DENIED,
                    assertThrows(AgentException.class, () -> watch("closed", false, false)).code());
            assertEquals(AgentException.Code.PERMISSION_DENIED, assertThrows(AgentException.class,
                    () -> client.createWatcher(new WatchRequest("closed", false, false, "user"))).code());
        }
        client.makeDir("many", "user");
        for (int i = 0; i < 32; i++) watch("many", false, false);
        AgentException over = assertThrows(AgentException.class, () -> watch("many", false, false));
        assertEquals(AgentException.Code.INVALID_ARGUMENT, over.code());
        assertTrue(over.getMessage().contains("32 directory watchers"), over.getMessage());
        // Closing a stream ends its watch in the agent: the place is free again.
        open.removeFirst().close();
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (true) {
            try {
                watch("many", false, false);
                break;
            } catch (AgentException e) {
                if (System.nanoTime() > deadline) throw e;
                Thread.sleep(50);
            }
        }
    }

    @Test
    void thePolledFormKeepsChangesUntilAskedAndSharesTheLimit() throws Exception {
        client.makeDir("polled", "user");
        String id = client.createWatcher(new WatchRequest("polled", true, true, "user"));
        write("polled/a.txt", "x");
        client.makeDir("polled/sub", "user");
        write("polled/sub/b.txt", "y");
        List<String> seen = new ArrayList<>();
        long deadline = System.nanoTime() + Duration.ofSeconds(5).toNanos();
        while (!seen.contains("write sub/b.txt") && System.nanoTime() < deadline) {
            for (WatchEvent.Changed c : client.watcherEvents(id)) {
                seen.add(c.kind().wireName() + " " + c.name());
                if (c.kind() == WatchEvent.Kind.WRITE) assertNotNull(c.entry(), c.toString());
            }
            Thread.sleep(50);
        }
        assertTrue(seen.containsAll(List.of("create a.txt", "write a.txt", "create sub", "write sub/b.txt")), seen.toString());
        assertEquals(List.of(), client.watcherEvents(id), "nothing new since the last call");
        // Polled watchers count against the sandbox's 32 like streams do.
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 31; i++) ids.add(client.createWatcher(new WatchRequest("polled", false, false, "user")));
        assertEquals(AgentException.Code.INVALID_ARGUMENT, assertThrows(AgentException.class,
                () -> client.createWatcher(new WatchRequest("polled", false, false, "user"))).code());
        client.removeWatcher(id);
        assertEquals(AgentException.Code.NOT_FOUND, assertThrows(AgentException.class, () -> client.watcherEvents(id)).code());
        assertEquals(AgentException.Code.NOT_FOUND, assertThrows(AgentException.class, () -> client.removeWatcher(id)).code());
        ids.add(client.createWatcher(new WatchRequest("polled", false, false, "user")));
        for (String other : ids) client.removeWatcher(other);
    }

    @Test
    void lostEventsEndTheWatchWithAnError() throws IOException {
        Path dir = Files.createDirectories(agent.userHome.resolve("flood"));
        EventStream<WatchEvent> s = watch("flood", false, false);
        // Nothing is consumed meanwhile: the agent's queue (or the kernel's) overflows.
        for (int i = 0; i < 40_000; i++) Files.writeString(dir.resolve("f" + i), "x");
        AgentException e = assertThrows(AgentException.class, () -> {
            while (true) s.next(Duration.ofSeconds(5)).orElseThrow();
        });
        assertEquals(AgentException.Code.INTERNAL, e.code());
        assertTrue(e.getMessage().contains("events were lost"), e.getMessage());
    }
}
