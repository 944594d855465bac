package dev.stockade.server.egress;

import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.LongSupplier;

/**
 * The addresses configured on the host's interfaces (issue 15): a connection to one of them comes
 * from the host itself, past every outside firewall, to whatever the host binds on 0.0.0.0, so
 * {@link EgressGate} refuses them like loopback unless the operator lists them.
 *
 * <p>Read from the JDK's {@link NetworkInterface} at construction and again when a check finds the
 * last reading older than {@link #MAX_AGE}: at most one reading per period, done by the one thread
 * that wins the refresh while the others go on with the previous set (bounded cost under a connection
 * storm). An address added to an interface is therefore refused at most {@link #MAX_AGE} after it
 * appears. A reading that fails keeps the previous set. Called by {@link EgressGate} on the proxy's
 * connection threads and by {@link EgressConfig#closedEntry} on request threads; thread-safe.
 */
final class HostAddresses {
    static final Duration MAX_AGE = Duration.ofSeconds(2);

    /** Where the addresses come from: the host's interfaces, or a test's list. */
    @FunctionalInterface
    interface Source {
        List<InetAddress> read() throws SocketException;
    }

    private record Reading(Set<InetAddress> addresses, long at) {}

    /** Read at first use, not at class loading: unit tests with their own source never enumerate the host. */
    private static final class Shared {
        static final HostAddresses HOST = new HostAddresses(HostAddresses::interfaces, System::nanoTime);
    }

    private final Source source;
    private final LongSupplier clock;
    private final AtomicBoolean refreshing = new AtomicBoolean();
    private volatile Reading reading;

    HostAddresses(Source source, LongSupplier nanoClock) {
        this.source = source;
        this.clock = nanoClock;
        this.reading = new Reading(read(Set.of()), nanoClock.getAsLong());
    }

    /** The host's own interfaces, shared by the whole server (there is one host). */
    static HostAddresses system() {
        return Shared.HOST;
    }

    /** Whether {@code address} (or the IPv4 address its IPv6 form embeds) is configured on the host. */
    boolean contains(InetAddress address) {
        Set<InetAddress> now = current();
        return now.contains(plain(address)) || now.contains(plain(AddressRanges.effective(address)));
    }

    private Set<InetAddress> current() {
        Reading r = reading;
        if (clock.getAsLong() - r.at() >= MAX_AGE.toNanos() && refreshing.compareAndSet(false, true)) {
            try {
                r = new Reading(read(r.addresses()), clock.getAsLong());
                reading = r;
            } finally {
                refreshing.set(false);
            }
        }
        return r.addresses();
    }

    private Set<InetAddress> read(Set<InetAddress> previous) {
        try {
            Set<InetAddress> out = new HashSet<>();
            for (InetAddress a : source.read()) {
                out.add(plain(a));
            }
            return Set.copyOf(out);
        } catch (SocketException | RuntimeException e) {
            return previous; // keep what was known; the next period reads again
        }
    }

    /** The address without its IPv6 scope, so {@code fe80::1%eth0} and {@code fe80::1} compare equal. */
    private static InetAddress plain(InetAddress a) {
        try {
            return InetAddress.getByAddress(a.getAddress());
        } catch (java.net.UnknownHostException e) {
            throw new IllegalStateException(e); // 4 or 16 bytes are always an address
        }
    }

    private static List<InetAddress> interfaces() throws SocketException {
        return NetworkInterface.networkInterfaces().flatMap(NetworkInterface::inetAddresses).toList();
    }
}
