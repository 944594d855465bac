package dev.stockade.agent;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The egress relay (stockade_agent.relay) as a host process between a TCP client and a fake upstream
 * unix socket server: bytes, half-closes, the preamble naming the client, failure and the cap.
 */
@org.junit.jupiter.api.Timeout(value = 120, threadMode = org.junit.jupiter.api.Timeout.ThreadMode.SEPARATE_THREAD)
class RelayTest {
    private static final Duration MAX = Duration.ofSeconds(10);
    private static final Pattern PREAMBLE = Pattern.compile("STOCKADE-RELAY 1 pid=(\\d+|-) uid=(\\d+|-)");
    /** A client that connects, says ping and waits for one byte: argv host port. */
    static final String PYTHON_CLIENT = """
            import socket, sys
            s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
            s.sendall(b"ping")
            assert s.recv(1) == b"k"
            """;

    private Path dir;
    private FakeUpstream upstream;
    private final List<AutoCloseable> resources = new ArrayList<>();

    @BeforeEach
    void setUp() throws IOException {
        dir = Files.createTempDirectory("stockade-relay-upstream");
        upstream = FakeUpstream.start(dir.resolve("egress.sock"));
    }

    @AfterEach
    void tearDown() throws Exception {
        for (AutoCloseable r : resources.reversed()) {
            r.close();
        }
        upstream.close();
        AgentProcess.deleteTree(dir);
    }

    private RelayProcess relay(List<String> prefix, String... extraArgs) throws IOException {
        return relay(upstream.path, prefix, extraArgs);
    }

    private RelayProcess relay(Path upstreamPath, List<String> prefix, String... extraArgs) throws IOException {
        RelayProcess relay = RelayProcess.start(upstreamPath, prefix, List.of(extraArgs));
        resources.add(relay);
        return relay;
    }

    private Socket connect(int port) throws IOException {
        Socket socket = new Socket(InetAddress.getLoopbackAddress(), port);
        socket.setSoTimeout((int) MAX.toMillis());
        resources.add(socket);
        return socket;
    }

    static int uidOfThisProcess() throws IOException {
        return (Integer) Files.getAttribute(Path.of("/proc/self"), "unix:uid");
    }

    @Test
    void bytesFlowBothWaysAndHalfClosesPropagate() throws Exception {
        RelayProcess relay = relay(List.of());
        // The client finishes sending first: the upstream sees its end and can still answer.
        Socket client = connect(relay.port);
        client.getOutputStream().write("hello".getBytes(StandardCharsets.US_ASCII));
        client.shutdownOutput();
        try (FakeUpstream.Connection up = upstream.next(MAX)) {
            Matcher m = PREAMBLE.matcher(up.preamble());
            assertTrue(m.matches(), up.preamble());
            assertEquals(ProcessHandle.current().pid() + "", m.group(1), "the test JVM is the client");
            assertEquals(uidOfThisProcess() + "", m.group(2));
            assertEquals("hello", new String(up.in().readAllBytes(), StandardCharsets.US_ASCII));
            up.out().write("world".getBytes(StandardCharsets.US_ASCII));
        }
        assertEquals("world", new String(client.getInputStream().readAllBytes(), StandardCharsets.US_ASCII));

        // The upstream finishes first: the client sees its end and can still send.
        Socket second = connect(relay.port);
        try (FakeUpstream.Connection up = upstream.next(MAX)) {
            up.out().write("early".getBytes(StandardCharsets.US_ASCII));
            up.channel().shutdownOutput();
            assertEquals("early", new String(second.getInputStream().readAllBytes(), StandardCharsets.US_ASCII));
            second.getOutputStream().write("late".getBytes(StandardCharsets.US_ASCII));
            second.shutdownOutput();
            assertEquals("late", new String(up.in().readAllBytes(), StandardCharsets.US_ASCII));
        }
    }

    @Test
    void fiftyMebibytesEachWayArriveIntact() throws Exception {
        RelayProcess relay = relay(List.of());
        int size = 50 << 20;
        Socket client = connect(relay.port);
        FakeUpstream.Connection up = upstream.next(MAX);
        resources.add(up);
        long start = System.nanoTime();
        CompletableFuture<byte[]> clientSent = send(client.getOutputStream(), size, 1, client::shutdownOutput);
        CompletableFuture<byte[]> upstreamSent = send(up.out(), size, 2, () -> up.channel().shutdownOutput());
        CompletableFuture<byte[]> upstreamGot = digest(up.in());
        CompletableFuture<byte[]> clientGot = digest(client.getInputStream());
        assertArrayEquals(clientSent.get(60, TimeUnit.SECONDS), upstreamGot.get(60, TimeUnit.SECONDS));
        assertArrayEquals(upstreamSent.get(60, TimeUnit.SECONDS), clientGot.get(60, TimeUnit.SECONDS));
        double seconds = (System.nanoTime() - start) / 1e9;
        System.out.printf("relay: 50 MiB each way at once in %.2f s (%.0f MiB/s per direction)%n", seconds, 50 / seconds);
    }

