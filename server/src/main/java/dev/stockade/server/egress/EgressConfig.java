package dev.stockade.server.egress;

import java.net.InetAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The operator's settings for the egress proxy (not the user's: those are {@link NetworkPolicy}).
 *
 * <p>To add a setting: add the component, give it a default in {@link #defaults()}, validate it
 * here, and document it in docs/configuration.md.
 *
 * @param allowOpen whether sandboxes may use {@link NetworkPolicy.Mode#OPEN} at all
 * @param privateAllow CIDRs of private/special addresses sandboxes may reach when their policy
 *     admits them (e.g. a company proxy at 10.1.2.3/32); empty by default
 * @param hosts static name → IP overrides used instead of DNS for those names (names lowercase,
 *     IP literals only)
 * @param connectTimeout limit for resolving a name and for connecting upstream (default 10 s)
 * @param idleTimeout a tunnel or request with no bytes either way for this long is closed (default 5 min)
 * @param maxConnectionsPerSandbox concurrent proxy connections per sandbox (default 256)
 * @param logCapacity decisions kept per sandbox (default 1000)
 * @param extraTrustPem extra CA certificates for verifying upstreams of intercepted TLS; null for
 *     none (only handed to the TLS interception)
 * @param openRequests what a create gets that asks for open access only through E2B's implicit
 *     fields while {@code allowOpen} is off (default {@link OpenRequests#DOWNGRADE})
 */
public record EgressConfig(
        boolean allowOpen,
        List<String> privateAllow,
        Map<String, List<String>> hosts,
        Duration connectTimeout,
        Duration idleTimeout,
        int maxConnectionsPerSandbox,
        int logCapacity,
        Path extraTrustPem,
        OpenRequests openRequests) {

    /**
     * The answer to a create that asks for open access without naming it: E2B's SDKs send
     * {@code allow_internet_access: true} on every create whether their user asked or not, so on a
     * server without open egress refusing it would refuse every create of an unchanged E2B program.
     * A create that names {@code network.mode: "open"} is refused either way.
     */
    public enum OpenRequests {
        /** Created under the most the operator permits of what was asked (an allow-list of its allowOut, else none). */
        DOWNGRADE,
        /** Refused with 400, as open access asked by name is. */
        REFUSE
    }

    /** The settings without {@code openRequests}: implicit open requests are downgraded. */
    public EgressConfig(boolean allowOpen, List<String> privateAllow, Map<String, List<String>> hosts,
                        Duration connectTimeout, Duration idleTimeout, int maxConnectionsPerSandbox, int logCapacity,
                        Path extraTrustPem) {
        this(allowOpen, privateAllow, hosts, connectTimeout, idleTimeout, maxConnectionsPerSandbox, logCapacity,
                extraTrustPem, OpenRequests.DOWNGRADE);
    }

    public EgressConfig {
        openRequests = openRequests == null ? OpenRequests.DOWNGRADE : openRequests;
        privateAllow = List.copyOf(privateAllow == null ? List.of() : privateAllow);
        for (String cidr : privateAllow) {
            try {
                Cidr.parse(cidr);
            } catch (IllegalArgumentException e) {
                throw new IllegalArgumentException("egress privateAllow: " + e.getMessage(), e);
            }
        }
        Map<String, List<String>> normalized = new LinkedHashMap<>();
        for (Map.Entry<String, List<String>> e : (hosts == null ? Map.<String, List<String>>of() : hosts).entrySet()) {
            String name;
            try {
                name = EgressRule.hostName(e.getKey(), e.getKey());
            } catch (IllegalArgumentException | NullPointerException ex) {
                throw new IllegalArgumentException("egress hosts: '" + e.getKey() + "' is not a host name", ex);
            }
            if (e.getValue() == null || e.getValue().isEmpty()) {
                throw new IllegalArgumentException("egress hosts: " + name + " maps to no address");
            }
            for (String ip : e.getValue()) {
                if (ip == null || Cidr.parseAddress(ip) == null) {
                    throw new IllegalArgumentException("egress hosts: " + name + " maps to '" + ip
                            + "', which is not an IP address");
                }
            }
            if (normalized.put(name, List.copyOf(e.getValue())) != null) {
                throw new IllegalArgumentException("egress hosts: " + name + " appears twice");
            }
        }
        hosts = Map.copyOf(normalized);
        connectTimeout = connectTimeout == null ? Duration.ofSeconds(10) : connectTimeout;
        idleTimeout = idleTimeout == null ? Duration.ofMinutes(5) : idleTimeout;
        if (connectTimeout.isNegative() || connectTimeout.isZero() || connectTimeout.toSeconds() > 300) {
            throw new IllegalArgumentException("egress connectTimeout must be between 1 ms and 5 minutes");
        }
        if (idleTimeout.isNegative() || idleTimeout.isZero() || idleTimeout.toHours() > 24) {
            throw new IllegalArgumentException("egress idleTimeout must be between 1 ms and 24 hours");
        }
        if (maxConnectionsPerSandbox < 1 || maxConnectionsPerSandbox > 100_000) {
            throw new IllegalArgumentException("egress maxConnectionsPerSandbox must be 1..100000");
        }
        if (logCapacity < 1 || logCapacity > 1_000_000) {
            throw new IllegalArgumentException("egress logCapacity must be 1..1000000");
        }
    }

    /** Open mode refused (implicit requests downgraded), no private addresses, DNS for every name, 10 s / 5 min / 256 / 1000. */
    public static EgressConfig defaults() {
        return new EgressConfig(false, List.of(), Map.of(), Duration.ofSeconds(10), Duration.ofMinutes(5), 256, 1000,
                null, OpenRequests.DOWNGRADE);
    }

    /** These settings with other private ranges the operator opens ({@code --egress-private}). */
    public EgressConfig withPrivateAllow(List<String> cidrs) {
        return new EgressConfig(allowOpen, cidrs, hosts, connectTimeout, idleTimeout, maxConnectionsPerSandbox,
                logCapacity, extraTrustPem, openRequests);
    }

    /** These settings with other static name → address overrides ({@code --egress-host}). */
    public EgressConfig withHosts(Map<String, List<String>> overrides) {
        return new EgressConfig(allowOpen, privateAllow, overrides, connectTimeout, idleTimeout, maxConnectionsPerSandbox,
                logCapacity, extraTrustPem, openRequests);
    }

    /** These settings with another answer to implicit open requests. */
    public EgressConfig withOpenRequests(OpenRequests answer) {
        return new EgressConfig(allowOpen, privateAllow, hosts, connectTimeout, idleTimeout, maxConnectionsPerSandbox,
                logCapacity, extraTrustPem, answer);
    }

    /**
     * Why a sandbox's policy may not be set, if it may not: an IP/CIDR allow entry that names only
     * the operator's addresses (a private/special range, or an address of this host) where the
     * operator has not opened them (issue 15). Such an entry could never admit anything (the proxy
     * refuses those addresses at connect time whatever the entries say), so it is refused when it is
     * asked for, naming the entry and the reason. Entries wider than a special range ({@code 0.0.0.0/0})
     * are accepted: their public part is the tenant's to name. Called on request threads, at create
     * and when a sandbox's policy is replaced.
     */
    public Optional<String> closedEntry(NetworkPolicy policy) {
        return closedEntry(policy, HostAddresses.system());
    }

    Optional<String> closedEntry(NetworkPolicy policy, HostAddresses host) {
        List<Cidr> opened = privateAllowCidrs();
        for (EgressRule rule : policy.allowEntries()) {
            if (rule.kind() != EgressRule.Kind.ADDRESS) {
                continue;
            }
            List<Cidr> forms = AddressRanges.forms(rule.cidr());
            if (opened.stream().anyMatch(o -> forms.stream().anyMatch(o::encloses))) {
                continue;
            }
            Optional<Cidr> range = AddressRanges.holding(rule.cidr());
            boolean single = rule.cidr().prefix() == (rule.cidr().isV4() ? 32 : 128);
            if (range.isEmpty() && !(single && host.contains(Cidr.address(rule.cidr())))) {
                continue;
            }
            String what = range.map(r -> "is inside " + r + ", a private/special range (loopback, private networks,"
                    + " link-local and cloud metadata)").orElse("is an address of this server's host");
            return Optional.of("network.allowOut entry '" + rule.text() + "' " + what + ", which only the operator"
                    + " can open (--egress-private) and has not opened for it: a sandbox's allow entries narrow what the operator"
                    + " permits and cannot open the operator's addresses; remove the entry or ask the operator");
        }
        return Optional.empty();
    }

    List<Cidr> privateAllowCidrs() {
        return privateAllow.stream().map(Cidr::parse).toList();
    }

    Map<String, List<InetAddress>> hostAddresses() {
        Map<String, List<InetAddress>> out = new LinkedHashMap<>();
        hosts.forEach((name, ips) -> {
            List<InetAddress> list = new ArrayList<>();
            ips.forEach(ip -> list.add(Cidr.parseAddress(ip)));
            out.put(name, List.copyOf(list));
        });
        return Map.copyOf(out);
    }
}
