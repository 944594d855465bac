package dev.stockade.server.egress;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

/** Shared pieces of the TLS tests: contexts from a leaf or from anchors, and bounded HTTP reads. */
final class TlsTestKit {
    private TlsTestKit() {}

    static final InetAddress LOOPBACK = InetAddress.getLoopbackAddress();

    /** A server context that presents {@code leaf}. */
    static SSLContext serverContext(StockadeCa.Leaf leaf) throws GeneralSecurityException, IOException {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        char[] pw = "test".toCharArray();
        ks.setKeyEntry("leaf", leaf.key(), pw, leaf.chain().toArray(X509Certificate[]::new));
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(ks, pw);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(kmf.getKeyManagers(), null, null);
        return ctx;
    }

    /** A client context that trusts only {@code anchors}. */
    static SSLContext clientTrusting(X509Certificate... anchors) throws GeneralSecurityException, IOException {
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        for (int i = 0; i < anchors.length; i++) ks.setCertificateEntry("anchor-" + i, anchors[i]);
        TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
        tmf.init(ks);
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
        return ctx;
    }

    /**
     * A client socket over {@code plain} that verifies the server is {@code host} (HTTPS rules),
     * sends SNI unless {@code host} is an IP literal, and offers {@code alpn}.
     */
    static SSLSocket client(SSLContext ctx, Socket plain, String host, String... alpn) throws IOException {
        SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(plain, host, plain.getPort(), true);
        SSLParameters p = s.getSSLParameters();
        p.setEndpointIdentificationAlgorithm("HTTPS");
        if (!StockadeCa.isIpLiteral(host)) p.setServerNames(List.of(new SNIHostName(host)));
        p.setApplicationProtocols(alpn);
        s.setSSLParameters(p);
        s.setSoTimeout(10_000);
        return s;
    }

    static Socket connect(ServerSocket server) throws IOException {
        Socket s = new Socket();
        s.connect(new InetSocketAddress(LOOPBACK, server.getLocalPort()), 5_000);
        return s;
    }

    /** Reads an HTTP head (up to and including the blank line), at most 64 KiB. */
    static String readHead(InputStream in) throws IOException {
        StringBuilder sb = new StringBuilder();
        while (sb.length() < 65_536 && !sb.toString().endsWith("\r\n\r\n")) {
            int b = in.read();
            if (b < 0) throw new IOException("connection closed after " + sb.length() + " bytes of an HTTP head: " + sb);
            sb.append((char) b);
        }
        return sb.toString();
    }

    /** Reads until EOF, at most 1 MiB. */
    static String readAll(InputStream in) throws IOException {
        byte[] b = in.readNBytes(1 << 20);
        return new String(b, StandardCharsets.ISO_8859_1);
    }

    static void write(OutputStream out, String s) throws IOException {
        out.write(s.getBytes(StandardCharsets.ISO_8859_1));
        out.flush();
    }
}