    /**
     * The upstream reads nothing: the client's writes must stall (TCP flow control through the
     * relay) while the relay's memory stays flat; then everything arrives once it reads.
     */
    @Test
    void aSlowReaderStallsTheSenderInsteadOfFillingTheRelay() throws Exception {
        RelayProcess relay = relay(List.of());
        Socket client = connect(relay.port);
        FakeUpstream.Connection up = upstream.next(MAX);
        resources.add(up);
        long rssBefore = rssKiB(relay.process.pid());
        long total = 32L << 20; // far past the stall point (a few MiB), small enough to drain fast on a loaded host
        java.util.concurrent.atomic.AtomicLong written = new java.util.concurrent.atomic.AtomicLong();
        Thread writer = Thread.ofVirtual().start(() -> {
            byte[] chunk = new byte[1 << 16];
            try {
                for (long sent = 0; sent < total; sent += chunk.length) {
                    client.getOutputStream().write(chunk);
                    written.addAndGet(chunk.length);
                }
                client.shutdownOutput();
            } catch (IOException e) {
                written.set(-1);
            }
        });
        long last = -1;
        for (int i = 0; i < 50 && written.get() != last; i++) {
            last = written.get();
            Thread.sleep(200);
        }
        long stalledAt = written.get();
        long rssStalled = rssKiB(relay.process.pid());
        System.out.printf("relay: a reader that reads nothing stalls the writer after %d KiB; relay RSS %d -> %d KiB%n",
                stalledAt >> 10, rssBefore, rssStalled);
        assertTrue(stalledAt > 0 && stalledAt < total / 2, "the writer should stall early, wrote " + stalledAt);
        assertTrue(rssStalled - rssBefore < 8 << 10, "the relay grew by " + (rssStalled - rssBefore) + " KiB");

        java.util.concurrent.atomic.AtomicLong got = new java.util.concurrent.atomic.AtomicLong();
        byte[] buf = new byte[1 << 16];
        // A unix channel's stream has no read timeout: a watchdog closes it when nothing has moved
        // for MAX, so a stuck relay fails the test instead of hanging it, and a slow host (the relay
        // starved of CPU by other work) only makes it slower.
        Thread watchdog = Thread.ofVirtual().start(() -> {
            try {
                long seen = -1;
                long still = System.nanoTime();
                while (true) {
                    Thread.sleep(250);
                    long now = got.get();
                    if (now != seen) {
                        seen = now;
                        still = System.nanoTime();
                    } else if (System.nanoTime() - still > MAX.toNanos()) {
                        System.out.printf("relay: no progress for %s after %d bytes; closing%n", MAX, now);
                        up.close();
                        return;
                    }
                }
            } catch (InterruptedException | IOException done) {
                // finished
            }
        });
        try {
            for (int n; (n = up.in().read(buf)) >= 0; ) {
                got.addAndGet(n);
            }
        } finally {
            watchdog.interrupt();
        }
        writer.join(MAX.toMillis());
        assertEquals(total, got.get());
    }

