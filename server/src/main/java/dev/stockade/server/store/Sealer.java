package dev.stockade.server.store;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Base64;
import javax.crypto.Cipher;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * Seals values the store must keep but no copy of the database may reveal (secret values of running
 * sandboxes): AES-256-GCM under a random key kept in its own file, DATA/store.key (0600), never in
 * the database. A copy of stockade.db (a backup, a support bundle) holds only ciphertext.
 */
public final class Sealer {
    static final String KEY_FILE = "store.key";
    private static final int IV = 12;
    private final SecretKeySpec key;
    private final SecureRandom random = new SecureRandom();

    private Sealer(byte[] key) {
        this.key = new SecretKeySpec(key, "AES");
    }

    static Sealer loadOrCreate(Path dataDir) throws IOException {
        Path file = dataDir.resolve(KEY_FILE);
        if (!Files.exists(file)) {
            byte[] k = new byte[32];
            new SecureRandom().nextBytes(k);
            Path tmp = Files.createTempFile(dataDir, KEY_FILE, ".tmp",
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            Files.write(tmp, Base64.getEncoder().encode(k), StandardOpenOption.TRUNCATE_EXISTING);
            try {
                // link(2) fails when the key exists (rename would replace it): two processes making the
                // first key at once agree on one.
                Files.createLink(file, tmp);
            } catch (java.nio.file.FileAlreadyExistsException raced) {
                // the other one's key stands
            } finally {
                Files.deleteIfExists(tmp);
            }
        }
        byte[] k;
        try {
            k = Base64.getDecoder().decode(Files.readString(file, StandardCharsets.US_ASCII).strip());
        } catch (IllegalArgumentException e) {
            throw new IOException(file + " is not a store key (base64 of 32 bytes): restore it from a backup", e);
        }
        if (k.length != 32) throw new IOException(file + " is not a store key (32 bytes): restore it from a backup");
        return new Sealer(k);
    }

    /** base64(iv || ciphertext+tag) of the UTF-8 text. */
    public String seal(String text) {
        try {
            byte[] iv = new byte[IV];
            random.nextBytes(iv);
            Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
            c.init(Cipher.ENCRYPT_MODE, key, new GCMParameterSpec(128, iv));
            byte[] ct = c.doFinal(text.getBytes(StandardCharsets.UTF_8));
            byte[] out = new byte[IV + ct.length];
            System.arraycopy(iv, 0, out, 0, IV);
            System.arraycopy(ct, 0, out, IV, ct.length);
            return Base64.getEncoder().encodeToString(out);
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("AES-GCM is missing from this JDK", e);
        }
    }

    /** The text sealed by {@link #seal}; IllegalArgumentException when it was not (or the key changed). */
    public String open(String sealed) {
        try {
            byte[] in = Base64.getDecoder().decode(sealed);
            if (in.length < IV + 16) throw new IllegalArgumentException("not a sealed value");
            Cipher c = Cipher.getInstance("AES/GCM/NoPadding");
            c.init(Cipher.DECRYPT_MODE, key, new GCMParameterSpec(128, in, 0, IV));
            return new String(c.doFinal(in, IV, in.length - IV), StandardCharsets.UTF_8);
        } catch (GeneralSecurityException e) {
            throw new IllegalArgumentException("a sealed value does not open with DATA/" + KEY_FILE + " (was the key replaced?)", e);
        }
    }
}
