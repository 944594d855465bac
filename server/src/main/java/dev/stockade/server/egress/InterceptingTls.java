package dev.stockade.server.egress;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.CertPathBuilderException;
import java.security.cert.CertificateException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import javax.net.ssl.KeyManager;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;
import javax.net.ssl.X509ExtendedTrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * The JDK-TLS implementation of {@link TlsInterception}: towards the sandbox it presents leaf
 * certificates from a {@link StockadeCa}; towards the destination it verifies the chain against
 * the JDK's trust store plus the operator's extra CAs, and the host name (RFC 2818/6125 rules).
 *
 * <p>Both sides speak TLS 1.2 or 1.3 only and negotiate ALPN {@code http/1.1} at most, because
 * the proxy reads HTTP/1.1 inside intercepted tunnels; a sandbox client that offers only
 * {@code h2} is refused during the handshake with a message saying so. Every handshake finishes
 * or fails within the handshake timeout (10 s by default), even against a peer that trickles
 * bytes. Errors are {@link IOException}s whose message the proxy can show to the sandbox; a
 * failed {@link #serverSide} has closed the sandbox's socket, a failed {@link #clientSide} leaves
 * nothing open.
 *
 * <p>Thread-safe; each call runs its handshake on the caller's thread (the proxy's connection
 * thread) plus a short-lived virtual thread that enforces the deadline.
 */
public final class InterceptingTls implements TlsInterception {
    static final Duration DEFAULT_HANDSHAKE_TIMEOUT = Duration.ofSeconds(10);
    static final String HTTP_1_1 = "http/1.1";
    private static final String[] PROTOCOLS = {"TLSv1.3", "TLSv1.2"};
    private static final long MAX_TRUST_FILE_BYTES = 4L * 1024 * 1024;
    private static final int MAX_TRUST_CERTIFICATES = 10_000;

    private final StockadeCa ca;
    private final Duration handshakeTimeout;
    private final SSLContext towardsSandbox;
    private final SSLContext towardsUpstream;
    /** The leaf each server-side socket presents, by a per-handshake alias; entries live during the handshake. */
    private final Map<Socket, String> aliasBySocket = new ConcurrentHashMap<>();
    private final Map<String, StockadeCa.Leaf> leafByAlias = new ConcurrentHashMap<>();
    private final AtomicLong aliases = new AtomicLong();

    /**
     * @param ca the CA whose leaves the sandbox sees
     * @param extraTrustPem a PEM file with one or more CA certificates trusted for destinations in
     *     addition to the JDK's default trust store (e.g. a company's TLS-inspecting proxy CA); null for none
     * @throws IOException if {@code extraTrustPem} cannot be read or holds no certificate
     */
    public InterceptingTls(StockadeCa ca, Path extraTrustPem) throws IOException {
        this(ca, extraTrustPem, DEFAULT_HANDSHAKE_TIMEOUT);
    }

    InterceptingTls(StockadeCa ca, Path extraTrustPem, Duration handshakeTimeout) throws IOException {
        this.ca = Objects.requireNonNull(ca, "ca");
        this.handshakeTimeout = Objects.requireNonNull(handshakeTimeout, "handshakeTimeout");
        if (handshakeTimeout.isNegative() || handshakeTimeout.isZero() || handshakeTimeout.toMillis() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("handshakeTimeout must be positive, got " + handshakeTimeout);
        }
        List<X509Certificate> extra = List.of();
        if (extraTrustPem != null) {
            String where = "extra trust file " + extraTrustPem;
            extra = Pem.certificates(Pem.read(extraTrustPem, MAX_TRUST_FILE_BYTES, "extra trust file"),
                    MAX_TRUST_CERTIFICATES, where);
            if (extra.isEmpty()) {
                throw new IOException(where + " holds no certificate: give a PEM file with -----BEGIN CERTIFICATE----- blocks");
            }
        }
        try {
            towardsSandbox = SSLContext.getInstance("TLS");
            towardsSandbox.init(new KeyManager[] {new LeafKeyManager()}, null, null);
            towardsUpstream = SSLContext.getInstance("TLS");
            towardsUpstream.init(null, new TrustManager[] {new UpstreamTrust(pkixTrust(extra))}, null);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("cannot set up TLS interception: " + e.getMessage(), e);
        }
    }