    /**
     * The relay's one direction of a connection ({@code Flow}) driven by hand, for every number of
     * queued chunks around a turn's read budget: a half-close must be passed on within the turn that
     * reads it. Read on a turn's last read it used to be left for a later turn that no event ever
     * started, so the upstream waited for the end forever (what made the slow-reader test fail now
     * and then on a loaded host: all bytes arrived, the end did not).
     */
    @Test
    void aHalfCloseIsPassedOnInTheTurnThatReadsIt() throws Exception {
        Path sources = Files.createTempDirectory(dir, "sources");
        AgentScript.writeSources(sources);
        String script = """
                import socket, sys
                sys.path.insert(0, sys.argv[1])
                from stockade_agent import relay
                for k in range(relay.CHUNKS_PER_TURN + 2):
                    a_w, a_r = socket.socketpair()
                    b_w, b_r = socket.socketpair()
                    for s in (a_w, a_r, b_w, b_r):
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 21)
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
                    a_r.setblocking(False)
                    b_w.setblocking(False)
                    flow = relay.Flow(a_r, b_w)
                    flow.enabled = True
                    for _ in range(k):
                        a_w.sendall(b"x" * relay.CHUNK)
                    a_w.shutdown(socket.SHUT_WR)
                    while not flow.shut:
                        if not flow.pump():
                            sys.exit("pump failed after %d chunks" % k)
                        if flow.pending is None and not flow.shut and not flow.wants_read():
                            sys.exit("%d chunks: the end was read but not passed on, and nothing is left to wait for" % k)
                        while True:
                            try:
                                if not b_r.recv(1 << 20, socket.MSG_DONTWAIT):
                                    break
                            except BlockingIOError:
                                break
                print("ok")
                """;
        Process p = new ProcessBuilder(AgentScript.PYTHON, "-I", "-S", "-c", script, sources.toString())
                .redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8).strip();
        assertTrue(p.waitFor(60, java.util.concurrent.TimeUnit.SECONDS), "the script ended");
        assertEquals("ok", out);
        assertEquals(0, p.exitValue());
    }

    private static long rssKiB(long pid) throws IOException {
        String line = Files.readAllLines(Path.of("/proc/" + pid + "/status")).stream()
                .filter(l -> l.startsWith("VmRSS:")).findFirst().orElseThrow();
        return Long.parseLong(line.replaceAll("[^0-9]", ""));
    }

    interface Closer {
        void close() throws IOException;
    }

    /** Writes size pseudo-random bytes, then half-closes; completes with their SHA-256. */
    private static CompletableFuture<byte[]> send(OutputStream out, int size, long seed, Closer done) {
        CompletableFuture<byte[]> result = new CompletableFuture<>();
        Thread.ofVirtual().start(() -> {
            try {
                MessageDigest digest = MessageDigest.getInstance("SHA-256");
                Random random = new Random(seed);
                byte[] chunk = new byte[1 << 16];
                for (int sent = 0; sent < size; sent += chunk.length) {
                    random.nextBytes(chunk);
                    out.write(chunk);
                    digest.update(chunk);
                }
                done.close();
                result.complete(digest.digest());
            } catch (Throwable t) {
                result.completeExceptionally(t);
            }
        });
        return result;
    }

    /** Reads to the end; completes with the SHA-256 of what came. */
    private static CompletableFuture<byte[]> digest(InputStream in) {
        CompletableFuture<byte[]> result = new CompletableFuture<>();
        Thread.ofVirtual().start(() -> {
            try {
                MessageDigest digest = MessageDigest.getInstance("SHA-256");
                byte[] buf = new byte[1 << 16];
                for (int n; (n = in.read(buf)) >= 0; ) {
                    digest.update(buf, 0, n);
                }
                result.complete(digest.digest());
            } catch (Throwable t) {
                result.completeExceptionally(t);
            }
        });
        return result;
    }

    @Test
    void preambleNamesTheClientProcessOverIpv4AndIpv6() throws Exception {
        RelayProcess relay = relay(List.of());
        List<String> hosts = new ArrayList<>(List.of("127.0.0.1"));
        if (ipv6Loopback()) {
            hosts.add("::1");
        }
        for (String host : hosts) {
            Process client = new ProcessBuilder(AgentProcess.PYTHON, "-I", "-S", "-c", PYTHON_CLIENT, host,
                    String.valueOf(relay.port)).redirectErrorStream(true).start();
            try (FakeUpstream.Connection up = upstream.next(MAX)) {
                assertEquals("STOCKADE-RELAY 1 pid=" + client.pid() + " uid=" + uidOfThisProcess(), up.preamble(),
                        "client on " + host);
                assertEquals("ping", new String(up.in().readNBytes(4), StandardCharsets.US_ASCII));
                up.out().write('k');
                assertTrue(client.waitFor(10, TimeUnit.SECONDS));
                assertEquals(0, client.exitValue(), new String(client.getInputStream().readAllBytes()));
            } finally {
                client.destroyForcibly();
            }
        }
    }

    /**
     * As in a sandbox: the relay lacks CAP_SYS_PTRACE, so reading the /proc/PID/fd of the client,
     * another user's process, works only because it switches its filesystem uid for the scan.
     */
    @Test
    void namesAnotherUsersProcessWithoutPtraceCapability() throws Exception {
        Path setpriv = Path.of("/usr/bin/setpriv");
        assumeTrue(AgentProcess.ROOT && Files.isExecutable(setpriv), "needs root and setpriv");
        RelayProcess relay = relay(List.of(setpriv.toString(), "--bounding-set=-sys_ptrace,-dac_read_search", "--"));
        String caps = Files.readAllLines(Path.of("/proc/" + relay.process.pid() + "/status")).stream()
                .filter(l -> l.startsWith("CapEff:")).findFirst().orElseThrow();
        long effective = Long.parseUnsignedLong(caps.substring("CapEff:".length()).strip(), 16);
        assertEquals(0, effective & (1L << 19), "CAP_SYS_PTRACE should be gone: " + caps);
        Process client = new ProcessBuilder(setpriv.toString(), "--reuid=1000", "--regid=1000", "--clear-groups", "--",
                AgentProcess.PYTHON, "-I", "-S", "-c", PYTHON_CLIENT, "127.0.0.1", String.valueOf(relay.port))
                .redirectErrorStream(true).start();
        try (FakeUpstream.Connection up = upstream.next(MAX)) {
            assertEquals("STOCKADE-RELAY 1 pid=" + client.pid() + " uid=1000", up.preamble());
            assertEquals("ping", new String(up.in().readNBytes(4), StandardCharsets.US_ASCII));
            up.out().write('k');
            assertTrue(client.waitFor(10, TimeUnit.SECONDS));
            assertEquals(0, client.exitValue(), new String(client.getInputStream().readAllBytes()));
        } finally {
            client.destroyForcibly();
        }
    }

    @Test
    void aMissingOrDeafUpstreamClosesTheClientAtOnce() throws Exception {
        Path deaf = dir.resolve("deaf.sock");
        try (ServerSocketChannel bound = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
            bound.bind(UnixDomainSocketAddress.of(deaf)); // the file stays, nobody listens after close
        }
        for (Path path : List.of(dir.resolve("missing.sock"), deaf)) {
            RelayProcess relay = relay(path, List.of());
            for (int i = 0; i < 3; i++) {
                Socket client = connect(relay.port);
                long start = System.nanoTime();
                int got;
                try {
                    got = client.getInputStream().read();
                } catch (SocketTimeoutException e) {
                    throw new AssertionError("the client hung on an unreachable upstream " + path, e);
                } catch (SocketException reset) {
                    got = -1;
                }
                long millis = (System.nanoTime() - start) / 1_000_000;
                assertEquals(-1, got);
                assertTrue(millis < 1000, "closed after " + millis + " ms");
                if (i == 2) {
                    System.out.printf("relay: client closed %d ms after connecting (upstream %s)%n", millis,
                            path.getFileName());
                }
            }
        }
    }

    @Test
    void connectionsBeyondTheCapAreClosedAtOnce() throws Exception {
        RelayProcess relay = relay(List.of(), "--max-connections", "2");
        Socket first = connect(relay.port);
        Socket second = connect(relay.port);
        FakeUpstream.Connection up1 = upstream.next(MAX);
        resources.add(up1);
        FakeUpstream.Connection up2 = upstream.next(MAX);
        resources.add(up2);

        Socket third = connect(relay.port);
        long start = System.nanoTime();
        assertEquals(-1, readOrReset(third));
        assertTrue(System.nanoTime() - start < 1_000_000_000L, "the third connection should be closed at once");
        assertTrue(upstream.poll(Duration.ofMillis(200)).isEmpty(), "the third connection must not reach the upstream");

        // One ends: there is room again. Which upstream is whose is found by what each carries (the
        // fake upstream queues connections in the order their preambles arrive, which the relay's
        // identification may swap).
        first.getOutputStream().write('A');
        second.getOutputStream().write('B');
        Map<Integer, FakeUpstream.Connection> byByte = new java.util.concurrent.ConcurrentHashMap<>();
        List<Thread> readers = new ArrayList<>();
        for (FakeUpstream.Connection up : List.of(up1, up2)) {
            readers.add(Thread.ofVirtual().start(() -> {
                try {
                    byByte.put(up.in().read(), up);
                } catch (IOException e) {
                    // reported below as a missing byte
                }
            }));
        }
        for (Thread t : readers) t.join(MAX.toMillis());
        FakeUpstream.Connection firstUp = byByte.get((int) 'A');
        FakeUpstream.Connection secondUp = byByte.get((int) 'B');
        assertTrue(firstUp != null && secondUp != null, "each client's byte reached one upstream: " + byByte.keySet());
        first.close();
        assertEquals(-1, firstUp.in().read());
        firstUp.close();
        boolean admitted = false;
        for (int attempt = 0; attempt < 40 && !admitted; attempt++) {
            Socket next = connect(relay.port);
            next.getOutputStream().write('x');
            admitted = upstream.poll(Duration.ofMillis(100)).map(c -> {
                resources.add(c);
                return true;
            }).orElse(false);
        }
        assertTrue(admitted, "a connection should be admitted once one of the two ended");
        second.getOutputStream().write('z'); // untouched by all this
        assertEquals('z', secondUp.in().read());
    }

    private static int readOrReset(Socket socket) throws IOException {
        try {
            return socket.getInputStream().read();
        } catch (SocketException reset) {
            return -1;
        }
    }

    @Test
    void refusesBadArguments() throws Exception {
        AgentScript.writeSources(dir);
        Path script = dir.resolve("relay");
        for (List<String> args : List.<List<String>>of(List.of(), List.of("--upstream", "relative.sock"),
                List.of("--upstream", "/x", "--listen-port", "70000"), List.of("--upstream", "/x", "--bogus", "1"),
                List.of("--upstream"))) {
            List<String> command = new ArrayList<>(List.of(AgentProcess.PYTHON, "-I", "-S", script.toString()));
            command.addAll(args);
            Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(p.waitFor(10, TimeUnit.SECONDS));
            assertEquals(1, p.exitValue(), args + ": " + out);
            assertTrue(out.contains("usage:"), args + ": " + out);
        }
    }

    /**
     * What the relay adds to a connection: connect, one byte each way and close, through the relay
     * versus straight to the upstream socket with the same preamble. Printed for the record;
     * asserted loosely, because CI machines are noisy.
     */
    @Test
    void perConnectionOverhead() throws Exception {
        RelayProcess relay = relay(List.of());
        for (int i = 0; i < 30; i++) { // warm up both sides
            viaRelay(relay.port);
            direct();
        }
        List<Long> relayed = new ArrayList<>();
        List<Long> direct = new ArrayList<>();
        for (int i = 0; i < 300; i++) {
            relayed.add(viaRelay(relay.port));
            direct.add(direct());
        }
        long r = median(relayed);
        long d = median(direct);
        System.out.printf("relay: connect + 1-byte round trip + close: median %.3f ms via the relay, %.3f ms straight"
                + " to the unix socket: %.3f ms added per connection (p90 via relay %.3f ms)%n",
                r / 1e6, d / 1e6, (r - d) / 1e6, percentile(relayed, 90) / 1e6);
        assertTrue(r - d < 20_000_000L, "the relay adds " + (r - d) / 1e6 + " ms per connection");
    }

    private long viaRelay(int port) throws IOException {
        long start = System.nanoTime();
        try (Socket client = new Socket()) {
            client.setTcpNoDelay(true);
            client.setSoTimeout((int) MAX.toMillis());
            client.connect(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
            client.getOutputStream().write('x');
            try (FakeUpstream.Connection up = upstream.next(MAX)) {
                assertEquals('x', up.in().read());
                up.out().write('y');
                assertEquals('y', client.getInputStream().read());
            }
        }
        return System.nanoTime() - start;
    }

    private long direct() throws IOException {
        long start = System.nanoTime();
        try (SocketChannel client = SocketChannel.open(UnixDomainSocketAddress.of(upstream.path))) {
            client.write(ByteBuffer.wrap("STOCKADE-RELAY 1 pid=1 uid=0\nx".getBytes(StandardCharsets.US_ASCII)));
            try (FakeUpstream.Connection up = upstream.next(MAX)) {
                assertEquals('x', up.in().read());
                up.out().write('y');
                ByteBuffer one = ByteBuffer.allocate(1);
                client.read(one);
                assertEquals('y', one.get(0));
            }
        }
        return System.nanoTime() - start;
    }

    static long median(List<Long> values) {
        return percentile(values, 50);
    }

    static long percentile(List<Long> values, int p) {
        List<Long> sorted = values.stream().sorted().toList();
        return sorted.get(Math.min(sorted.size() - 1, sorted.size() * p / 100));
    }

    static boolean ipv6Loopback() {
        try (ServerSocket probe = new ServerSocket(0, 1, InetAddress.getByName("::1"))) {
            return true;
        } catch (IOException e) {
            return false;
        }
    }
}
