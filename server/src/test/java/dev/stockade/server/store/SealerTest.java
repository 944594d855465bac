package dev.stockade.server.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Base64;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SealerTest {
    @TempDir
    Path dir;

    @Test
    void sealedValuesOpenOnlyWithTheirKeyAndRevealNothing() throws Exception {
        Sealer s = Sealer.loadOrCreate(dir);
        String secret = "sk-live-0123456789 é";
        String sealed = s.seal(secret);
        assertFalse(sealed.contains("sk-live"));
        assertNotEquals(sealed, s.seal(secret), "a fresh IV every time");
        assertEquals(secret, s.open(sealed));
        assertEquals(secret, Sealer.loadOrCreate(dir).open(sealed), "the key file is reused");
        assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve(Sealer.KEY_FILE))));

        byte[] raw = Base64.getDecoder().decode(sealed);
        raw[raw.length - 1] ^= 1;
        assertThrows(IllegalArgumentException.class, () -> s.open(Base64.getEncoder().encodeToString(raw)), "tampering is detected");
        assertThrows(IllegalArgumentException.class, () -> s.open("bm90IHNlYWxlZA=="));
        Path other = Files.createDirectory(dir.resolve("other"));
        assertThrows(IllegalArgumentException.class, () -> Sealer.loadOrCreate(other).open(sealed), "another key does not open it");
    }
}
