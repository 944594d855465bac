package dev.stockade.server.egress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.net.NetworkInterface;
import java.net.SocketException;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The host's interface addresses: read once per period at most, kept on a failed reading, scope-free. */
class HostAddressesTest {
    private static InetAddress ip(String s) {
        return Cidr.parseAddress(s);
    }

    @Test
    void anAddressAddedToTheHostIsRefusedWithinOnePeriodAndReadingsAreBounded() {
        List<InetAddress> interfaces = new CopyOnWriteArrayList<>(List.of(ip("203.0.113.9")));
        AtomicInteger readings = new AtomicInteger();
        AtomicLong now = new AtomicLong();
        HostAddresses host = new HostAddresses(() -> {
            readings.incrementAndGet();
            return List.copyOf(interfaces);
        }, now::get);
        assertTrue(host.contains(ip("203.0.113.9")));
        assertTrue(host.contains(ip("64:ff9b::cb00:7109")), "an IPv6 form embedding it");
        assertFalse(host.contains(ip("203.0.113.10")));
        interfaces.add(ip("203.0.113.10"));
        for (int i = 0; i < 1000; i++) {
            host.contains(ip("198.51.100.1"));
        }
        assertEquals(1, readings.get(), "no reading within the period, however many checks");
        now.addAndGet(HostAddresses.MAX_AGE.toNanos());
        assertTrue(host.contains(ip("203.0.113.10")), "read again once the period is over");
        assertEquals(2, readings.get());
    }

    @Test
    void aFailedReadingKeepsWhatWasKnown() {
        AtomicLong now = new AtomicLong();
        AtomicInteger calls = new AtomicInteger();
        HostAddresses host = new HostAddresses(() -> {
            if (calls.incrementAndGet() > 1) throw new SocketException("netlink busy");
            return List.of(ip("203.0.113.9"));
        }, now::get);
        now.addAndGet(HostAddresses.MAX_AGE.toNanos());
        assertTrue(host.contains(ip("203.0.113.9")));
        assertEquals(2, calls.get());
    }

    @Test
    void theRealHostsAddressesAreRead() throws SocketException {
        HostAddresses host = HostAddresses.system();
        assertTrue(host.contains(ip("127.0.0.1")), "loopback is configured on every Linux host");
        for (NetworkInterface nic : NetworkInterface.networkInterfaces().toList()) {
            for (InetAddress a : nic.inetAddresses().toList()) {
                assertTrue(host.contains(ip(Cidr.text(a))), a + " of " + nic.getName() + ", without its scope");
            }
        }
    }
}
