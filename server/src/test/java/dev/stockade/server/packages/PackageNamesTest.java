package dev.stockade.server.packages;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class PackageNamesTest {
    @Test
    void normalizesPerPep503() {
        assertEquals("friendly-bard", PackageNames.normalize("Friendly-Bard"));
        assertEquals("friendly-bard", PackageNames.normalize("FRIENDLY-BARD"));
        assertEquals("friendly-bard", PackageNames.normalize("friendly.bard"));
        assertEquals("friendly-bard", PackageNames.normalize("friendly_bard"));
        assertEquals("friendly-bard", PackageNames.normalize("friendly--bard"));
        assertEquals("friendly-bard", PackageNames.normalize("FrIeNdLy-._.-bArD"));
        assertTrue(PackageNames.isNormalized("zope-interface"));
        assertFalse(PackageNames.isNormalized("zope.interface"));
    }

    @Test
    void refusesInvalidAndHostileNames() {
        for (String bad : new String[] {"", "-a", "a-", ".hidden", "..", "a/b", "a\\b", "a b", "a\u0000b", "ä", "a%2e",
                "a".repeat(PackageNames.MAX_LENGTH + 1)}) {
            assertFalse(PackageNames.isValid(bad), bad);
            assertThrows(IllegalArgumentException.class, () -> PackageNames.normalize(bad));
        }
        assertFalse(PackageNames.isValid(null));
        assertTrue(PackageNames.isValid("a"));
        assertTrue(PackageNames.isValid("a".repeat(PackageNames.MAX_LENGTH)));
    }

    @Test
    void versionKeysFollowPep440Equality() {
        assertEquals(Pep440.key("1.0"), Pep440.key("1.0.0"));
        assertEquals(Pep440.key("1.0"), Pep440.key("v1"));
        assertEquals(Pep440.key("1.0rc1"), Pep440.key("1.0-RC-1"));
        assertEquals(Pep440.key("1.0a1"), Pep440.key("1.0alpha1"));
        assertEquals(Pep440.key("1.0.post1"), Pep440.key("1.0-1"));
        assertEquals(Pep440.key("1.0.dev0"), Pep440.key("1.0dev"));
        assertEquals(Pep440.key("0!1.0"), Pep440.key("1.0"));
        assertEquals("2.1+cpu", Pep440.key("2.1.0+CPU"));
        assertFalse(Pep440.key("1.0").equals(Pep440.key("1.0+local")));
        assertFalse(Pep440.key("1.0").equals(Pep440.key("1.0.1")));
        assertNull(Pep440.key("not a version"));
        assertNull(Pep440.key("1".repeat(200)));
    }

    @Test
    void readsDistributionFileNames() {
        assertEquals(new IndexFile.NameVersion("foo-bar", "1.0"), IndexFile.parseFilename("foo_bar-1.0-py3-none-any.whl"));
        assertEquals(new IndexFile.NameVersion("foo", "1.0"), IndexFile.parseFilename("foo-1.0-1-cp311-cp311-linux_x86_64.whl"));
        assertEquals(new IndexFile.NameVersion("foo-bar", "2.0.1"), IndexFile.parseFilename("foo-bar-2.0.1.tar.gz"));
        assertEquals(new IndexFile.NameVersion("foo", "1.0"), IndexFile.parseFilename("foo-1.0.zip"));
        assertEquals(new IndexFile.NameVersion("evil", PackageIndex.PLACEHOLDER_VERSION),
                IndexFile.parseFilename(PackageIndex.placeholder("evil").filename()));
        for (String bad : new String[] {"foo.whl", "foo-1.0.exe", "foo-1.0-py3.whl", "-1.0.tar.gz", "foo.tar.gz",
                "foo-1.0/../x-py3-none-any.whl", "../x-1.0.tar.gz", "x-1.0 -py3-none-any.whl"}) {
            assertNull(IndexFile.parseFilename(bad), bad);
        }
    }
}
