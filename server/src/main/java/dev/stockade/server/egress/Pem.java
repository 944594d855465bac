package dev.stockade.server.egress;

import java.io.IOException;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.cert.X509CertificateHolder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.openssl.PEMKeyPair;
import org.bouncycastle.openssl.PEMParser;
import org.bouncycastle.openssl.jcajce.JcaPEMKeyConverter;
import org.bouncycastle.pkcs.PKCS8EncryptedPrivateKeyInfo;

/**
 * Reads and writes the PEM files of the egress CA and the operator's extra trust anchors. Every
 * read is bounded in size and count, and a malformed file is answered with a message naming the
 * file, never with a parser's internal exception.
 */
final class Pem {
    private Pem() {}

    /** {@code -----BEGIN type-----}, base64 in 64-column lines, {@code -----END type-----}. */
    static String encode(String type, byte[] der) {
        String body = Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der);
        return "-----BEGIN " + type + "-----\n" + body + "\n-----END " + type + "-----\n";
    }

    /** Reads {@code file} as text after checking it is a regular file of at most {@code maxBytes}. */
    static String read(Path file, long maxBytes, String what) throws IOException {
        if (!Files.isRegularFile(file)) throw new IOException(what + " " + file + " is not a regular file");
        long size = Files.size(file);
        if (size > maxBytes) {
            throw new IOException(what + " " + file + " is " + size + " bytes, more than the " + maxBytes
                    + " allowed: is it the right file?");
        }
        return Files.readString(file, StandardCharsets.US_ASCII);
    }

    /**
     * All certificates in {@code text}; text between PEM blocks (comments in CA bundles) is
     * skipped. Any other PEM object (notably a private key) is refused.
     */
    static List<X509Certificate> certificates(String text, int maxCount, String where) throws IOException {
        List<Object> objects = objects(text, maxCount, where);
        List<X509Certificate> out = new ArrayList<>(objects.size());
        JcaX509CertificateConverter converter = new JcaX509CertificateConverter();
        for (Object o : objects) {
            if (!(o instanceof X509CertificateHolder holder)) {
                throw new IOException(where + " contains a " + kind(o) + " where only CERTIFICATE blocks are allowed");
            }
            try {
                out.add(converter.getCertificate(holder));
            } catch (CertificateException | RuntimeException e) {
                throw new IOException(where + " holds a certificate Java cannot read: " + e.getMessage(), e);
            }
        }
        return out;
    }

    /** The PEM objects in {@code text}, at most {@code maxCount}; malformed blocks are reported with {@code where}. */
    private static List<Object> objects(String text, int maxCount, String where) throws IOException {
        List<Object> out = new ArrayList<>();
        boolean tooMany = false;
        try (PEMParser parser = new PEMParser(new StringReader(text))) {
            for (Object o = parser.readObject(); o != null; o = parser.readObject()) {
                if (out.size() == maxCount) {
                    tooMany = true;
                    break;
                }
                out.add(o);
            }
        } catch (IOException | RuntimeException e) {
            throw new IOException(where + " is not valid PEM: " + e.getMessage(), e);
        }
        if (tooMany) throw new IOException(where + " holds more than " + maxCount + " PEM blocks");
        return out;
    }

    /** The one private key in {@code text} (PKCS#8, or the traditional OpenSSL EC/RSA form). */
    static PrivateKey privateKey(String text, String where) throws IOException {
        List<Object> objects = objects(text, 1, where);
        Object o = objects.isEmpty() ? null : objects.getFirst();
        try {
            JcaPEMKeyConverter converter = new JcaPEMKeyConverter();
            return switch (o) {
                case PrivateKeyInfo info -> converter.getPrivateKey(info);
                case PEMKeyPair pair -> converter.getPrivateKey(pair.getPrivateKeyInfo());
                case PKCS8EncryptedPrivateKeyInfo _ -> throw new IOException(where
                        + " holds an encrypted key; Stockade needs it unencrypted (protected by file mode 0600)");
                case null -> throw new IOException(where + " holds no PEM block");
                default -> throw new IOException(where + " holds a " + kind(o) + ", not a private key");
            };
        } catch (IOException e) {
            throw e;
        } catch (RuntimeException e) {
            throw new IOException(where + " holds a key Java cannot read: " + e.getMessage(), e);
        }
    }

    private static String kind(Object o) {
        return switch (o) {
            case PrivateKeyInfo _, PEMKeyPair _, PKCS8EncryptedPrivateKeyInfo _ -> "private key";
            default -> o.getClass().getSimpleName();
        };
    }
}
