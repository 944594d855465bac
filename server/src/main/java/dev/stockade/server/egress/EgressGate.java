package dev.stockade.server.egress;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.util.List;
import java.util.Optional;

/**
 * Decides one destination: the sandbox's policy, then the operator's addresses (the private/special
 * ranges of {@link AddressRanges} and the host's own interface addresses, {@link HostAddresses}), on
 * addresses resolved here on the host. The first address that passes is pinned: the connection
 * goes to exactly that address and the name is never resolved again for it.
 *
 * <p>The operator's addresses open only where the operator's {@code privateAllow}
 * ({@code --egress-private}) covers them, and then only as far as the sandbox's policy admits them:
 * a sandbox's allow entries narrow what the operator permits and never widen it (issue 15, where a
 * tenant's {@code allowOut: ["127.0.0.1:3000"]} read the server's own API).
 *
 * <p>Order: mode none refuses before any lookup; in allowlist mode a name no entry names is
 * refused before any lookup too unless the allow list has IP/CIDR entries (then its addresses may
 * match them). Every resolved address is judged; when all are refused, the first refusal is
 * reported.
 */
final class EgressGate {
    private final HostResolver resolver;
    private final List<Cidr> privateAllow;
    private final HostAddresses hostAddresses;

    /**
     * The answer for one destination.
     *
     * @param address the pinned address when allowed; on refusal the refused address, or null if none
     */
    record Outcome(boolean allowed, InetSocketAddress address, String rule, String reason) {
        String addressText() {
            return address == null ? null : Cidr.text(address.getAddress());
        }
    }

    /** A gate that refuses the addresses of this host's interfaces. */
    EgressGate(HostResolver resolver, List<Cidr> privateAllow) {
        this(resolver, privateAllow, HostAddresses.system());
    }

    EgressGate(HostResolver resolver, List<Cidr> privateAllow, HostAddresses hostAddresses) {
        this.resolver = resolver;
        this.privateAllow = List.copyOf(privateAllow);
        this.hostAddresses = hostAddresses;
    }

    /**
     * Decides {@code host:port} for a sandbox with {@code policy}, resolving the name if needed.
     *
     * @param host normalized: a lowercase name, or an IP literal's canonical text
     * @param literal the IP address when {@code host} is an IP literal, else null
     */
    Outcome decide(NetworkPolicy policy, String host, InetAddress literal, int port) {
        if (policy.mode() == NetworkPolicy.Mode.NONE) {
            return new Outcome(false, null, "mode none", policy.refusedByMode(host));
        }
        List<InetAddress> candidates;
        if (literal != null) {
            candidates = List.of(literal);
        } else {
            if (policy.mode() == NetworkPolicy.Mode.ALLOWLIST && policy.nameAllow(host) == null
                    && !policy.hasAddressAllows()) {
                return new Outcome(false, null, "mode allowlist", policy.refusedByMode(host));
            }
            try {
                candidates = resolver.resolve(host);
            } catch (UnknownHostException e) {
                return new Outcome(false, null, "resolve", e.getMessage());
            }
            if (candidates.isEmpty()) {
                return new Outcome(false, null, "resolve", host + " has no addresses");
            }
        }
        Outcome first = null;
        for (InetAddress address : candidates) {
            Outcome o = judge(policy, host, literal != null, address, port);
            if (o.allowed()) {
                return o;
            }
            first = first == null ? o : first;
        }
        if (candidates.size() > 1) {
            return new Outcome(false, first.address(), first.rule(), "all " + candidates.size() + " addresses of "
                    + host + " are refused; " + first.reason());
        }
        return first;
    }

    /** Judges one already-resolved address, without any lookup (also used when the policy changes). */
    Outcome judge(NetworkPolicy policy, String host, boolean literal, InetAddress address, int port) {
        InetSocketAddress target = new InetSocketAddress(address, port);
        NetworkPolicy.Verdict verdict = policy.judge(host, literal, address, port);
        if (!verdict.allowed()) {
            return new Outcome(false, target, verdict.rule(), verdict.reason());
        }
        Optional<Cidr> range = AddressRanges.special(address);
        boolean hostOwn = range.isEmpty() && hostAddresses.contains(address);
        if (range.isEmpty() && !hostOwn) {
            return new Outcome(true, target, verdict.rule(), verdict.reason());
        }
        InetAddress judged = AddressRanges.effective(address);
        for (Cidr cidr : privateAllow) {
            if (cidr.contains(judged) || cidr.contains(address)) {
                return new Outcome(true, target, verdict.rule(), verdict.reason()
                        + "; private address admitted by the operator's privateAllow " + cidr);
            }
        }
        String what = hostOwn ? " is an address of this host (every service it binds on 0.0.0.0)"
                : " is in the private/special range " + range.get();
        return new Outcome(false, target, hostOwn ? "host-address " + Cidr.text(address) : "private-range " + range.get(),
                Cidr.text(address) + what + ", which only the operator can open (--egress-private)"
                        + (verdict.rule().startsWith("allow ") ? "; the sandbox's " + verdict.rule().substring(6)
                        + " entry cannot" : ""));
    }
}