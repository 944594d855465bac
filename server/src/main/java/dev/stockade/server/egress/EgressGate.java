package dev.stockade.server.egress;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.util.List;
import java.util.Optional;

/**
 * Decides one destination: the sandbox's policy, then the private/special address ranges, on
 * addresses resolved here on the host. The first address that passes is pinned: the connection
 * goes to exactly that address and the name is never resolved again for it.
 *
 * <p>Order: mode none refuses before any lookup; in allowlist mode a name no entry names is
 * refused before any lookup too unless the allow list has IP/CIDR entries (then its addresses may
 * match them). Every resolved address is judged; when all are refused, the first refusal is
 * reported.
 */
final class EgressGate {
    private final HostResolver resolver;
    private final List<Cidr> privateAllow;

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

    EgressGate(HostResolver resolver, List<Cidr> privateAllow) {
        this.resolver = resolver;
        this.privateAllow = List.copyOf(privateAllow);
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
        if (range.isPresent()) {
            EgressRule unlock = policy.unlocking(address, range.get(), port);
            if (unlock != null) {
                return new Outcome(true, target, "allow " + unlock.text(), "private address admitted by allow entry "
                        + unlock.text());
            }
            InetAddress judged = AddressRanges.effective(address);
            for (Cidr cidr : privateAllow) {
                if (cidr.contains(judged) || cidr.contains(address)) {
                    return new Outcome(true, target, verdict.rule(), verdict.reason()
                            + "; private address admitted by the operator's privateAllow " + cidr);
                }
            }
            return new Outcome(false, target, "private-range " + range.get(), Cidr.text(address)
                    + " is in the private/special range " + range.get()
                    + (literal ? "" : " (a host name never opens private addresses; allow the IP or CIDR itself)"));
        }
        return new Outcome(true, target, verdict.rule(), verdict.reason());
    }
}
