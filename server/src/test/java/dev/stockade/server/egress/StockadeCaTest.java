package dev.stockade.server.egress;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicReference;
import javax.net.ssl.SSLHandshakeException;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class StockadeCaTest {
    @TempDir
    Path tmp;

    @Test
    void createsTheCaWithPrivateFilesAndReloadsTheSameOne() throws Exception {
        Path dir = tmp.resolve("state/egress-ca");
        StockadeCa first = StockadeCa.loadOrCreate(dir);

        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir)));
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("ca.key"))));
        assertEquals(first.certificatePem(), Files.readString(dir.resolve("ca.pem")));
        assertTrue(Files.readString(dir.resolve("ca.key")).startsWith("-----BEGIN PRIVATE KEY-----\n"),
                "the key is PKCS#8 PEM");
        try (var files = Files.list(dir)) {
            assertEquals(Set.of("ca.pem", "ca.key"), Set.copyOf(files.map(p -> p.getFileName().toString()).toList()),
                    "no temporary files are left behind");
        }

        StockadeCa again = StockadeCa.loadOrCreate(dir);
        assertEquals(first.certificate(), again.certificate());
        assertEquals(first.certificatePem(), again.certificatePem());
        // The reloaded key signs leaves that chain to the same certificate.
        validate(again.issue("example.com").certificate(), first.certificate());
    }

    @Test
    void caCertificateIsAConstrainedTenYearRoot() throws Exception {
        X509Certificate ca = StockadeCa.loadOrCreate(tmp.resolve("ca")).certificate();

        assertTrue(ca.getSubjectX500Principal().getName().matches("CN=Stockade sandbox egress CA [0-9a-f]{8}"),
                ca.getSubjectX500Principal().getName());
        assertEquals(ca.getSubjectX500Principal(), ca.getIssuerX500Principal());
        ca.verify(ca.getPublicKey());
        assertEquals(0, ca.getBasicConstraints(), "CA:true, pathlen 0");
        assertTrue(ca.getCriticalExtensionOIDs().containsAll(Set.of("2.5.29.19", "2.5.29.15")),
                "basicConstraints and keyUsage are critical");
        boolean[] ku = ca.getKeyUsage();
        assertTrue(ku[5] && ku[6], "keyCertSign and cRLSign");
        assertFalse(ku[0], "the CA does not sign TLS handshakes itself");
        assertTrue(ca.getExtensionValue("2.5.29.14") != null, "subjectKeyIdentifier (strict OpenSSL wants it)");
        Duration validity = Duration.between(ca.getNotBefore().toInstant(), ca.getNotAfter().toInstant());
        assertTrue(validity.toDays() >= 3650 && validity.toDays() <= 3655, "about ten years: " + validity);
    }

    @Test
    void refusesAKeyThatGroupOrOthersMayRead() throws Exception {
        Path dir = tmp.resolve("ca");
        StockadeCa.loadOrCreate(dir);
        Path key = dir.resolve("ca.key");
        Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("rw-r--r--"));

        IllegalStateException e = assertThrows(IllegalStateException.class, () -> StockadeCa.loadOrCreate(dir));
        assertTrue(e.getMessage().contains("rw-r--r--") && e.getMessage().contains("chmod 600 " + key), e.getMessage());

        Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("rw-------"));
        StockadeCa.loadOrCreate(dir); // fixed as the message says
    }

    @Test
    void refusesIncompleteOrMismatchedFiles() throws Exception {
        Path a = tmp.resolve("a");
        Path b = tmp.resolve("b");
        StockadeCa.loadOrCreate(a);
        StockadeCa.loadOrCreate(b);

        Files.copy(b.resolve("ca.key"), a.resolve("ca.key"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        IllegalStateException mismatch = assertThrows(IllegalStateException.class, () -> StockadeCa.loadOrCreate(a));
        assertTrue(mismatch.getMessage().contains("does not belong to the certificate"), mismatch.getMessage());

        Files.delete(b.resolve("ca.pem"));
        IllegalStateException incomplete = assertThrows(IllegalStateException.class, () -> StockadeCa.loadOrCreate(b));
        assertTrue(incomplete.getMessage().contains("is incomplete") && incomplete.getMessage().contains("ca.pem is missing"),
                incomplete.getMessage());
        assertTrue(Files.exists(b.resolve("ca.key")), "nothing is overwritten when files are missing");

        Path c = tmp.resolve("c");
        StockadeCa.loadOrCreate(c);
        Files.writeString(c.resolve("ca.pem"), "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n");
        IOException garbage = assertThrows(IOException.class, () -> StockadeCa.loadOrCreate(c));
        assertTrue(garbage.getMessage().contains("is not valid PEM"), garbage.getMessage());

        Files.write(c.resolve("ca.pem"), new byte[200_000]);
        IOException huge = assertThrows(IOException.class, () -> StockadeCa.loadOrCreate(c));
        assertTrue(huge.getMessage().contains("more than"), huge.getMessage());
    }

    @Test
    void leafForANameVerifiesWithPkixAndHostNameChecks() throws Exception {
        StockadeCa ca = StockadeCa.loadOrCreate(tmp.resolve("ca"));
        StockadeCa.Leaf leaf = ca.issue("API.Example.com.");
        X509Certificate cert = leaf.certificate();

        assertEquals(List.of(cert, ca.certificate()), leaf.chain());
        validate(cert, ca.certificate());
        assertEquals(List.of(List.of(2, "api.example.com")), sans(cert));
        assertEquals(List.of("1.3.6.1.5.5.7.3.1"), cert.getExtendedKeyUsage());
        assertEquals(-1, cert.getBasicConstraints());
        Instant now = Instant.now();
        Duration backdated = Duration.between(cert.getNotBefore().toInstant(), now);
        assertTrue(backdated.compareTo(Duration.ofMinutes(59)) > 0 && backdated.compareTo(Duration.ofMinutes(62)) < 0,
                "backdated about an hour: " + backdated);
        Duration left = Duration.between(now, cert.getNotAfter().toInstant());
        assertTrue(left.compareTo(Duration.ofDays(3)) > 0 && left.compareTo(Duration.ofDays(5)) < 0, "a few days: " + left);

        assertEquals(null, handshake(leaf, ca.certificate(), "api.example.com"));
        Exception wrong = handshake(leaf, ca.certificate(), "other.example.com");
        assertTrue(wrong instanceof SSLHandshakeException, String.valueOf(wrong));
    }

    @Test
    void leafForAnIpLiteralCarriesAnIpAddressName() throws Exception {
        StockadeCa ca = StockadeCa.loadOrCreate(tmp.resolve("ca"));
        StockadeCa.Leaf v4 = ca.issue("127.0.0.1");
        validate(v4.certificate(), ca.certificate());
        assertEquals(List.of(List.of(7, "127.0.0.1")), sans(v4.certificate()));
        assertEquals(null, handshake(v4, ca.certificate(), "127.0.0.1"));

        StockadeCa.Leaf v6 = ca.issue("[::1]");
        assertEquals(7, sans(v6.certificate()).getFirst().get(0));
        assertEquals(InetAddress.getByName("::1"), InetAddress.getByName((String) sans(v6.certificate()).getFirst().get(1)));
        assertSame(v6, ca.issue("::1"), "bracketed and bare IPv6 are the same host");
    }

    @Test
    void leavesAreCachedBoundedAndRenewedBeforeTheyExpire() throws Exception {
        MutableClock clock = new MutableClock(Instant.now());
        StockadeCa ca = StockadeCa.loadOrCreate(tmp.resolve("ca"), clock, 3);

        StockadeCa.Leaf a = ca.issue("a.test");
        assertSame(a, ca.issue("A.TEST"));
        ca.issue("b.test");
        ca.issue("c.test");
        ca.issue("a.test"); // a is now the most recently used
        ca.issue("d.test"); // evicts b
        assertEquals(3, ca.cachedLeaves());
        assertSame(a, ca.issue("a.test"));

        clock.now = clock.now.plus(Duration.ofDays(1));
        assertSame(a, ca.issue("a.test"), "still more than two days left");
        clock.now = clock.now.plus(Duration.ofDays(2));
        StockadeCa.Leaf renewed = ca.issue("a.test");
        assertNotSame(a, renewed);
        assertTrue(renewed.certificate().getNotAfter().after(a.certificate().getNotAfter()));
    }

    @Test
    void concurrentIssuingIsSafe() throws Exception {
        StockadeCa ca = StockadeCa.loadOrCreate(tmp.resolve("ca"));
        Set<String> subjects = ConcurrentHashMap.newKeySet();
        List<Thread> threads = new ArrayList<>();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        for (int i = 0; i < 16; i++) {
            int n = i;
            threads.add(Thread.ofVirtual().start(() -> {
                try {
                    for (int j = 0; j < 20; j++) {
                        String host = "h" + ((n + j) % 10) + ".test";
                        StockadeCa.Leaf leaf = ca.issue(host);
                        validate(leaf.certificate(), ca.certificate());
                        subjects.add(leaf.certificate().getSubjectX500Principal().getName());
                    }
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            }));
        }
        for (Thread t : threads) t.join();
        if (failure.get() != null) throw new AssertionError(failure.get());
        assertEquals(10, subjects.size());
    }

    @Test
    void refusesHostsThatAreNeitherNamesNorAddresses() throws Exception {
        StockadeCa ca = StockadeCa.loadOrCreate(tmp.resolve("ca"));
        for (String bad : new String[] {"", ".", "a..b", "-a.test", "a-.test", "a b.test", "bücher.test", "999.1.1.1",
                "1.2.3", "::g", "fe80::1%eth0", "a/b", "x".repeat(64) + ".test", ("a".repeat(60) + ".").repeat(5) + "test"}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ca.issue(bad), bad);
            assertTrue(e.getMessage().contains("not a valid") || e.getMessage().contains("empty")
                    || e.getMessage().contains("longer than"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> ca.issue(null));
        assertEquals(0, ca.cachedLeaves());
        // Long but valid names get a SAN and no oversized CN.
        String longName = "a".repeat(63) + "." + "b".repeat(63) + ".test";
        X509Certificate cert = ca.issue(longName).certificate();
        assertEquals(List.of(List.of(2, longName)), sans(cert));
        assertFalse(cert.getSubjectX500Principal().getName().contains("CN="), cert.getSubjectX500Principal().getName());
    }

    static void validate(X509Certificate leaf, X509Certificate anchor) throws Exception {
        PKIXParameters params = new PKIXParameters(Set.of(new TrustAnchor(anchor, null)));
        params.setRevocationEnabled(false);
        CertPathValidator.getInstance("PKIX")
                .validate(CertificateFactory.getInstance("X.509").generateCertPath(List.of(leaf)), params);
    }

    private static List<List<?>> sans(X509Certificate cert) throws Exception {
        Collection<List<?>> names = cert.getSubjectAlternativeNames();
        return names == null ? List.of() : List.copyOf(names);
    }

    /**
     * A real TLS handshake against a server presenting {@code leaf}, by a client that trusts only
     * {@code anchor} and checks the name {@code clientHost} like an HTTPS client. Null on success.
     */
    private static Exception handshake(StockadeCa.Leaf leaf, X509Certificate anchor, String clientHost) throws Exception {
        try (SSLServerSocket server = (SSLServerSocket) TlsTestKit.serverContext(leaf).getServerSocketFactory()
                .createServerSocket(0, 1, TlsTestKit.LOOPBACK)) {
            Thread acceptor = Thread.ofVirtual().start(() -> {
                try (Socket s = server.accept()) {
                    s.setSoTimeout(10_000);
                    ((SSLSocket) s).startHandshake();
                } catch (IOException ignored) {
                    // the client's view is what the test checks
                }
            });
            try (SSLSocket client = TlsTestKit.client(TlsTestKit.clientTrusting(anchor), TlsTestKit.connect(server),
                    clientHost)) {
                client.startHandshake();
                return null;
            } catch (IOException e) {
                return e;
            } finally {
                acceptor.join();
            }
        }
    }

    private static final class MutableClock extends Clock {
        volatile Instant now;

        MutableClock(Instant now) {
            this.now = now;
        }

        @Override
        public java.time.ZoneId getZone() {
            return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(java.time.ZoneId zone) {
            return this;
        }

        @Override
        public Instant instant() {
            return now;
        }
    }
}
