package dev.stockade.server.egress;

import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * One connection from a sandbox's relay: reads the relay preamble and one request head, then
 * dispatches to {@link ConnectTunnel} (CONNECT), {@link PlainHttp} (absolute-form http://) or
 * {@link InternalRoute} (internal sites), and answers everything else with 400. Runs on its own
 * virtual thread; the proxy's timer thread may close it (head timeout, idle timeout) and
 * {@link SandboxEgress#setPolicy} may cut it.
 */
final class ProxyConnection implements Runnable {
    private static final Logger LOG = Logger.getLogger(ProxyConnection.class.getName());
    static final String PREAMBLE = "STOCKADE-RELAY ";
    static final int MAX_PREAMBLE = 128;
    private static final Pattern PREAMBLE_FIELDS =
            Pattern.compile("STOCKADE-RELAY 1 pid=(\\d{1,10}|-) uid=(\\d{1,10}|-)");

    /** Where an established connection goes, so a policy change can be judged against it. */
    record Destination(String kind, String host, InetAddress literal, int port, InetAddress address) {}

    private final SandboxEgress sandbox;
    private final Endpoint client;
    private final List<Closeable> resources = new CopyOnWriteArrayList<>();
    private final AtomicBoolean closed = new AtomicBoolean();
    private final AtomicBoolean cut = new AtomicBoolean();
    private volatile long lastActivity = System.nanoTime();
    private volatile long headDeadline;
    private volatile Destination destination;
    private volatile Integer pid;
    private volatile Integer uid;

    ProxyConnection(SandboxEgress sandbox, SocketChannel channel) {
        this.sandbox = sandbox;
        this.client = Endpoint.of(channel, this::touch, sandbox.proxy().timers());
    }

    /** Over the connection limit: answers 503 without reading anything, records it, closes. */
    static void refuseBusy(SandboxEgress sandbox, SocketChannel channel) {
        int limit = sandbox.proxy().config().maxConnectionsPerSandbox();
        String reason = "the sandbox already has " + limit + " open proxy connections (the limit)";
        sandbox.record(sandbox.decision(null, null, "connect", "?", 0, null, false, "connection-limit", reason));
        try (channel) {
            Responses.error(Channels.newOutputStream(channel), 503, reason);
        } catch (IOException ignored) {
            // the relay went away; the decision stands
        }
    }

    @Override
    public void run() {
        try {
            startHead();
            if (!readPreamble()) {
                return;
            }
            HttpHead head;
            HttpHead.RequestLine line;
            try {
                head = HttpHead.read(client.in());
                if (head == null) {
                    return; // the relay connected and hung up: nothing was attempted
                }
                line = HttpHead.RequestLine.parse(head.startLine());
            } catch (HttpHead.Malformed m) {
                badRequest("?", 0, m.status(), m.getMessage());
                return;
            }
            dispatch(line, head);
        } catch (IOException e) {
            // the sandbox or the upstream hung up, or a timeout closed us: nothing more to say
        } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "egress connection of sandbox " + sandbox.sandboxId() + " failed unexpectedly", e);
        } finally {
            close();
            sandbox.removed(this);
        }
    }

    private void dispatch(HttpHead.RequestLine line, HttpHead head) throws IOException {
        String target = line.target();
        String lower = target.toLowerCase(Locale.ROOT);
        if (line.method().equals("CONNECT")) {
            new ConnectTunnel(this).serve(line, head);
        } else if (lower.startsWith("http://")) {
            new PlainHttp(this).serve(line, head);
        } else if (lower.startsWith("https://")) {
            badRequest("?", 0, 400, "https:// URLs go through CONNECT: use the proxy as an HTTPS proxy "
                    + "(HTTPS_PROXY) rather than sending the URL in plain text");
        } else if (target.startsWith("/") || target.equals("*")) {
            badRequest("?", 0, 400, "this is Stockade's egress proxy: send requests through it as a proxy "
                    + "(absolute http:// URLs or CONNECT), e.g. with HTTP_PROXY/HTTPS_PROXY");
        } else {
            badRequest("?", 0, 400, "unsupported request target: only http:// URLs and CONNECT host:port");
        }
    }

    /**
     * Reads the relay's preamble line. Returns false (after recording a refusal) when the first
     * line is not the relay's: then the connection is hostile and is closed.
     */
    private boolean readPreamble() throws IOException {
        InputStream in = client.in();
        ByteArrayOutputStream line = new ByteArrayOutputStream(MAX_PREAMBLE);
        while (true) {
            int b = in.read();
            if (b < 0 && line.size() == 0) {
                return false; // connected and closed: nothing to judge
            }
            if (b < 0 || line.size() >= MAX_PREAMBLE) {
                break;
            }
            if (b == '\n') {
                String text = line.toString(StandardCharsets.ISO_8859_1);
                if (!text.startsWith(PREAMBLE)) {
                    break;
                }
                Matcher m = PREAMBLE_FIELDS.matcher(text);
                if (m.matches()) {
                    pid = number(m.group(1));
                    uid = number(m.group(2));
                }
                return true;
            }
            line.write(b);
        }
        record("connect", "?", 0, null, false, "relay-preamble",
                "the connection did not start with the relay's preamble line; closed as hostile");
        return false;
    }

    private static Integer number(String s) {
        if (s.equals("-")) {
            return null;
        }
        long v = Long.parseLong(s);
        return v > Integer.MAX_VALUE ? null : (int) v;
    }

    /** Answers a request the proxy cannot read or will not serve (4xx) on the sandbox side, recording a refusal. */
    void badRequest(String host, int port, int status, String message) {
        badRequest(client.out(), "http", host, port, status, message);
    }

    /** Answers a request the proxy cannot read or will not serve on {@code out}, recording a refusal. */
    void badRequest(OutputStream out, String kind, String host, int port, int status, String message) {
        record(kind, host, port, null, false, "bad-request", message);
        try {
            Responses.error(out, status, message);
        } catch (IOException ignored) {
            // the sandbox went away
        }
    }

    /** Answers a policy refusal with 403 on {@code out} and records it. */
    void refuse(OutputStream out, String kind, String host, int port, String address, String rule, String reason) {
        record(kind, host, port, address, false, rule, reason);
        try {
            Responses.refused(out, 403, host, port, rule, reason);
        } catch (IOException ignored) {
            // the sandbox went away
        }
    }

    /** A decision made elsewhere (an internal site) with this connection's reported pid and uid filled in. */
    Decision withIdentity(Decision d) {
        if (d.pid() != null || d.uid() != null) {
            return d;
        }
        return new Decision(d.time(), d.sandboxId(), pid, uid, d.kind(), d.host(), d.port(), d.address(), d.allowed(),
                d.rule(), d.reason());
    }

    void record(String kind, String host, int port, String address, boolean allowed, String rule, String reason) {
        sandbox.record(sandbox.decision(pid, uid, kind, host, port, address, allowed, rule, reason));
    }

    /** Starts the head clock: the head must be complete within the head timeout. */
    void startHead() {
        headDeadline = System.nanoTime() + sandbox.proxy().headTimeout().toNanos();
    }

    /** The head is read: from now on only the idle timeout applies. */
    void endHead() {
        headDeadline = 0;
    }

    void touch() {
        lastActivity = System.nanoTime();
    }

    /** Called by the timer thread: closes the connection if its head is late or it has been idle too long. */
    void expire(long now, long idleNanos) {
        long deadline = headDeadline;
        if ((deadline != 0 && now - deadline > 0) || now - lastActivity > idleNanos) {
            close();
        }
    }

    /**
     * Marks the connection as going to {@code d}, decided under {@code decidedUnder}. If the policy
     * changed in between, the new one judges it right away (a concurrent setPolicy may have missed it).
     */
    void establish(Destination d, NetworkPolicy decidedUnder) {
        destination = d;
        NetworkPolicy now = sandbox.policy();
        if (now != decidedUnder) {
            recheck(now);
        }
    }

    /** Judges the established destination against {@code policy}; cuts the connection if refused. */
    void recheck(NetworkPolicy policy) {
        Destination d = destination;
        if (d == null) {
            return;
        }
        EgressGate.Outcome o = sandbox.proxy().gate().judge(policy, d.host(), d.literal() != null, d.address(),
                d.port());
        if (!o.allowed() && cut.compareAndSet(false, true)) {
            record(d.kind(), d.host(), d.port(), o.addressText(), false, o.rule(),
                    "closed: the sandbox's new network policy refuses this destination (" + o.reason() + ")");
            close();
        }
    }

    /** Whether {@link #recheck} cut this connection. */
    boolean wasCut() {
        return cut.get();
    }

    /** Closes with the connection: upstream sockets, TLS sockets. */
    void own(Closeable c) {
        resources.add(c);
        if (closed.get()) {
            closeQuietly(c);
        }
    }

    void close() {
        if (closed.compareAndSet(false, true)) {
            client.close();
            for (Closeable c : resources) {
                closeQuietly(c);
            }
        }
    }

    private static void closeQuietly(Closeable c) {
        try {
            c.close();
        } catch (IOException | RuntimeException ignored) {
            // closing
        }
    }

    SandboxEgress sandbox() {
        return sandbox;
    }

    Endpoint client() {
        return client;
    }
}