    @Override
    public Socket serverSide(Socket client, byte[] prefix, String host) throws IOException {
        Objects.requireNonNull(client, "client");
        StockadeCa.Leaf leaf;
        try {
            leaf = ca.issue(host);
        } catch (IllegalArgumentException e) {
            closeQuietly(client);
            throw new IOException("cannot intercept TLS for '" + host + "': " + e.getMessage(), e);
        }
        SSLSocket ssl;
        try {
            ssl = (SSLSocket) towardsSandbox.getSocketFactory()
                    .createSocket(client, new ByteArrayInputStream(prefix == null ? new byte[0] : prefix), true);
        } catch (IOException e) {
            closeQuietly(client);
            throw new IOException("cannot start TLS towards the sandbox for " + host + ": " + describe(e), e);
        }
        SSLParameters params = ssl.getSSLParameters();
        params.setProtocols(PROTOCOLS);
        params.setNeedClientAuth(false);
        ssl.setSSLParameters(params);
        AtomicReference<List<String>> refusedAlpn = new AtomicReference<>();
        ssl.setHandshakeApplicationProtocolSelector((s, offered) -> {
            if (offered.contains(HTTP_1_1)) return HTTP_1_1;
            refusedAlpn.set(List.copyOf(offered));
            return null; // the JDK then fails the handshake with a no_application_protocol alert
        });
        String alias = "leaf-" + aliases.incrementAndGet();
        leafByAlias.put(alias, leaf);
        aliasBySocket.put(ssl, alias);
        try {
            handshake(ssl, client);
            return ssl;
        } catch (IOException e) {
            closeQuietly(ssl);
            List<String> offered = refusedAlpn.get();
            if (offered != null) {
                throw new IOException("TLS from the sandbox to " + host + " failed: the client offered only " + offered
                        + " (ALPN), but intercepted connections speak http/1.1; configure the client to allow HTTP/1.1", e);
            }
            throw new IOException("TLS from the sandbox to " + host + " failed: " + describe(e), e);
        } finally {
            aliasBySocket.remove(ssl);
            leafByAlias.remove(alias);
        }
    }

    @Override
    public Socket clientSide(InetSocketAddress address, String host, int connectTimeoutMillis) throws IOException {
        Objects.requireNonNull(address, "address");
        if (connectTimeoutMillis < 0) throw new IllegalArgumentException("connectTimeoutMillis must not be negative");
        String name;
        SNIHostName sni = null;
        try {
            name = StockadeCa.normalizeHost(host);
            if (!StockadeCa.isIpLiteral(name)) sni = new SNIHostName(name);
        } catch (IllegalArgumentException e) {
            throw new IOException("cannot open TLS to '" + host + "': " + e.getMessage(), e);
        }
        String target = name + " (" + addressText(address) + ")";
        Socket plain = new Socket();
        try {
            plain.connect(address, connectTimeoutMillis);
        } catch (IOException e) {
            closeQuietly(plain);
            throw new IOException("cannot connect to " + target + ": " + describe(e), e);
        }
        SSLSocket ssl;
        try {
            ssl = (SSLSocket) towardsUpstream.getSocketFactory().createSocket(plain, name, address.getPort(), true);
        } catch (IOException e) {
            closeQuietly(plain);
            throw new IOException("cannot start TLS to " + target + ": " + describe(e), e);
        }
        SSLParameters params = ssl.getSSLParameters();
        params.setProtocols(PROTOCOLS);
        params.setEndpointIdentificationAlgorithm("HTTPS");
        params.setServerNames(sni == null ? List.of() : List.of(sni));
        params.setApplicationProtocols(new String[] {HTTP_1_1});
        ssl.setSSLParameters(params);
        try {
            handshake(ssl, plain);
        } catch (IOException e) {
            closeQuietly(ssl);
            throw new IOException("TLS to " + target + " failed: " + describe(e), e);
        }
        String alpn = ssl.getApplicationProtocol();
        if (alpn != null && !alpn.isEmpty() && !alpn.equals(HTTP_1_1)) {
            closeQuietly(ssl);
            throw new IOException("TLS to " + target + " failed: the server chose ALPN '" + alpn + "', which was not offered");
        }
        return ssl;
    }

