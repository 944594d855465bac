package dev.stockade.server.core;

import dev.stockade.server.error.StockadeError;

import dev.stockade.protocol.link.AgentClient;
import dev.stockade.runtime.Limits;
import dev.stockade.server.egress.SandboxEgress;
import dev.stockade.server.egress.SecretBinding;
import java.util.List;
import java.time.Instant;
import java.util.Map;

/**
 * One sandbox as the server knows it. Its {@link Facts} are fixed for its life; the deadline and state
 * change under {@link SandboxManager}'s control (volatile here so API threads read them without
 * locks). Built in one place only, {@link SandboxAssembler}, for a create, a pool hand-over and a
 * take-over alike.
 */
public final class Sandbox {
    /**
     * What a sandbox is, fixed for its life: what the store records and a restarted server reads back.
     * {@code processEnv} is the envVars given at create plus each secret's placeholder under the
     * secret's name; {@code secrets} holds the bindings with their values (for the store and the proxy).
     */
    record Facts(String id, String templateId, String alias, String runtime, Map<String, String> metadata,
                 Map<String, String> processEnv, List<SecretBinding> secrets, Limits limits, Instant startedAt,
                 String accessToken, long uidBase, boolean autoPause, int idleTimeoutSeconds, String seededFrom,
                 String defaultUser) {
        Facts {
            metadata = Map.copyOf(metadata);
            processEnv = Map.copyOf(processEnv);
            secrets = List.copyOf(secrets);
        }

        /** The uid slot its range was claimed as (uidBase = slot × 65536). */
        int slot() {
            return (int) (uidBase / 65536);
        }
    }

    /** Who owns a sandbox, and the share of its quota the sandbox holds until it ends. */
    record Owner(String tenant, Admission.Lease lease) {}

    private final Facts facts;
    private final String id;
    private final List<String> secretNames;
    private final SandboxEgress egress;
    private final Owner owner;
    private final long initPid;
    private final java.util.function.Function<Sandbox, java.util.Optional<String>> endReason;
    private final OutputPace outputPace;
    private volatile AgentClient agent;
    private volatile Instant endAt;
    private volatile SandboxState state = new SandboxState.Starting();
    private final java.util.concurrent.atomic.AtomicBoolean copying = new java.util.concurrent.atomic.AtomicBoolean();
    private final java.util.concurrent.atomic.AtomicLong lastActivity = new java.util.concurrent.atomic.AtomicLong(System.nanoTime());
    private final java.util.concurrent.atomic.AtomicInteger inFlight = new java.util.concurrent.atomic.AtomicInteger();

    /**
     * @param egress its egress (null without a proxy)
     * @param initPid the host pid of its init (0 when unknown)
     * @param endReason asks its runtime why it stopped (see {@link #endReason()})
     * @param outputPace the rate its output is relayed at
     */
    Sandbox(Facts facts, Owner owner, Instant endAt, SandboxEgress egress, long initPid,
            java.util.function.Function<Sandbox, java.util.Optional<String>> endReason, OutputPace outputPace) {
        this.facts = facts;
        this.id = facts.id();
        this.secretNames = facts.secrets().stream().map(SecretBinding::name).toList();
        this.owner = owner;
        this.endAt = endAt;
        this.egress = egress;
        this.initPid = initPid;
        this.endReason = endReason;
        this.outputPace = outputPace;
    }

    Facts facts() { return facts; }

    public String id() { return id; }
    public String templateId() { return facts.templateId(); }
    public String alias() { return facts.alias(); }
    public String runtime() { return facts.runtime(); }

    /** Why its runtime says it stopped, kept when the server ends a vanished sandbox (before destroy). */
    private volatile String stoppedBecause;

    void stoppedBecause(String why) {
        this.stoppedBecause = why;
    }

    String stoppedBecause() {
        return stoppedBecause;
    }

