package dev.stockade.server.egress;

import java.net.InetAddress;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What a sandbox may reach on the network: immutable, built once from the user's request and
 * swapped whole by {@link SandboxEgress#setPolicy}.
 *
 * <p>Modes: {@link Mode#NONE} refuses everything; {@link Mode#ALLOWLIST} admits only the allow
 * entries; {@link Mode#OPEN} admits everything public except the deny entries. As in E2B, an allow
 * entry wins over a deny entry in every mode, and deny entries are IPs/CIDRs only. Private and
 * special addresses ({@link AddressRanges}) and the host's own addresses are refused on top of this
 * unless the operator opened them; no entry of the policy can (that check is {@link EgressGate}'s, and
 * {@link EgressConfig#closedEntry} refuses an entry that names nothing else).
 *
 * <p>Header rules (E2B's {@code rules[host][].transform.headers}, flattened) map a host pattern to
 * headers set on every request to a matching host; the exact host wins over the longest wildcard.
 *
 * <p>A policy may carry a {@link Downgrade}: the create asked for more (open access, through E2B's
 * implicit fields) than the operator permits, and got this instead. The note goes with the policy,
 * so a replacement through updateNetwork (what the user now asks for by name) drops it, and the
 * proxy's refusals under it say what was asked and how to ask for more.
 */
public final class NetworkPolicy {
    /** How the allow and deny lists are read. */
    public enum Mode { NONE, ALLOWLIST, OPEN }

    /** At most this many entries in each of allow, deny and header rules. */
    public static final int MAX_ENTRIES = 1000;
    static final int MAX_HEADERS_PER_RULE = 64;
    static final int MAX_HEADER_VALUE = 8192;

    /** Headers a rule may not set: they frame the request or route it, and rewriting them enables smuggling. */
    private static final List<String> RESERVED_HEADERS = List.of("host", "content-length", "transfer-encoding",
            "connection", "keep-alive", "proxy-connection", "proxy-authorization", "proxy-authenticate", "te",
            "trailer", "upgrade", "expect");

    private static final NetworkPolicy NONE = new NetworkPolicy(Mode.NONE, List.of(), List.of(), List.of(), null);

    private final Mode mode;
    private final List<EgressRule> allow;
    private final List<EgressRule> deny;
    private final List<HeaderRule> headerRules;
    private final Downgrade downgrade;

    /**
     * Why a sandbox's policy is less than its create asked for.
     *
     * @param requested the mode asked for (open)
     * @param askedThrough the request field that asked for it, e.g. {@code allow_internet_access}
     * @param reason why it was not granted, e.g. "the operator has not enabled open egress"
     */
    public record Downgrade(Mode requested, String askedThrough, String reason) {
        public Downgrade {
            if (requested == null || askedThrough == null || reason == null) {
                throw new IllegalArgumentException("a downgrade names the mode asked, the field and the reason");
            }
        }
    }

    /** One header rule: a host pattern (exact or wildcard) and the headers to set, names as given. */
    record HeaderRule(EgressRule pattern, Map<String, String> headers) {}

    /** A policy-only answer: whether the entries admit the destination, the entry that decided, and why. */
    record Verdict(boolean allowed, String rule, String reason) {}

    private NetworkPolicy(Mode mode, List<EgressRule> allow, List<EgressRule> deny, List<HeaderRule> headerRules,
                          Downgrade downgrade) {
        this.mode = mode;
        this.allow = List.copyOf(allow);
        this.deny = List.copyOf(deny);
        this.headerRules = List.copyOf(headerRules);
        this.downgrade = downgrade;
    }

    /** No network at all: Stockade's default. */
    public static NetworkPolicy none() {
        return NONE;
    }

    /**
     * Builds a policy, refusing bad entries with a message that names the entry.
     *
     * @param allow exact hosts, {@code *.} wildcards, IPs and CIDRs, each optionally with a port
     * @param deny IPs and CIDRs (optionally with a port); host names are refused, as in E2B
     * @param headerRules host pattern (no port) → headers to set; may be null or empty
     * @throws IllegalArgumentException for any bad entry
     */
    public static NetworkPolicy of(Mode mode, List<String> allow, List<String> deny,
                                   Map<String, Map<String, String>> headerRules) {
        if (mode == null) {
            throw new IllegalArgumentException("network mode is missing: use none, allowlist or open");
        }
        List<String> allowList = allow == null ? List.of() : allow;
        List<String> denyList = deny == null ? List.of() : deny;
        Map<String, Map<String, String>> rules = headerRules == null ? Map.of() : headerRules;
        limit("allow", allowList.size());
        limit("deny", denyList.size());
        limit("header rules", rules.size());
        if (mode == Mode.NONE && !allowList.isEmpty()) {
            throw new IllegalArgumentException("network mode none admits nothing: remove the allow entries or use "
                    + "mode allowlist");
        }
        List<EgressRule> allowRules = new ArrayList<>();
        for (String entry : allowList) {
            allowRules.add(EgressRule.parse(entry, true));
        }
        List<EgressRule> denyRules = new ArrayList<>();
        for (String entry : denyList) {
            EgressRule rule = EgressRule.parse(entry, true);
            if (rule.kind() != EgressRule.Kind.ADDRESS) {
                throw new IllegalArgumentException("deny entry '" + entry + "' is a host name: deny entries must be "
                        + "IP addresses or CIDRs (as in E2B's denyOut); to admit only some hosts use an allow list");
            }
            denyRules.add(rule);
        }
        List<HeaderRule> parsedRules = new ArrayList<>();
        Map<String, Boolean> seen = new LinkedHashMap<>();
        for (Map.Entry<String, Map<String, String>> e : rules.entrySet()) {
            EgressRule pattern = EgressRule.parse(e.getKey(), false);
            if (seen.put(pattern.text(), true) != null) {
                throw new IllegalArgumentException("header rule host '" + e.getKey() + "' appears twice");
            }
            parsedRules.add(new HeaderRule(pattern, headers(pattern.text(), e.getValue())));
        }
        return new NetworkPolicy(mode, allowRules, denyRules, parsedRules, null);
    }

    /** This policy, noted as what a create got instead of {@code d.requested()} (null: no note). */
    public NetworkPolicy downgradedFrom(Downgrade d) {
        if (d != null && d.requested() == mode) {
            throw new IllegalArgumentException("a policy is not a downgrade of its own mode");
        }
        return new NetworkPolicy(mode, allow, deny, headerRules, d);
    }

    /** What the create asked for and did not get, or null when this policy is what was asked. */
    public Downgrade downgrade() {
        return downgrade;
    }

    /**
     * Why this policy refuses a destination because of its mode (none, or not in the allow-list):
     * for a downgraded policy, also what was asked, why it was not granted, and how to ask for more.
     */
    String refusedByMode(String host) {
        String base = mode == Mode.NONE ? "the sandbox's network policy is none (no network access)"
                : host + " is not in the sandbox's allow list";
        if (downgrade == null) {
            return mode == Mode.NONE ? base + "; ask for an allow-list (network.allowOut)" : base;
        }
        return base + " (open internet access was asked for through " + downgrade.askedThrough()
                + " but this server does not permit it: " + downgrade.reason() + "); ask for the host in"
                + " network.allowOut at create or through updateNetwork";
    }

    private static void limit(String what, int size) {
        if (size > MAX_ENTRIES) {
            throw new IllegalArgumentException("network " + what + " has " + size + " entries; at most "
                    + MAX_ENTRIES + " are allowed");
        }
    }

    private static Map<String, String> headers(String host, Map<String, String> given) {
        if (given == null || given.isEmpty()) {
            throw new IllegalArgumentException("header rule for '" + host + "' sets no headers");
        }
        if (given.size() > MAX_HEADERS_PER_RULE) {
            throw new IllegalArgumentException("header rule for '" + host + "' sets more than "
                    + MAX_HEADERS_PER_RULE + " headers");
        }
        Map<String, String> out = new LinkedHashMap<>();
        Map<String, Boolean> lower = new LinkedHashMap<>();
        for (Map.Entry<String, String> h : given.entrySet()) {
            String name = h.getKey();
            String value = h.getValue();
            if (name == null || !HttpHead.isToken(name)) {
                throw new IllegalArgumentException("header rule for '" + host + "' has a bad header name '" + name + "'");
            }
            String key = name.toLowerCase(Locale.ROOT);
            if (RESERVED_HEADERS.contains(key) || key.startsWith("proxy-")) {
                throw new IllegalArgumentException("header rule for '" + host + "' may not set " + name
                        + ": it controls how the request is framed or routed");
            }
            if (lower.put(key, true) != null) {
                throw new IllegalArgumentException("header rule for '" + host + "' sets " + name + " twice");
            }
            if (value == null || value.length() > MAX_HEADER_VALUE || !HttpHead.isFieldValue(value)) {
                throw new IllegalArgumentException("header rule for '" + host + "' has a bad value for " + name
                        + ": at most " + MAX_HEADER_VALUE + " characters, no control characters");
            }
            out.put(name, value);
        }
        return Collections.unmodifiableMap(out);
    }

    public Mode mode() {
        return mode;
    }

    /** The allow entries in canonical form, as a plain list (for showing the policy back). */
    public List<String> allow() {
        return allow.stream().map(EgressRule::text).toList();
    }

    /** The deny entries in canonical form, as a plain list. */
    public List<String> deny() {
        return deny.stream().map(EgressRule::text).toList();
    }

    /** Host pattern → headers, as plain ordered maps. */
    public Map<String, Map<String, String>> headerRules() {
        Map<String, Map<String, String>> out = new LinkedHashMap<>();
        for (HeaderRule rule : headerRules) {
            out.put(rule.pattern().text(), rule.headers());
        }
        return Collections.unmodifiableMap(out);
    }

    /** The parsed allow entries. */
    List<EgressRule> allowEntries() {
        return allow;
    }

    /** Whether any allow entry is an IP/CIDR (then a name's resolved addresses can be admitted by address). */
    boolean hasAddressAllows() {
        return allow.stream().anyMatch(r -> r.kind() == EgressRule.Kind.ADDRESS);
    }

    /** The first host-name allow entry naming {@code host} (ignoring ports), or null. */
    EgressRule nameAllow(String host) {
        for (EgressRule rule : allow) {
            if (rule.matchesName(host)) {
                return rule;
            }
        }
        return null;
    }

    /**
     * The entries' answer for one destination (private ranges are judged elsewhere).
     *
     * @param host the normalized host the sandbox asked for (name or IP literal text)
     * @param literal whether {@code host} is an IP literal (names never match address entries by text)
     * @param address the resolved address
     */
    Verdict judge(String host, boolean literal, InetAddress address, int port) {
        if (mode == Mode.NONE) {
            return new Verdict(false, "mode none", refusedByMode(host));
        }
        EgressRule portMismatch = null;
        for (EgressRule rule : allow) {
            boolean names = literal ? rule.matchesAddress(address) : rule.matchesName(host) || rule.matchesAddress(address);
            if (names) {
                if (rule.admitsPort(port)) {
                    return new Verdict(true, "allow " + rule.text(), "admitted by allow entry " + rule.text());
                }
                portMismatch = portMismatch == null ? rule : portMismatch;
            }
        }
        for (EgressRule rule : deny) {
            if (rule.matchesAddress(address) && (rule.port() == 0 || rule.port() == port)) {
                return new Verdict(false, "deny " + rule.text(), Cidr.text(address) + " is covered by deny entry "
                        + rule.text());
            }
        }
        if (mode == Mode.OPEN) {
            return new Verdict(true, "mode open", "the sandbox may reach public addresses");
        }
        if (portMismatch != null) {
            return new Verdict(false, "allow " + portMismatch.text(), "port " + port + " is not admitted: allow entry "
                    + portMismatch.text() + (portMismatch.port() == 0 ? " admits ports 80 and 443 only" : ""));
        }
        return new Verdict(false, "mode allowlist", refusedByMode(host));
    }

    /** The headers to set on a request to {@code host}: the exact rule, else the longest matching wildcard. */
    Map<String, String> headersFor(String host) {
        HeaderRule best = null;
        for (HeaderRule rule : headerRules) {
            EgressRule p = rule.pattern();
            if (p.kind() == EgressRule.Kind.EXACT && p.host().equals(host)) {
                return rule.headers();
            }
            if (p.matchesName(host) && (best == null || p.host().length() > best.pattern().host().length())) {
                best = rule;
            }
        }
        return best == null ? Map.of() : best.headers();
    }

    /** Mode and entries; header rules by host and header NAME only, since their values may be credentials. */
    @Override
    public String toString() {
        Map<String, Object> names = new LinkedHashMap<>();
        headerRules.forEach(r -> names.put(r.pattern().text(), r.headers().keySet()));
        return "NetworkPolicy[mode=" + mode.name().toLowerCase(Locale.ROOT) + ", allow=" + allow() + ", deny=" + deny()
                + ", headerRules=" + names + (downgrade == null ? "" : ", downgrade=" + downgrade) + "]";
    }
}