    @Override
    public String caCertificatePem() {
        return ca.certificatePem();
    }

    /**
     * Runs the handshake with a deadline: soTimeout bounds each read, and a virtual thread closes
     * {@code underlying} when the whole handshake takes too long (a peer trickling one byte at a
     * time). The SSL socket itself is not closed from the other thread, since that would contend
     * for the locks the handshaking thread holds.
     */
    private void handshake(SSLSocket ssl, Socket underlying) throws IOException {
        long millis = handshakeTimeout.toMillis();
        int prior = underlying.getSoTimeout();
        AtomicBoolean expired = new AtomicBoolean();
        Thread deadline = Thread.ofVirtual().name("tls-handshake-deadline").start(() -> {
            try {
                Thread.sleep(millis);
            } catch (InterruptedException e) {
                return;
            }
            expired.set(true);
            closeQuietly(underlying);
        });
        try {
            ssl.setSoTimeout((int) millis);
            ssl.startHandshake();
        } catch (SocketTimeoutException e) {
            throw timeout(e);
        } catch (IOException e) {
            if (expired.get()) throw timeout(e);
            throw e;
        } finally {
            deadline.interrupt();
            try {
                deadline.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        if (expired.get()) throw timeout(null);
        ssl.setSoTimeout(prior);
    }

    private SocketTimeoutException timeout(Throwable cause) {
        SocketTimeoutException e = new SocketTimeoutException("no complete TLS handshake within "
                + handshakeTimeout.toMillis() + " ms");
        if (cause != null) e.initCause(cause);
        return e;
    }

    /** The most useful sentence from a handshake failure, preferring Stockade's own diagnosis. */
    private static String describe(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof UpstreamCertificateException u) return u.getMessage();
        }
        if (e instanceof SocketTimeoutException) return e.getMessage();
        String m = e.getMessage();
        if (m != null && m.contains("Unsupported or unrecognized SSL message")) {
            return m + " (the peer is not speaking TLS)";
        }
        return m == null ? e.getClass().getSimpleName() : m;
    }

    /** The JDK's default trust anchors (honouring javax.net.ssl.trustStore) plus {@code extra}. */
    private static X509ExtendedTrustManager pkixTrust(List<X509Certificate> extra) throws GeneralSecurityException {
        TrustManagerFactory jdk = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        jdk.init((KeyStore) null);
        List<X509Certificate> anchors = new ArrayList<>();
        for (TrustManager tm : jdk.getTrustManagers()) {
            if (tm instanceof X509TrustManager x) anchors.addAll(List.of(x.getAcceptedIssuers()));
        }
        anchors.addAll(extra);
        KeyStore store = KeyStore.getInstance("PKCS12");
        try {
            store.load(null, null);
        } catch (IOException e) {
            throw new GeneralSecurityException("cannot create an in-memory trust store", e);
        }
        for (int i = 0; i < anchors.size(); i++) store.setCertificateEntry("anchor-" + i, anchors.get(i));
        TrustManagerFactory pkix = TrustManagerFactory.getInstance("PKIX");
        pkix.init(store);
        for (TrustManager tm : pkix.getTrustManagers()) {
            if (tm instanceof X509ExtendedTrustManager x) return x;
        }
        throw new GeneralSecurityException("the JDK offers no PKIX X509ExtendedTrustManager");
    }

