package dev.stockade.server.egress;

import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Date;
import java.util.EnumSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.regex.Pattern;
import javax.security.auth.x500.X500Principal;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.CertIOException;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.util.IPAddress;

/**
 * The per-server certificate authority that sandboxes trust for intercepted HTTPS, and the leaf
 * certificates it issues for the hosts whose requests Stockade rewrites (secret placeholders).
 *
 * <p>The CA lives in a directory of its own as {@code ca.pem} (certificate) and {@code ca.key}
 * (unencrypted PKCS#8, mode 0600): it must survive restarts because running sandboxes trust it.
 * A key that group or others may read is refused, since whoever holds it can impersonate any
 * host to every sandbox. Leaf certificates live only in memory, a few days each, in a bounded
 * LRU cache so that repeated connections to the same host cost no signing.
 *
 * <p>Thread-safe: {@link #issue} is called from the egress proxy's connection threads.
 */
public final class StockadeCa {
    static final String CERT_FILE = "ca.pem";
    static final String KEY_FILE = "ca.key";
    static final Duration CA_VALIDITY = Duration.ofDays(3653);
    static final Duration LEAF_VALIDITY = Duration.ofDays(4);
    /** A cached leaf with less than this left is issued anew. */
    static final Duration LEAF_RENEW_BEFORE = Duration.ofDays(2);
    /** Tolerates sandbox clocks that run a little behind the host's. */
    static final Duration BACKDATE = Duration.ofHours(1);
    static final int DEFAULT_CACHE_SIZE = 1000;
    private static final String SIGNATURE_ALGORITHM = "SHA256withECDSA";
    private static final long MAX_PEM_BYTES = 64 * 1024;
    private static final int MAX_HOST_LENGTH = 253;
    private static final Pattern LABEL = Pattern.compile("[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?");
    private static final Pattern DIGITS_AND_DOTS = Pattern.compile("[0-9.]+");
    private static final Set<PosixFilePermission> GROUP_OR_OTHERS = EnumSet.of(
            PosixFilePermission.GROUP_READ, PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_EXECUTE,
            PosixFilePermission.OTHERS_READ, PosixFilePermission.OTHERS_WRITE, PosixFilePermission.OTHERS_EXECUTE);

    /**
     * A leaf certificate and its key, ready for a TLS server.
     *
     * @param key the leaf's private key (never written anywhere)
     * @param chain the leaf certificate first, then the CA certificate
     */
    public record Leaf(PrivateKey key, List<X509Certificate> chain) {
        public Leaf {
            Objects.requireNonNull(key, "key");
            chain = List.copyOf(chain);
            if (chain.isEmpty()) throw new IllegalArgumentException("a leaf needs at least its own certificate");
        }

        public X509Certificate certificate() {
            return chain.getFirst();
        }
    }

    private final X509Certificate certificate;
    private final PrivateKey key;
    private final String certificatePem;
    private final Clock clock;
    private final SecureRandom random = new SecureRandom();
    private final Map<String, Leaf> leaves;
    private final String signatureAlgorithm;

