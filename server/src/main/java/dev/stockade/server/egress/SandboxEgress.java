package dev.stockade.server.egress;

import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One sandbox's egress: the unix socket its relay connects to, its policy and secrets, its open
 * connections and its decision log. Created by {@link EgressProxy#attach}. Everything arriving on
 * this socket is this sandbox's, whatever the bytes claim.
 *
 * <p>Threads: one virtual thread accepts; each connection runs on its own virtual thread
 * ({@link ProxyConnection}); {@link #setPolicy} and {@link #close} may be called from any thread.
 */
public final class SandboxEgress implements AutoCloseable {
    private final EgressProxy proxy;
    private final String sandboxId;
    private final Path socketPath;
    private volatile Secrets secrets;
    private final ServerSocketChannel server;
    private final DecisionLog log;
    private final Set<ProxyConnection> connections = ConcurrentHashMap.newKeySet();
    private final AtomicLong allowed = new AtomicLong();
    private final AtomicLong refused = new AtomicLong();
    private final Thread acceptor;
    private volatile NetworkPolicy policy;
    private volatile boolean closed;

    SandboxEgress(EgressProxy proxy, String sandboxId, Path socketPath, long ownerHostUid, NetworkPolicy policy,
                  Secrets secrets) throws IOException {
        this.proxy = proxy;
        this.sandboxId = sandboxId;
        this.socketPath = socketPath;
        this.secrets = secrets;
        this.policy = policy;
        this.log = new DecisionLog(proxy.config().logCapacity());
        if (Files.exists(socketPath, LinkOption.NOFOLLOW_LINKS)) {
            throw new IOException("egress socket " + socketPath + " already exists: is another sandbox using it, "
                    + "or was it left behind? Remove it before attaching");
        }
        server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        try {
            server.bind(UnixDomainSocketAddress.of(socketPath));
            Files.setPosixFilePermissions(socketPath, PosixFilePermissions.fromString("rw-------"));
            if (ownerHostUid < 0 || ownerHostUid > 0xFFFF_FFFEL) throw new IOException("uid out of range: " + ownerHostUid);
            int owner = (int) ownerHostUid; // uid_t is unsigned 32-bit: sandbox uids pass 2^31
            if (!Integer.valueOf(owner).equals(Files.getAttribute(socketPath, "unix:uid", LinkOption.NOFOLLOW_LINKS))) {
                Files.setAttribute(socketPath, "unix:uid", owner, LinkOption.NOFOLLOW_LINKS);
            }
            if (!Integer.valueOf(owner).equals(Files.getAttribute(socketPath, "unix:gid", LinkOption.NOFOLLOW_LINKS))) {
                Files.setAttribute(socketPath, "unix:gid", owner, LinkOption.NOFOLLOW_LINKS);
            }
        } catch (IOException | RuntimeException e) {
            server.close();
            Files.deleteIfExists(socketPath);
            throw e instanceof IOException io ? io
                    : new IOException("egress socket " + socketPath + ": " + e.getMessage(), e);
        }
        acceptor = Thread.ofVirtual().name("egress-accept-" + sandboxId).start(this::acceptLoop);
    }

    private void acceptLoop() {
        while (!closed) {
            SocketChannel channel;
            try {
                channel = server.accept();
            } catch (IOException e) {
                return; // closed
            }
            if (closed) {
                closeQuietly(channel);
                return;
            }
            if (connections.size() >= proxy.config().maxConnectionsPerSandbox()) {
                ProxyConnection.refuseBusy(this, channel);
                continue;
            }
            ProxyConnection connection = new ProxyConnection(this, channel);
            connections.add(connection);
            if (closed) {
                connection.close();
            }
            Thread.ofVirtual().name("egress-conn-" + sandboxId).start(connection);
        }
    }

    public String sandboxId() {
        return sandboxId;
    }

    public NetworkPolicy policy() {
        return policy;
    }

    /**
     * Replaces the policy. New requests see it at once; open connections and tunnels whose
     * destination it refuses are closed, each with a refused decision.
     *
     * @throws IllegalArgumentException if the policy is open and the operator does not allow that
     */
    public void setPolicy(NetworkPolicy p) {
        proxy.check(p);
        policy = p;
        for (ProxyConnection c : connections) {
            c.recheck(p);
        }
    }

    /** Up to {@code limit} most recent decisions, newest last. */
    /**
     * Hands the sandbox to its user (a pooled sandbox taken by a create): the user's policy and
     * secrets, an empty log and zeroed counters, and no connection left from before.
     */
    public void handOver(NetworkPolicy p, List<SecretBinding> bindings) {
        this.secrets = new Secrets(bindings);
        for (ProxyConnection c : connections) c.close();
        log.clear();
        allowed.set(0);
        refused.set(0);
        this.policy = p;
    }

    public List<Decision> log(int limit) {
        return log.last(limit);
    }

    public long allowed() {
        return allowed.get();
    }

    public long refused() {
        return refused.get();
    }

    public int openConnections() {
        return connections.size();
    }

    /** Closes the listener and every open connection, and deletes the socket file. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        closeQuietly(server);
        for (ProxyConnection c : connections) {
            c.close();
        }
        try {
            acceptor.join(2000);
            Files.deleteIfExists(socketPath);
        } catch (IOException ignored) {
            // the directory may be gone with the sandbox already
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        proxy.detached(this);
    }

    void record(Decision d) {
        log.add(d);
        (d.allowed() ? allowed : refused).incrementAndGet();
        proxy.record(d);
    }

    Decision decision(Integer pid, Integer uid, String kind, String host, int port, String address, boolean ok,
                      String rule, String reason) {
        return new Decision(Instant.now(), sandboxId, pid, uid, kind, host, port, address, ok, rule, reason);
    }

    void removed(ProxyConnection c) {
        connections.remove(c);
    }

    Set<ProxyConnection> connections() {
        return connections;
    }

    Secrets secrets() {
        return secrets;
    }

    EgressProxy proxy() {
        return proxy;
    }

    private static void closeQuietly(java.io.Closeable c) {
        try {
            c.close();
        } catch (IOException ignored) {
            // nothing to do
        }
    }
}
