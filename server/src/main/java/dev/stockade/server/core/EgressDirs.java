package dev.stockade.server.core;

import dev.stockade.runtime.SandboxSpec;
import dev.stockade.server.egress.EgressProxy;
import dev.stockade.server.egress.NetworkPolicy;
import dev.stockade.server.egress.SandboxEgress;
import dev.stockade.server.egress.SecretBinding;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Set;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Each sandbox's way out: its directory DATA/egress/ID, which the sandbox sees
 * ({@link SandboxSpec#EGRESS_DIR_INSIDE}), and the proxy's listener on the socket in it. Opened for a
 * new sandbox and again, on the same path, for one a restarted server takes over (so the sandbox's
 * relay reaches the new listener); removed when the sandbox ends. Without a proxy it does nothing and
 * sandboxes have loopback only. Called from request threads, the pool's refill thread and the reaper.
 */
final class EgressDirs {
    private static final Logger LOG = Logger.getLogger(EgressDirs.class.getName());

    private final EgressProxy proxy;
    private final Path root;

    /** @param proxy null: no egress at all; @param root a directory the server owns */
    EgressDirs(EgressProxy proxy, Path root) {
        this.proxy = proxy;
        this.root = root;
    }

    boolean enabled() {
        return proxy != null;
    }

    /** Where the sandbox's proxy socket is bound (DATA/egress/ID/proxy.sock); null without a proxy. */
    Path socketOf(String id) {
        return proxy == null ? null : root.resolve(id).resolve(SandboxSpec.EGRESS_SOCKET_NAME);
    }

    /**
     * Binds the sandbox's listener with its policy and secrets, replacing a socket an earlier server
     * left there (its listener died with it); null without a proxy.
     */
    SandboxEgress open(String id, long uidBase, NetworkPolicy network, List<SecretBinding> secrets) throws IOException {
        if (proxy == null) return null;
        Path socket = socketOf(id);
        Files.createDirectories(socket.getParent());
        Files.setPosixFilePermissions(socket.getParent(), PosixFilePermissions.fromString("rwx--x--x"));
        Files.deleteIfExists(socket);
        return proxy.attach(id, socket, uidBase, network, secrets);
    }

    /** Closes the listener (failures logged) and removes the directory: the sandbox is gone. */
    void close(String id, SandboxEgress e) {
        closeListener(id, e);
        removeDir(id);
    }

    /** Closes the listener only (null: none); the directory stays for the next server (a detach). */
    void closeListener(String id, SandboxEgress e) {
        if (e == null) return;
        try {
            e.close();
        } catch (RuntimeException ex) {
            LOG.log(Level.WARNING, "closing the egress of sandbox " + id + " failed", ex);
        }
    }

    void removeDir(String id) {
        if (root == null) return;
        Path dir = root.resolve(id);
        try {
            Files.deleteIfExists(dir.resolve(SandboxSpec.EGRESS_SOCKET_NAME));
            Files.deleteIfExists(dir);
        } catch (IOException ex) {
            LOG.log(Level.WARNING, "removing the egress directory " + dir + " failed", ex);
        }
    }

    /** Removes the directories of sandboxes this server does not keep (an earlier server's). */
    void removeExcept(Set<String> keep) {
        if (root == null || !Files.isDirectory(root)) return;
        try (var entries = Files.list(root)) {
            for (Path p : entries.toList()) {
                String name = p.getFileName().toString();
                if (keep.contains(name)) continue;
                if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) removeDir(name);
                else Files.deleteIfExists(p);
            }
        } catch (IOException ex) {
            LOG.log(Level.WARNING, "cleaning " + root + " failed", ex);
        }
    }

    /** Egress attempts allowed since the server started (all sandboxes). */
    long allowedTotal() {
        return proxy == null ? 0 : proxy.allowedTotal();
    }

    /** Egress attempts refused since the server started (all sandboxes). */
    long refusedTotal() {
        return proxy == null ? 0 : proxy.refusedTotal();
    }
}
