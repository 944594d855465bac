package dev.stockade.runtime;

import java.nio.file.Path;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * What a runtime needs to start one sandbox: the server has already decided everything here.
 *
 * @param id the sandbox id (lowercase letters and digits), unique on this host
 * @param uidBase first host uid/gid of the 65536-id range the sandbox's user namespace maps onto;
 *     no two live sandboxes share a range
 * @param stateDir host directory owned by the server for this sandbox; the runtime keeps its
 *     bundle, mounts and the agent socket under it and removes it on destroy
 * @param template the root filesystem template
 * @param agentDir host directory holding the agent program (and its helpers, such as the code
 *     interpreter's kernel), bind-mounted read-only at /opt/stockade in the sandbox
 * @param limits resource limits, already validated against the server's maxima
 * @param egressSocket host path of a unix socket the server already listens on for this sandbox's
 *     egress proxy, owned by the sandbox's root, named {@link #EGRESS_SOCKET_NAME} in a directory of
 *     its own; the runtime binds that directory at {@link #EGRESS_DIR_INSIDE} (so a socket the server
 *     binds again there after a restart is the one the sandbox sees) and tells the agent. Null: the
 *     sandbox has no egress path at all.
 * @param warmup what the agent prepares right after it starts, off the create path (pooled sandboxes)
 * @param seed a snapshot's files ({@link SandboxRuntime#snapshot}) the sandbox starts with on top of
 *     its template, owned by canonical ids (0..65535) that the runtime maps into this sandbox's
 *     range; null: the template alone
 */
public record SandboxSpec(String id, long uidBase, Path stateDir, Template template, Path agentDir, Limits limits,
                          Path egressSocket, Warmup warmup, Path seed) {
    /**
     * Work a pooled sandbox does before anyone asks: start the default code context's interpreter
     * and import these modules into it (sys.modules only; the user's namespace stays empty).
     */
    public record Warmup(boolean defaultContext, java.util.List<String> preload) {
        public static final Warmup NONE = new Warmup(false, java.util.List.of());
        private static final Pattern MODULE = Pattern.compile("[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)*");

        public Warmup {
            preload = java.util.List.copyOf(preload);
            if (!defaultContext && !preload.isEmpty()) throw new IllegalArgumentException("preloading needs the default context");
            for (String m : preload) {
                if (m.length() > 100 || !MODULE.matcher(m).matches()) throw new IllegalArgumentException("invalid module name: " + m);
            }
        }
    }

    /** The egress socket's file name, in its host directory and inside the sandbox. */
    public static final String EGRESS_SOCKET_NAME = "proxy.sock";
    /** Where the egress socket's directory appears inside the sandbox. */
    public static final String EGRESS_DIR_INSIDE = "/run/stockade-egress";
    /** Where the egress socket appears inside the sandbox (the agent's relay connects to it). */
    public static final String EGRESS_SOCKET_INSIDE = EGRESS_DIR_INSIDE + "/" + EGRESS_SOCKET_NAME;

    private static final Pattern ID = Pattern.compile("[a-z0-9]{1,40}");

    public SandboxSpec {
        Objects.requireNonNull(id, "id");
        if (!ID.matcher(id).matches()) throw new IllegalArgumentException("invalid sandbox id: " + id);
        if (uidBase < 65536 || uidBase + 65536 > 0xFFFF_FFFFL) throw new IllegalArgumentException("uidBase out of range: " + uidBase);
        Objects.requireNonNull(stateDir, "stateDir");
        Objects.requireNonNull(template, "template");
        Objects.requireNonNull(agentDir, "agentDir");
        Objects.requireNonNull(limits, "limits");
        if (warmup == null) warmup = Warmup.NONE;
    }

    /** A spec without an egress path or warm-up. */
    public SandboxSpec(String id, long uidBase, Path stateDir, Template template, Path agentDir, Limits limits) {
        this(id, uidBase, stateDir, template, agentDir, limits, null, Warmup.NONE, null);
    }

    /** A spec on the template alone (no snapshot's files). */
    public SandboxSpec(String id, long uidBase, Path stateDir, Template template, Path agentDir, Limits limits,
                       Path egressSocket, Warmup warmup) {
        this(id, uidBase, stateDir, template, agentDir, limits, egressSocket, warmup, null);
    }
}
