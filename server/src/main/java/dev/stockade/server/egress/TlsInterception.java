package dev.stockade.server.egress;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;

/**
 * Terminates a sandbox's TLS for the few hosts whose requests Stockade must rewrite (secret
 * placeholders, E2B header rules), and re-originates verified TLS to the real destination.
 * Every other tunnel passes through untouched. Sandboxes trust {@link #caCertificatePem()}.
 */
public interface TlsInterception {
    /**
     * Acts as the TLS server towards the sandbox for {@code host}, with a leaf certificate for that
     * name signed by the Stockade CA.
     *
     * @param client the sandbox side of the tunnel (after the proxy answered the CONNECT with 200)
     * @param prefix bytes already read from {@code client} (the start of its ClientHello)
     * @param host the host name the sandbox connected to (already checked against its SNI)
     * @return a socket whose streams carry the sandbox's plaintext; closing it closes {@code client}
     */
    Socket serverSide(Socket client, byte[] prefix, String host) throws IOException;

    /**
     * Opens TLS to the real destination, verifying its certificate chain (JDK trust store plus the
     * operator's extra CAs) and that it is valid for {@code host}.
     *
     * @param address the resolved address the proxy already checked against policy
     * @param host the name to send as SNI and to verify the certificate against
     */
    Socket clientSide(InetSocketAddress address, String host, int connectTimeoutMillis) throws IOException;

    /** The CA certificate, PEM-encoded, that sandboxes trust for intercepted hosts. */
    String caCertificatePem();
}
