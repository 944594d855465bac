package dev.stockade.server.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * "The HTTP layer imports nothing of the agent link": the handlers translate wire messages into
 * calls of the data plane ({@code dev.stockade.server.session.Sessions}), which alone holds the
 * agent client, enforces the server's limits and turns the agent's failures into the server's. The
 * protocol's value records ({@code dev.stockade.protocol}) may cross; the link
 * ({@code dev.stockade.protocol.link}: the client, its streams, transports) may not, and neither may
 * a call of {@code Sandbox.agent()}. Reads the sources, so it fails at the first offending line.
 */
class ApiLayeringTest {
    private static final Path API = Path.of("src/main/java/dev/stockade/server/api");
    /** A use of the link: an import (single or on demand, static or not) or a qualified name. */
    private static final Pattern LINK = Pattern.compile("\\bdev\\.stockade\\.protocol\\.link\\b");
    private static final Pattern AGENT_CALL = Pattern.compile("\\.agent\\(\\)");

    @Test
    void theApiLayerDoesNotReachTheAgentLink() throws IOException {
        List<String> offences = new ArrayList<>();
        List<Path> sources = sources();
        for (Path source : sources) {
            List<String> lines = Files.readAllLines(source);
            for (int i = 0; i < lines.size(); i++) {
                String line = lines.get(i);
                for (Pattern p : List.of(LINK, AGENT_CALL)) {
                    Matcher m = p.matcher(line);
                    if (m.find()) offences.add(source.getFileName() + ":" + (i + 1) + ": " + line.strip());
                }
            }
        }
        assertTrue(sources.size() > 5, "found the api sources under " + API.toAbsolutePath());
        assertEquals(List.of(), offences, "the api layer must go through dev.stockade.server.session.Sessions,"
                + " not the agent link");
    }

    @Test
    void theCheckSeesALinkImport() {
        assertTrue(LINK.matcher("import dev.stockade.protocol.link.AgentClient;").find());
        assertTrue(LINK.matcher("import dev.stockade.protocol.link.*;").find());
        assertTrue(AGENT_CALL.matcher("ctx.sandbox().agent().stat(p, u)").find());
        assertTrue(!LINK.matcher("import dev.stockade.protocol.AgentEvent;").find());
    }

    private static List<Path> sources() throws IOException {
        try (Stream<Path> files = Files.walk(API)) {
            return files.filter(f -> f.toString().endsWith(".java")).sorted().toList();
        }
    }
}
