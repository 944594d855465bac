package dev.stockade.server.core;

import dev.stockade.protocol.link.AgentClient;
import dev.stockade.runtime.Limits;
import dev.stockade.server.egress.SandboxEgress;
import dev.stockade.server.egress.SecretBinding;
import java.util.List;
import java.time.Instant;
import java.util.Map;

/**
 * One sandbox as the server knows it. Identity and spec are immutable; the deadline and state change
 * under the manager's control (volatile here so API threads read them without locks).
 */
public final class Sandbox {
    private final String id;
    private final String templateId;
    private final String alias;
    private final String runtime;
    private final Map<String, String> metadata;
    private final Map<String, String> processEnv;
    private final List<String> secretNames;
    private volatile SandboxEgress egress;
    private final Limits limits;
    private final Instant startedAt;
    private final String accessToken;
    private final long uidBase;
    private final SandboxManager.Owner owner;
    private volatile AgentClient agent;
    private volatile Instant endAt;
    private volatile SandboxState state = new SandboxState.Starting();
    private volatile boolean autoPause;
    private volatile List<SecretBinding> secretBindings = List.of();
    private volatile String seededFrom;
    private volatile long initPid;
    private volatile int idleTimeoutSeconds;
    private final java.util.concurrent.atomic.AtomicBoolean copying = new java.util.concurrent.atomic.AtomicBoolean();
    private final java.util.concurrent.atomic.AtomicLong lastActivity = new java.util.concurrent.atomic.AtomicLong(System.nanoTime());
    private final java.util.concurrent.atomic.AtomicInteger inFlight = new java.util.concurrent.atomic.AtomicInteger();

    Sandbox(String id, String templateId, String alias, String runtime, Map<String, String> metadata,
            Map<String, String> processEnv, List<String> secretNames, Limits limits, Instant startedAt, Instant endAt, String accessToken, long uidBase,
            SandboxManager.Owner owner) {
        this.id = id;
        this.templateId = templateId;
        this.alias = alias;
        this.runtime = runtime;
        this.metadata = Map.copyOf(metadata);
        this.processEnv = Map.copyOf(processEnv);
        this.secretNames = List.copyOf(secretNames);
        this.limits = limits;
        this.startedAt = startedAt;
        this.endAt = endAt;
        this.accessToken = accessToken;
        this.uidBase = uidBase;
        this.owner = owner;
    }

    public String id() { return id; }
    public String templateId() { return templateId; }
    public String alias() { return alias; }
    public String runtime() { return runtime; }

    private volatile java.util.function.Supplier<java.util.Optional<String>> endReason = java.util.Optional::empty;

    /** Why its runtime says it stopped, kept when the server ends a vanished sandbox (before destroy). */
    private volatile String stoppedBecause;

    void stoppedBecause(String why) {
        this.stoppedBecause = why;
    }

    String stoppedBecause() {
        return stoppedBecause;
    }

    /** Where {@link #endReason()} asks (the sandbox's runtime). */
    void endReasonSource(java.util.function.Supplier<java.util.Optional<String>> source) {
        this.endReason = source;
    }

    /**
     * Why the sandbox's container stopped on its own, when its runtime can tell (a limit that ends
     * the whole sandbox); empty otherwise. For explaining a broken stream, not for deciding.
     */
    public java.util.Optional<String> endReason() {
        try {
            return endReason.get();
        } catch (RuntimeException e) {
            return java.util.Optional.empty();
        }
    }
    public Map<String, String> metadata() { return metadata; }
    /**
     * What every process of the sandbox gets in its environment: the envVars given at create plus each secret's
     * placeholder under the secret's name. Never shown in API responses.
     */
    public Map<String, String> processEnv() { return processEnv; }
    /** Names of the sandbox's secrets (never their values or placeholders). */
    public List<String> secretNames() { return secretNames; }
    /** The sandbox's egress (policy, decision log); null when the server runs without a proxy. */
    public SandboxEgress egress() { return egress; }
    void egress(SandboxEgress e) { this.egress = e; }
    public Limits limits() { return limits; }
    public Instant startedAt() { return startedAt; }
    public Instant endAt() { return endAt; }
    public SandboxState state() { return state; }
    /** The per-sandbox token (E2B's envdAccessToken) that authorises in-sandbox calls. */
    public String accessToken() { return accessToken; }
    long uidBase() { return uidBase; }
    /** The tenant that owns the sandbox: no other tenant can see or reach it. */
    public String tenant() { return owner.tenant(); }
    SandboxManager.Owner owner() { return owner; }

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
        return secretBindings;
    }

    void secretBindings(List<SecretBinding> bindings) {
        this.secretBindings = List.copyOf(bindings);
    }

    /**
     * The idle policy: with a positive value the sandbox ends (or pauses, with autoPause) after that
     * many seconds without activity — no request for it, no request of it still running (a command's
     * or a cell's stream), and no process of the user's left running in it. 0: off.
     */
    public int idleTimeoutSeconds() {
        return idleTimeoutSeconds;
    }

    void idleTimeoutSeconds(int seconds) {
        this.idleTimeoutSeconds = seconds;
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

    void initPid(long pid) {
        this.initPid = pid;
    }

    /** The snapshot it started from (its files only), or null. */
    public String seededFrom() {
        return seededFrom;
    }

    void seededFrom(String snapshotId) {
        this.seededFrom = snapshotId;
    }

    /** Whether its timeout pauses it instead of ending it (E2B's autoPause). */
    public boolean autoPause() {
        return autoPause;
    }

    void autoPause(boolean on) {
        this.autoPause = on;
    }
}