    /** {@code 192.0.2.1:443} or {@code [2001:db8::1]:443}, without the resolver's name. */
    private static String addressText(InetSocketAddress address) {
        if (address.getAddress() == null) return address.getHostString() + ":" + address.getPort();
        String ip = address.getAddress().getHostAddress();
        return (ip.indexOf(':') >= 0 ? "[" + ip + "]" : ip) + ":" + address.getPort();
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // already failing or closing: the original error is the one worth reporting
        }
    }

    /** A certificate failure worded for the sandbox's user; carried through the JDK's handshake exception. */
    private static final class UpstreamCertificateException extends CertificateException {
        UpstreamCertificateException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /**
     * Verifies destinations in two steps so the error says which failed: first the chain alone
     * (is it signed by a trusted CA, in its validity period), then with the socket, which adds
     * the HTTPS host-name check the socket's parameters ask for.
     */
    private static final class UpstreamTrust extends X509ExtendedTrustManager {
        private final X509ExtendedTrustManager pkix;

        UpstreamTrust(X509ExtendedTrustManager pkix) {
            this.pkix = pkix;
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
            chainTrusted(chain, authType);
            try {
                pkix.checkServerTrusted(chain, authType, socket);
            } catch (CertificateException e) {
                String host = socket instanceof SSLSocket ssl && ssl.getHandshakeSession() != null
                        ? ssl.getHandshakeSession().getPeerHost() : null;
                throw nameMismatch(host, e);
            }
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
            chainTrusted(chain, authType);
            try {
                pkix.checkServerTrusted(chain, authType, engine);
            } catch (CertificateException e) {
                throw nameMismatch(engine == null ? null : engine.getPeerHost(), e);
            }
        }

        @Override
        public void checkServerTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            chainTrusted(chain, authType);
        }

        /** The chain was trusted, so the check that failed is the host name (or, rarely, an algorithm constraint). */
        private static UpstreamCertificateException nameMismatch(String host, CertificateException e) {
            return new UpstreamCertificateException("its certificate is not valid for "
                    + (host == null ? "the host name asked for" : host) + " (" + e.getMessage() + ")", e);
        }

        private void chainTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            try {
                pkix.checkServerTrusted(chain, authType);
            } catch (CertificateException e) {
                String subject = chain == null || chain.length == 0 ? "(none)"
                        : chain[0].getSubjectX500Principal().getName();
                throw new UpstreamCertificateException("its certificate (" + subject + ") is not trusted: "
                        + why(e) + ". If the destination uses a private CA, add that CA to the extra trust file", e);
            }
        }

        private static String why(Throwable e) {
            for (Throwable t = e; t != null; t = t.getCause()) {
                if (t instanceof CertificateExpiredException) return "a certificate in its chain has expired (" + t.getMessage() + ")";
                if (t instanceof CertificateNotYetValidException) return "a certificate in its chain is not valid yet (" + t.getMessage() + ")";
                if (t instanceof CertPathBuilderException) return "it is not signed by a CA in the JDK trust store or the extra trust file";
            }
            return e.getMessage();
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket) throws CertificateException {
            throw new CertificateException("Stockade does not accept client certificates here");
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine) throws CertificateException {
            throw new CertificateException("Stockade does not accept client certificates here");
        }

        @Override
        public void checkClientTrusted(X509Certificate[] chain, String authType) throws CertificateException {
            throw new CertificateException("Stockade does not accept client certificates here");
        }

        @Override
        public X509Certificate[] getAcceptedIssuers() {
            return pkix.getAcceptedIssuers();
        }
    }

    /** Presents, on each server-side socket, the leaf {@link #serverSide} picked for it. */
    private final class LeafKeyManager extends X509ExtendedKeyManager {
        @Override
        public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
            String alias = socket == null ? null : aliasBySocket.get(socket);
            if (alias == null) return null;
            StockadeCa.Leaf leaf = leafByAlias.get(alias);
            return leaf != null && leaf.key().getAlgorithm().equals(keyType) ? alias : null;
        }

        @Override
        public String chooseEngineServerAlias(String keyType, Principal[] issuers, SSLEngine engine) {
            return null;
        }

        @Override
        public X509Certificate[] getCertificateChain(String alias) {
            StockadeCa.Leaf leaf = alias == null ? null : leafByAlias.get(alias);
            return leaf == null ? null : leaf.chain().toArray(X509Certificate[]::new);
        }

        @Override
        public PrivateKey getPrivateKey(String alias) {
            StockadeCa.Leaf leaf = alias == null ? null : leafByAlias.get(alias);
            return leaf == null ? null : leaf.key();
        }

        @Override
        public String[] getServerAliases(String keyType, Principal[] issuers) {
            return null;
        }

        @Override
        public String[] getClientAliases(String keyType, Principal[] issuers) {
            return null;
        }

        @Override
        public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
            return null;
        }
    }
}
