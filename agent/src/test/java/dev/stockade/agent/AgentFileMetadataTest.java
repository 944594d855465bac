package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.protocol.AgentException;
import dev.stockade.protocol.EntryInfo;
import dev.stockade.protocol.FileMetadata;
import dev.stockade.protocol.link.AgentClient;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.UserDefinedFileAttributeView;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * File metadata against the real agent script: pairs stored on write as {@code user.e2b.*}
 * extended attributes of the file (here on the test machine's filesystem), read back by stat, list,
 * move and write, replaced by an overwrite, attributes set behind the agent's back, and the agent's
 * own refusal of hostile requests.
 */
class AgentFileMetadataTest {
    private AgentProcess agent;
    private AgentClient client;

    /** Runs {@code test} against a fresh agent, closed afterwards. */
    private void withAgent(IoTest test) throws IOException {
        try (AgentProcess started = AgentProcess.start()) {
            agent = started;
            client = started.client;
            test.run();
        }
    }

    private interface IoTest {
        void run() throws IOException;
    }

    private static InputStream stream(String s) {
        return new ByteArrayInputStream(s.getBytes(StandardCharsets.UTF_8));
    }

    private UserDefinedFileAttributeView xattrs(String relative) {
        return Files.getFileAttributeView(agent.userHome.resolve(relative), UserDefinedFileAttributeView.class);
    }

    @Test
    void storedOnWriteShownByStatListAndMoveAndReplacedByAnOverwrite() throws IOException {
        withAgent(() -> {
            Map<String, String> md = Map.of("author", "mish", "purpose", "upload");
            EntryInfo written = client.writeFile("a.txt", stream("one"), "user", md);
            assertEquals(md, written.metadata());
            assertEquals(md, client.stat("a.txt", "user").metadata());
            // On the file itself, under the namespace, as code in the sandbox would find it.
            assertEquals("mish", StandardCharsets.US_ASCII.decode(read(xattrs("a.txt"), "e2b.author")).toString());

            client.makeDir("d", "user");
            client.writeFile("d/b.txt", stream("two"), "user", Map.of("tag", "listed"));
            client.writeFile("d/plain.txt", stream("three"), "user");
            Map<String, Map<String, String>> listed = new LinkedHashMap<>();
            for (EntryInfo e : client.listDir("d", 1, "user")) listed.put(e.name(), e.metadata());
            assertEquals(Map.of("b.txt", Map.of("tag", "listed"), "plain.txt", Map.of()), listed);

            assertEquals(md, client.move("a.txt", "renamed.txt", "user").metadata(), "a rename keeps the pairs");
            assertEquals(md, client.stat("renamed.txt", "user").metadata());

            EntryInfo replaced = client.writeFile("renamed.txt", stream("new"), "user", Map.of("stage", "two"));
            assertEquals(Map.of("stage", "two"), replaced.metadata(), "an overwrite's pairs replace the old ones");
            EntryInfo cleared = client.writeFile("renamed.txt", stream("newer"), "user");
            assertEquals(Map.of(), cleared.metadata(), "an overwrite without pairs clears them");
            assertEquals(Map.of(), client.stat("renamed.txt", "user").metadata());
            if (AgentProcess.ROOT) {
                assertEquals(1000, Files.getAttribute(agent.userHome.resolve("renamed.txt"), "unix:uid"));
            }
        });
    }

    /** The size bound on what is shown needs more attribute space than ext4 gives: FileMetadataContract checks it on tmpfs. */
    @Test
    void attributesSetBehindTheAgentsBackAreShown() throws IOException {
        withAgent(() -> {
            client.writeFile("x.txt", stream("x"), "user");
            UserDefinedFileAttributeView view = xattrs("x.txt");
            view.write("e2b.author", StandardCharsets.US_ASCII.encode("mish"));
            view.write("other", StandardCharsets.US_ASCII.encode("not ours")); // user.other: not metadata
            view.write("e2b.bin", ByteBuffer.wrap(new byte[] {'a', (byte) 0xff, 'b'})); // not UTF-8
            assertEquals(Map.of("author", "mish", "bin", "a\uFFFDb"), client.stat("x.txt", "user").metadata());
            assertEquals(Map.of("author", "mish", "bin", "a\uFFFDb"), client.listDir(".", 1, "user").stream()
                    .filter(e -> e.name().equals("x.txt")).findFirst().orElseThrow().metadata());
        });
    }

    @Test
    void hostileRequestsAreRefusedAndWriteNothing() throws IOException {
        withAgent(() -> {
            String tooLongKey = "k".repeat(FileMetadata.MAX_KEY_BYTES + 1);
            List<Map<String, String>> bad = List.of(
                    Map.of("Upper", "v"), Map.of("bad key", "v"), Map.of("", "v"), Map.of("k\n", "v"),
                    Map.of("k", "line\nbreak"), Map.of("k", "caf\u00e9"), Map.of(tooLongKey, "v"),
                    Map.of("a", "x".repeat(2100), "b", "y".repeat(2100)));
            for (Map<String, String> md : bad) {
                AgentException e = assertThrows(AgentException.class,
                        () -> client.writeFile("refused.txt", new ByteArrayInputStream(new byte[3 << 20]), "user", md));
                assertEquals(AgentException.Code.INVALID_ARGUMENT, e.code(), e.getMessage());
                assertFalse(Files.exists(agent.userHome.resolve("refused.txt")), md.keySet().toString());
            }
            // The longest key and the largest total the limits allow are stored.
            String longest = "k".repeat(FileMetadata.MAX_KEY_BYTES);
            assertEquals(Map.of(longest, "v"), client.writeFile("ok.txt", stream("ok"), "user", Map.of(longest, "v")).metadata());
            Map<String, String> several = Map.of("a", "x".repeat(1000), "b", "y".repeat(1000), "c", "~ !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}");
            assertEquals(several, client.writeFile("several.txt", stream("ok"), "user", several).metadata());
            try (var files = Files.list(agent.userHome)) {
                assertEquals(List.of(), files.filter(p -> p.getFileName().toString().endsWith(".stockade-tmp")).map(Path::toString).toList(),
                        "no temporary file is left behind");
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }

    private static ByteBuffer read(UserDefinedFileAttributeView view, String name) throws IOException {
        ByteBuffer buf = ByteBuffer.allocate(view.size(name));
        view.read(name, buf);
        return buf.flip();
    }
}