    /**
     * Why the sandbox's container stopped on its own, when its runtime can tell (a limit that ends
     * the whole sandbox); empty otherwise. For explaining a broken stream, not for deciding.
     */
    public java.util.Optional<String> endReason() {
        try {
            return endReason.apply(this);
        } catch (RuntimeException e) {
            return java.util.Optional.empty();
        }
    }
    public Map<String, String> metadata() { return facts.metadata(); }
    /** The rate the server relays its command and cell output at, all its streams together. */
    public OutputPace outputPace() { return outputPace; }
    /**
     * What every process of the sandbox gets in its environment: the envVars given at create plus each secret's
     * placeholder under the secret's name. Never shown in API responses.
     */
    public Map<String, String> processEnv() { return facts.processEnv(); }
    /** Names of the sandbox's secrets (never their values or placeholders). */
    public List<String> secretNames() { return secretNames; }
    /** The sandbox's egress (policy, decision log); null when the server runs without a proxy. */
    public SandboxEgress egress() { return egress; }
    public Limits limits() { return facts.limits(); }
    public Instant startedAt() { return facts.startedAt(); }
    public Instant endAt() { return endAt; }
    public SandboxState state() { return state; }
    /** The per-sandbox token (E2B's envdAccessToken) that authorises in-sandbox calls. */
    public String accessToken() { return facts.accessToken(); }
    long uidBase() { return facts.uidBase(); }
    /** The tenant that owns the sandbox: no other tenant can see or reach it. */
    public String tenant() { return owner.tenant(); }
    Owner owner() { return owner; }

    /** The agent link; throws NOT_FOUND unless the sandbox is running. */
    public AgentClient agent() {
        AgentClient a = agent;
        if (!(state instanceof SandboxState.Running) || a == null) {
            throw StockadeError.notFound("sandbox " + id + " is not running");
        }
        return a;
    }

    void running(AgentClient agent) {
        this.agent = agent;
        this.state = new SandboxState.Running();
    }

    void ended(String why) {
        this.state = new SandboxState.Ended(Instant.now(), why);
    }

    void endAt(Instant at) {
        this.endAt = at;
    }

    public boolean isRunning() {
        return state instanceof SandboxState.Running;
    }

    public boolean isPaused() {
        return state instanceof SandboxState.Paused;
    }

    /** Running or paused: it exists for its owner (listed, shown, can be killed or resumed). */
    public boolean isLive() {
        return isRunning() || isPaused();
    }

    void paused(java.time.Duration remaining) {
        this.state = new SandboxState.Paused(Instant.now(), remaining);
    }

    void resumed() {
        this.state = new SandboxState.Running();
    }

    /** The secrets' bindings, values included: for the store only (a restarted server needs them). */
    List<SecretBinding> secretBindings() {
        return facts.secrets();
    }

    /**
     * The idle policy: with a positive value the sandbox ends (or pauses, with autoPause) after that
     * many seconds without activity — no request for it, no request of it still running (a command's
     * or a cell's stream), and no process of the user's left running in it. 0: off.
     */
    public int idleTimeoutSeconds() {
        return facts.idleTimeoutSeconds();
    }

    /** Something happened for it (a request arrived or ended). */
    public void touch() {
        lastActivity.set(System.nanoTime());
    }

    /** A request for it started: it counts as activity until {@link #requestEnded}. */
    public void requestStarted() {
        inFlight.incrementAndGet();
        touch();
    }

    public void requestEnded() {
        inFlight.decrementAndGet();
        touch();
    }

    int requestsInFlight() {
        return inFlight.get();
    }

    /** Nanoseconds (System.nanoTime) of its last activity. */
    long lastActivityNanos() {
        return lastActivity.get();
    }

    /** Marks a snapshot copy in progress; false when one already is. */
    boolean startCopy() {
        return copying.compareAndSet(false, true);
    }

    void endCopy() {
        copying.set(false);
    }

    /** A snapshot is being copied from it (the reaper leaves it alone meanwhile). */
    boolean copying() {
        return copying.get();
    }

    /** The host pid of its init (the agent): while it lives, the container runs. 0 when unknown. */
    long initPid() {
        return initPid;
    }

    /** The snapshot it started from (its files only), or null. */
    /** The user commands and file calls act as when they name none: a built template's USER, else null ("user"). */
    public String defaultUser() {
        return facts.defaultUser();
    }

    public String seededFrom() {
        return facts.seededFrom();
    }

    /** Whether its timeout pauses it instead of ending it (E2B's autoPause). */
    public boolean autoPause() {
        return facts.autoPause();
    }
}
