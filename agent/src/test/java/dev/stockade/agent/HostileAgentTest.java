package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.protocol.AgentEvent;
import dev.stockade.protocol.AgentException;
import dev.stockade.protocol.CellEvent;
import dev.stockade.protocol.ExecRequest;
import dev.stockade.protocol.ExecuteCell;
import dev.stockade.protocol.Outcome;
import dev.stockade.protocol.link.AgentClient;
import dev.stockade.protocol.link.EventStream;
import dev.stockade.protocol.link.FileRead;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

/**
 * The client against a fake agent that misbehaves: every failure must be a prompt AgentException
 * (PROTOCOL, TIMEOUT or UNAVAILABLE), never a hang or a huge allocation.
 */
class HostileAgentTest {
    /** The protocol's largest frame payload (docs/agent-protocol.md): 1 MiB. */
    private static final int MAX_PAYLOAD = 1 << 20;
    /** What the fake agent does with one connection, after reading the request frame. */
    interface Behaviour {
        void serve(SocketChannel channel) throws IOException, InterruptedException;
    }

    private Path dir;
    private Path socket;
    private ServerSocketChannel server;
    private Thread acceptor;
    private volatile Behaviour behaviour;

    @BeforeEach
    void start() throws IOException {
        dir = Files.createTempDirectory("stockade-hostile");
        socket = dir.resolve("agent.sock");
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX).bind(UnixDomainSocketAddress.of(socket));
        acceptor = Thread.ofVirtual().start(() -> {
            while (server.isOpen()) {
                try {
                    SocketChannel channel = server.accept();
                    Thread.ofVirtual().start(() -> {
                        try (channel) {
                            skipFrame(channel);
                            behaviour.serve(channel);
                        } catch (IOException | InterruptedException ignored) {
                            // the client hung up, as it should
                        }
                    });
                } catch (IOException e) {
                    return;
                }
            }
        });
    }

    @AfterEach
    void stop() throws IOException, InterruptedException {
        server.close();
        acceptor.join(2000);
        AgentProcess.deleteTree(dir);
    }

    private static void skipFrame(SocketChannel channel) throws IOException {
        ByteBuffer header = ByteBuffer.allocate(4);
        while (header.hasRemaining()) {
            if (channel.read(header) < 0) {
                throw new IOException("eof");
            }
        }
        ByteBuffer body = ByteBuffer.allocate(header.flip().getInt());
        while (body.hasRemaining()) {
            if (channel.read(body) < 0) {
                throw new IOException("eof");
            }
        }
    }

    private static void send(SocketChannel channel, byte[] bytes) throws IOException {
        ByteBuffer buffer = ByteBuffer.wrap(bytes);
        while (buffer.hasRemaining()) {
            channel.write(buffer);
        }
    }

    private static byte[] frame(char type, String payload) {
        byte[] body = payload.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(5 + body.length).putInt(body.length + 1).put((byte) type).put(body).array();
    }

    private static void sleepForever() throws InterruptedException {
        Thread.sleep(60_000);
    }

    private AgentClient client() {
        return AgentClient.unix(socket, Duration.ofMillis(500));
    }

    private void assertFails(AgentException.Code code, Executable call) {
        long start = System.nanoTime();
        AgentException e = assertThrows(AgentException.class, call);
        long millis = (System.nanoTime() - start) / 1_000_000;
        assertEquals(code, e.code(), e.getMessage());
        assertTrue(millis < 2000, "took " + millis + " ms: " + e.getMessage());
    }

    @Test
    void oversizedFrameIsAProtocolError() {
        behaviour = c -> {
            send(c, new byte[] {0x7f, (byte) 0xff, (byte) 0xff, (byte) 0xff, 'J'});
            sleepForever();
        };
        assertFails(AgentException.Code.PROTOCOL, () -> client().hello(Duration.ofSeconds(5)));
        behaviour = c -> {
            send(c, new byte[] {0, 0x10, 0, 2, 'B'}); // 1 MiB + 2: one byte over
            sleepForever();
        };
        assertFails(AgentException.Code.PROTOCOL, () -> client().stat("x", "user"));
        behaviour = c -> send(c, new byte[] {0, 0, 0, 0});
        assertFails(AgentException.Code.PROTOCOL, () -> client().stat("x", "user"));
    }

    @Test
    void garbageIsAProtocolError() {
        for (byte[] garbage : List.of(
                frame('J', "{not json"),
                frame('J', "[1, 2, 3]"),
                frame('J', "{\"a\": " + "[".repeat(100) + "]".repeat(100) + "}"),
                frame('J', "{\"version\": \"1\", \"pid\": 1e999}"),
                frame('J', "{\"version\": \"1\", \"pid\": -4}"),
                frame('J', "{\"version\": \"1\", \"version\": \"2\", \"pid\": 4}"),
                frame('X', "what"),
                frame('1', "stdout where an answer is due"),
                "HTTP/1.1 200 OK\r\n\r\n".getBytes(StandardCharsets.US_ASCII))) {
            behaviour = c -> send(c, garbage);
            assertFails(AgentException.Code.PROTOCOL, () -> client().hello(Duration.ofSeconds(5)));
        }
    }

    @Test
    void invalidEntriesAreProtocolErrors() {
        behaviour = c -> send(c, frame('J', "{\"entry\": {\"name\": \"x\", \"path\": \"relative\", \"type\": \"file\","
                + " \"size\": 1, \"mode\": 420, \"permissions\": \"-rw-r--r--\", \"owner\": \"u\", \"group\": \"g\","
                + " \"modifiedMillis\": 0, \"symlinkTarget\": null}}"));
        assertFails(AgentException.Code.PROTOCOL, () -> client().stat("x", "user"));
        behaviour = c -> send(c, frame('J', "{\"entry\": {\"name\": \"x\", \"path\": \"/x\", \"type\": \"file\","
                + " \"size\": -1, \"mode\": 420, \"permissions\": \"-rw-r--r--\", \"owner\": \"u\", \"group\": \"g\","
                + " \"modifiedMillis\": 0, \"symlinkTarget\": null}}"));
        assertFails(AgentException.Code.PROTOCOL, () -> client().stat("x", "user"));
    }

    @Test
    void entryMetadataIsBoundedAndTyped() {
        String entry = "{\"entry\": {\"name\": \"x\", \"path\": \"/x\", \"type\": \"file\", \"size\": 1, \"mode\": 420,"
                + " \"permissions\": \"-rw-r--r--\", \"owner\": \"u\", \"group\": \"g\", \"modifiedMillis\": 0,"
                + " \"symlinkTarget\": null, \"metadata\": %s}}";
        for (String bad : List.of("[\"a\"]", "{\"a\": 1}", "{\"\": \"v\"}",
                "{\"a\": \"" + "v".repeat(3000) + "\", \"b\": \"" + "w".repeat(3000) + "\"}")) {
            behaviour = c -> send(c, frame('J', entry.formatted(bad)));
            assertFails(AgentException.Code.PROTOCOL, () -> client().stat("x", "user"));
        }
        behaviour = c -> send(c, frame('J', entry.formatted("{\"author\": \"mish\"}")));
        assertEquals(Map.of("author", "mish"), client().stat("x", "user").metadata());
    }

    @Test
    void silenceIsATimeout() {
        behaviour = c -> sleepForever();
        assertFails(AgentException.Code.TIMEOUT, () -> client().stat("x", "user"));
        assertFails(AgentException.Code.TIMEOUT, () -> client().hello(Duration.ofMillis(300)));
        assertFails(AgentException.Code.TIMEOUT, () -> client().exec(
                new ExecRequest(List.of("true"), Map.of(), null, "user", false, 0, 0, null)));
    }

    @Test
    void aFrameThatNeverCompletesIsATimeout() {
        behaviour = c -> {
            send(c, new byte[] {0, 0, 0, 100, 'J', '{'});
            sleepForever();
        };
        assertFails(AgentException.Code.TIMEOUT, () -> client().stat("x", "user"));
    }

    @Test
    void hangingUpIsUnavailable() {
        behaviour = c -> { };
        assertFails(AgentException.Code.UNAVAILABLE, () -> client().stat("x", "user"));
        behaviour = c -> send(c, new byte[] {0, 0, 0, 100, 'J', '{'});
        assertFails(AgentException.Code.UNAVAILABLE, () -> client().stat("x", "user"));
        AgentClient nowhere = AgentClient.unix(dir.resolve("missing.sock"), Duration.ofMillis(500));
        assertFails(AgentException.Code.UNAVAILABLE, () -> nowhere.stat("x", "user"));
        assertFails(AgentException.Code.TIMEOUT, () -> nowhere.hello(Duration.ofMillis(200)));
    }

    @Test
    void hostileStreams() {
        ExecRequest request = new ExecRequest(List.of("true"), Map.of(), null, "user", false, 0, 0, null);
        // An oversized frame in the middle of a stream.
        behaviour = c -> {
            send(c, frame('J', "{\"ev\": \"start\", \"pid\": 7}"));
            send(c, frame('1', "ok"));
            send(c, new byte[] {0x40, 0, 0, 0, '1'});
            sleepForever();
        };
        try (Proc stream = Proc.of(client().exec(request))) {
            assertEquals(7, stream.pid());
            assertEquals(new AgentEvent.Started(7), stream.next(Duration.ofSeconds(1)).orElseThrow());
            assertEquals("ok", new String(((AgentEvent.Stdout) stream.next(Duration.ofSeconds(1)).orElseThrow()).data(),
                    StandardCharsets.UTF_8));
            assertFails(AgentException.Code.PROTOCOL, () -> stream.next(Duration.ofSeconds(1)));
        }
        // An unknown outcome, a data frame, a stream that stops without its end.
        for (byte[] bad : List.of(
                frame('J', "{\"ev\": \"end\", \"exitCode\": 0, \"signal\": null, \"outcome\": \"party\", \"reason\": \"\"}"),
                frame('J', "{\"ev\": \"end\", \"exitCode\": 70000, \"signal\": null, \"outcome\": \"exited\", \"reason\": \"\"}"),
                frame('B', "data"),
                new byte[0])) {
            behaviour = c -> {
                send(c, frame('J', "{\"ev\": \"start\", \"pid\": 7}"));
                send(c, bad);
            };
            try (Proc stream = Proc.of(client().exec(request))) {
                stream.next(Duration.ofSeconds(1));
                AgentException e = assertThrows(AgentException.class, () -> stream.next(Duration.ofSeconds(1)));
                assertTrue(e.code() == AgentException.Code.PROTOCOL || e.code() == AgentException.Code.UNAVAILABLE,
                        e.code() + ": " + e.getMessage());
            }
        }
        // A stream that begins with something else than start.
        behaviour = c -> send(c, frame('J', "{\"ev\": \"end\", \"exitCode\": 0}"));
        assertFails(AgentException.Code.PROTOCOL, () -> client().exec(request));
    }

    @Test
    void hostileCellStreams() {
        ExecuteCell cell = ExecuteCell.of("1+1");
        String accepted = "{\"ev\": \"accepted\", \"contextId\": \"c1\"}";
        String end = "{\"ev\": \"end\", \"executionCount\": 1, \"outcome\": \"ok\", \"reason\": \"r\","
                + " \"stateLost\": false, \"files\": []}";
        // A well-behaved stream, with a large event, for reference.
        String big = "{\"ev\": \"result\", \"data\": {\"text\": \"" + "z".repeat(2 << 20) + "\"}, \"isMainResult\": true}";
        behaviour = c -> {
            send(c, frame('J', accepted));
            byte[] bytes = big.getBytes(StandardCharsets.UTF_8);
            send(c, frame('J', "{\"ev\": \"large\", \"size\": " + bytes.length + "}"));
            for (int i = 0; i < bytes.length; i += MAX_PAYLOAD) {
                send(c, frame('B', new String(bytes, i, Math.min(MAX_PAYLOAD, bytes.length - i), StandardCharsets.UTF_8)));
            }
            send(c, frame('B', ""));
            send(c, frame('J', end));
        };
        try (EventStream<CellEvent> stream = client().execute(cell)) {
            CellEvent.Result result = (CellEvent.Result) stream.next(Duration.ofSeconds(2)).orElseThrow();
            assertEquals(2 << 20, ((String) result.data().get("text")).length());
            assertEquals(Outcome.OK, ((CellEvent.End) stream.next(Duration.ofSeconds(1)).orElseThrow()).outcome());
        }
        for (byte[][] bad : List.of(
                new byte[][] {frame('J', end.replace("\"ok\"", "\"party\""))},
                new byte[][] {frame('J', end.replace("[]", "[{\"path\": \"relative\", \"name\": \"x\", \"size\": 1}]"))},
                new byte[][] {frame('J', end.replace("[]", "[{\"path\": \"/x\", \"name\": \"x\", \"size\": -1}]"))},
                new byte[][] {frame('J', "{\"ev\": \"result\", \"data\": \"flat\", \"isMainResult\": true}")},
                new byte[][] {frame('J', "{\"ev\": \"surprise\"}")},
                new byte[][] {frame('B', "data outside a large event")},
                new byte[][] {frame('J', "{\"ev\": \"large\", \"size\": 999999999999}")},
                new byte[][] {frame('J', "{\"ev\": \"large\", \"size\": 3}"), frame('B', "abcdef")},
                new byte[][] {frame('J', "{\"ev\": \"large\", \"size\": 30}"), frame('B', "{}"), frame('B', "")},
                new byte[][] {frame('J', "{\"ev\": \"large\", \"size\": 2}"), frame('J', "{}")},
                new byte[][] {})) {
            behaviour = c -> {
                send(c, frame('J', accepted));
                for (byte[] b : bad) {
                    send(c, b);
                }
            };
            try (EventStream<CellEvent> stream = client().execute(cell)) {
                AgentException e = assertThrows(AgentException.class, () -> stream.next(Duration.ofSeconds(2)));
                assertTrue(e.code() == AgentException.Code.PROTOCOL || e.code() == AgentException.Code.UNAVAILABLE,
                        e.code() + ": " + e.getMessage());
            }
        }
        // A large event that stops half-way is a timeout, not a hang.
        behaviour = c -> {
            send(c, frame('J', accepted));
            send(c, frame('J', "{\"ev\": \"large\", \"size\": 10}"));
            send(c, frame('B', "abc"));
            sleepForever();
        };
        try (EventStream<CellEvent> stream = client().execute(cell)) {
            assertFails(AgentException.Code.TIMEOUT, () -> stream.next(Duration.ofSeconds(3)));
        }
        behaviour = c -> send(c, frame('J', end));
        assertFails(AgentException.Code.PROTOCOL, () -> client().execute(cell));
        behaviour = c -> send(c, frame('J', "{\"context\": {\"id\": \"c\", \"language\": \"python\","
                + " \"cwd\": \"relative\", \"user\": \"user\"}}"));
        assertFails(AgentException.Code.PROTOCOL, () -> client().restartContext("c"));
    }

    @Test
    void fileReadLongerThanAnnouncedIsAProtocolError() {
        behaviour = c -> {
            send(c, frame('J', "{\"size\": 3}"));
            send(c, frame('B', "abcdef"));
            sleepForever();
        };
        try (FileRead read = client().readFile("x", "user")) {
            assertEquals(3, read.size());
            assertFails(AgentException.Code.PROTOCOL, () -> read.content().readAllBytes());
        }
        behaviour = c -> {
            send(c, frame('J', "{\"size\": 3}"));
            sleepForever();
        };
        try (FileRead read = client().readFile("x", "user")) {
            assertFails(AgentException.Code.TIMEOUT, () -> read.content().readAllBytes());
        }
    }

    @Test
    void errorsMapOntoCodes() {
        behaviour = c -> send(c, frame('J', "{\"error\": {\"code\": \"no_space\", \"message\": \"disk full\\u0007\"}}"));
        AgentException e = assertThrows(AgentException.class,
                () -> client().writeFile("x", new ByteArrayInputStream(new byte[10]), "user"));
        assertEquals(AgentException.Code.NO_SPACE, e.code());
        assertEquals("disk full?", e.getMessage());
        behaviour = c -> send(c, frame('J', "{\"error\": {\"code\": \"weird\", \"message\": \"m\"}}"));
        assertFails(AgentException.Code.INTERNAL, () -> client().stat("x", "user"));
        behaviour = c -> send(c, frame('J', "{\"error\": \"flat\"}"));
        assertFails(AgentException.Code.PROTOCOL, () -> client().stat("x", "user"));
    }

    @Test
    void requestsTooLargeForAFrameAreRefusedLocally() {
        String huge = "x".repeat(MAX_PAYLOAD);
        AgentException e = assertThrows(AgentException.class, () -> client().exec(
                new ExecRequest(List.of("echo", huge), Map.of(), null, "user", false, 0, 0, null)));
        assertEquals(AgentException.Code.INVALID_ARGUMENT, e.code());
    }
}