    private StockadeCa(X509Certificate certificate, PrivateKey key, Clock clock, int cacheSize) {
        this.certificate = certificate;
        this.signatureAlgorithm = algorithmFor(certificate.getPublicKey());
        this.key = key;
        this.certificatePem = pem(certificate);
        this.clock = clock;
        this.leaves = new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, Leaf> eldest) {
                return size() > cacheSize;
            }
        };
    }

    /**
     * Loads the CA from {@code dir}, or creates it there if neither file exists. A directory that
     * does not exist is created with mode 0700; an existing one is left as it is.
     *
     * @throws IllegalStateException if the files are unsafe or inconsistent (key readable by group
     *     or others, only one of the two files, a key that does not match the certificate, an
     *     expired or non-CA certificate); the message says what to do
     * @throws IOException if the files cannot be read or written
     */
    public static StockadeCa loadOrCreate(Path dir) throws IOException {
        return loadOrCreate(dir, Clock.systemUTC(), DEFAULT_CACHE_SIZE);
    }

    static StockadeCa loadOrCreate(Path dir, Clock clock, int cacheSize) throws IOException {
        if (cacheSize < 1) throw new IllegalArgumentException("cacheSize must be at least 1");
        Path certFile = dir.resolve(CERT_FILE);
        Path keyFile = dir.resolve(KEY_FILE);
        if (!Files.exists(dir)) createPrivateDirectory(dir);
        boolean haveCert = Files.exists(certFile);
        boolean haveKey = Files.exists(keyFile);
        if (!haveCert && !haveKey) return create(dir, clock, cacheSize);
        if (haveCert != haveKey) {
            throw new IllegalStateException("the egress CA in " + dir + " is incomplete: " + (haveCert ? keyFile
                    : certFile) + " is missing. Restore it from a backup, or delete " + (haveCert ? certFile : keyFile)
                    + " to create a new CA (running sandboxes then stop trusting intercepted connections)");
        }
        return load(certFile, keyFile, clock, cacheSize);
    }

    /** The CA certificate. */
    public X509Certificate certificate() {
        return certificate;
    }

    /** The CA certificate, PEM-encoded, as sandboxes install it. */
    public String certificatePem() {
        return certificatePem;
    }

    /**
     * A leaf certificate for {@code host} (a DNS name, or an IPv4/IPv6 literal, IPv6 with or
     * without brackets), issued on first use and cached. Names are compared case-insensitively
     * and a trailing dot is ignored.
     *
     * @throws IllegalArgumentException if {@code host} is neither a valid DNS name nor an IP literal
     */
    public Leaf issue(String host) {
        String name = normalizeHost(host);
        Instant renewAfter = clock.instant().plus(LEAF_RENEW_BEFORE);
        synchronized (leaves) {
            Leaf cached = leaves.get(name);
            if (cached != null && cached.certificate().getNotAfter().toInstant().isAfter(renewAfter)) return cached;
        }
        // Signed outside the lock: two threads racing for the same new host each sign one, both valid.
        Leaf fresh = sign(name);
        synchronized (leaves) {
            leaves.put(name, fresh);
        }
        return fresh;
    }

    /** How many leaves are cached (for tests and metrics). */
    int cachedLeaves() {
        synchronized (leaves) {
            return leaves.size();
        }
    }

    /**
     * The canonical form of {@code host}: lower case, no trailing dot, IPv6 without brackets.
     *
     * @throws IllegalArgumentException naming what is wrong
     */
    static String normalizeHost(String host) {
        if (host == null || host.isEmpty()) throw new IllegalArgumentException("host name is empty");
        if (host.length() > MAX_HOST_LENGTH + 2) {
            throw new IllegalArgumentException("host name is longer than " + MAX_HOST_LENGTH + " characters");
        }
        String h = host.toLowerCase(Locale.ROOT);
        if (h.startsWith("[") && h.endsWith("]")) h = h.substring(1, h.length() - 1);
        if (h.indexOf(':') >= 0) {
            if (!IPAddress.isValidIPv6(h)) throw new IllegalArgumentException("'" + host + "' is not a valid IPv6 address");
            return h;
        }
        if (h.endsWith(".")) h = h.substring(0, h.length() - 1);
        if (DIGITS_AND_DOTS.matcher(h).matches()) {
            if (!IPAddress.isValidIPv4(h)) throw new IllegalArgumentException("'" + host + "' is not a valid IPv4 address");
            return h;
        }
        if (h.isEmpty() || h.length() > MAX_HOST_LENGTH) {
            throw new IllegalArgumentException("'" + host + "' is not a valid host name");
        }
        for (String label : h.split("\\.", -1)) {
            if (!LABEL.matcher(label).matches()) {
                throw new IllegalArgumentException("'" + host + "' is not a valid host name (labels are 1-63 of"
                        + " a-z, 0-9, '-', '_'; internationalized names must be given in their xn-- form)");
            }
        }
        return h;
    }

    static boolean isIpLiteral(String normalizedHost) {
        return IPAddress.isValid(normalizedHost);
    }

    private Leaf sign(String host) {
        try {
            KeyPair pair = newKeyPair();
            Instant now = clock.instant();
            Instant notAfter = now.plus(LEAF_VALIDITY);
            Instant caNotAfter = certificate.getNotAfter().toInstant();
            if (notAfter.isAfter(caNotAfter)) notAfter = caNotAfter;
            boolean ip = isIpLiteral(host);
            // RFC 5280 caps a CN at 64 characters; the SAN is what clients check anyway.
            X500Name subject = new X500Name(host.length() <= 64 ? "CN=" + host : "O=Stockade sandbox egress");
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(
                    X500Name.getInstance(certificate.getSubjectX500Principal().getEncoded()), serial(),
                    Date.from(now.minus(BACKDATE)), Date.from(notAfter), subject, pair.getPublic())
                    .addExtension(Extension.basicConstraints, true, new BasicConstraints(false))
                    .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.digitalSignature))
                    .addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(KeyPurposeId.id_kp_serverAuth))
                    .addExtension(Extension.subjectAlternativeName, false,
                            new GeneralNames(new GeneralName(ip ? GeneralName.iPAddress : GeneralName.dNSName, host)))
                    .addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(pair.getPublic()))
                    .addExtension(Extension.authorityKeyIdentifier, false,
                            ext.createAuthorityKeyIdentifier(certificate.getPublicKey()));
            X509Certificate leaf = new JcaX509CertificateConverter()
                    .getCertificate(b.build(new JcaContentSignerBuilder(signatureAlgorithm).build(key)));
            return new Leaf(pair.getPrivate(), List.of(leaf, certificate));
        } catch (GeneralSecurityException | OperatorCreationException | CertIOException e) {
            throw new IllegalStateException("cannot issue a certificate for " + host + ": " + e.getMessage(), e);
        }
    }

    private static StockadeCa create(Path dir, Clock clock, int cacheSize) throws IOException {
        X509Certificate cert;
        KeyPair pair;
        try {
            pair = newKeyPair();
            byte[] id = new byte[4];
            SecureRandom random = new SecureRandom();
            random.nextBytes(id);
            X500Name name = new X500Name("CN=Stockade sandbox egress CA " + HexFormat.of().formatHex(id));
            Instant now = clock.instant();
            JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
            X509v3CertificateBuilder b = new JcaX509v3CertificateBuilder(name, serial(random),
                    Date.from(now.minus(BACKDATE)), Date.from(now.plus(CA_VALIDITY)), name, pair.getPublic())
                    .addExtension(Extension.basicConstraints, true, new BasicConstraints(0))
                    .addExtension(Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign))
                    .addExtension(Extension.subjectKeyIdentifier, false, ext.createSubjectKeyIdentifier(pair.getPublic()));
            cert = new JcaX509CertificateConverter()
                    .getCertificate(b.build(new JcaContentSignerBuilder(SIGNATURE_ALGORITHM).build(pair.getPrivate())));
        } catch (GeneralSecurityException | OperatorCreationException | CertIOException e) {
            throw new IllegalStateException("cannot create the egress CA: " + e.getMessage(), e);
        }
        // The key goes in first: a crash in between leaves a key without a certificate, which
        // loadOrCreate reports instead of silently making a CA that sandboxes do not know.
        writePrivate(dir, KEY_FILE, Pem.encode("PRIVATE KEY", pair.getPrivate().getEncoded()));
        writePrivate(dir, CERT_FILE, pem(cert));
        Files.setPosixFilePermissions(dir.resolve(CERT_FILE), PosixFilePermissions.fromString("rw-r--r--"));
        return new StockadeCa(cert, pair.getPrivate(), clock, cacheSize);
    }

    private static StockadeCa load(Path certFile, Path keyFile, Clock clock, int cacheSize) throws IOException {
        Set<PosixFilePermission> mode = Files.getPosixFilePermissions(keyFile);
        if (mode.stream().anyMatch(GROUP_OR_OTHERS::contains)) {
            throw new IllegalStateException("the egress CA key " + keyFile + " has mode "
                    + PosixFilePermissions.toString(mode) + ", so group or others may read it; Stockade refuses"
                    + " to use it. Run: chmod 600 " + keyFile + " (if others could read it, delete both "
                    + keyFile.getFileName() + " and " + certFile.getFileName() + " to create a new CA instead)");
        }
        List<X509Certificate> certs = Pem.certificates(Pem.read(certFile, MAX_PEM_BYTES, "egress CA certificate"),
                2, "egress CA certificate " + certFile);
        if (certs.size() != 1) {
            throw new IllegalStateException("egress CA certificate " + certFile + " must hold exactly one"
                    + " certificate, it holds " + certs.size());
        }
        X509Certificate cert = certs.getFirst();
        PrivateKey key = Pem.privateKey(Pem.read(keyFile, MAX_PEM_BYTES, "egress CA key"), "egress CA key " + keyFile);
        String fix = " Restore the matching files, or delete " + certFile + " and " + keyFile
                + " to create a new CA (running sandboxes then stop trusting intercepted connections)";
        if (cert.getBasicConstraints() < 0) {
            throw new IllegalStateException("egress CA certificate " + certFile + " is not a CA certificate." + fix);
        }
        if (!cert.getNotAfter().toInstant().isAfter(clock.instant().plus(LEAF_VALIDITY))) {
            throw new IllegalStateException("egress CA certificate " + certFile + " expires on " + cert.getNotAfter()
                    + "." + fix);
        }
        if (algorithmFor(cert.getPublicKey()).isEmpty() || !matches(key, cert.getPublicKey())) {
            throw new IllegalStateException("egress CA key " + keyFile + " does not belong to the certificate "
                    + certFile + " (or is not an EC, RSA or Ed25519 key)." + fix);
        }
        return new StockadeCa(cert, key, clock, cacheSize);
    }

    /** Whether {@code key} signs what {@code pub} verifies: works for any key type without parsing it. */
    private static boolean matches(PrivateKey key, PublicKey pub) {
        String alg = algorithmFor(pub);
        if (alg.isEmpty()) return false;
        try {
            byte[] probe = "stockade egress CA key check".getBytes(StandardCharsets.US_ASCII);
            Signature s = Signature.getInstance(alg);
            s.initSign(key);
            s.update(probe);
            byte[] sig = s.sign();
            Signature v = Signature.getInstance(alg);
            v.initVerify(pub);
            v.update(probe);
            return v.verify(sig);
        } catch (GeneralSecurityException e) {
            return false;
        }
    }

    /** The signature algorithm for a key of this type; empty if Stockade cannot sign with it. */
    private static String algorithmFor(PublicKey pub) {
        return switch (pub.getAlgorithm()) {
            case "EC" -> "SHA256withECDSA";
            case "RSA" -> "SHA256withRSA";
            case "Ed25519", "EdDSA" -> "Ed25519";
            default -> "";
        };
    }

    private static KeyPair newKeyPair() throws GeneralSecurityException {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        return g.generateKeyPair();
    }

    private BigInteger serial() {
        return serial(random);
    }

    /** 127 random bits: positive, unique enough, within RFC 5280's 20 octets. */
    private static BigInteger serial(SecureRandom random) {
        return new BigInteger(127, random).setBit(0);
    }

    private static String pem(X509Certificate cert) {
        try {
            return Pem.encode("CERTIFICATE", cert.getEncoded());
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot encode the egress CA certificate: " + e.getMessage(), e);
        }
    }

    private static void createPrivateDirectory(Path dir) throws IOException {
        Path parent = dir.toAbsolutePath().getParent();
        if (parent != null) Files.createDirectories(parent);
        try {
            Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
        } catch (FileAlreadyExistsException e) {
            return; // created concurrently by someone else: leave it as it is, like any existing directory
        }
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------")); // the umask may have cut more
    }

    /** Writes {@code name} in {@code dir} atomically, created with mode 0600 from the start. */
    private static void writePrivate(Path dir, String name, String content) throws IOException {
        Path tmp = Files.createTempFile(dir, name, ".tmp",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
        try {
            Files.writeString(tmp, content, StandardCharsets.US_ASCII);
            try {
                Files.move(tmp, dir.resolve(name), StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, dir.resolve(name));
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    @Override
    public String toString() {
        X500Principal subject = certificate.getSubjectX500Principal();
        return "StockadeCa[" + subject.getName() + "]";
    }
}
