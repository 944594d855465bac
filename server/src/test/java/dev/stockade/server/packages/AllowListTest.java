package dev.stockade.server.packages;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.server.error.StockadeError;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AllowListTest {
    private static final String H1 = "a".repeat(64);
    private static final String H2 = "B".repeat(64);

    @Test
    void readsNamesPinsHashesCommentsAndContinuations() {
        AllowList list = AllowList.parse("list.txt", String.join("\n",
                "# packages the sandboxes may install",
                "",
                "Requests  # every version",
                "numpy==1.26.4",
                "numpy==1.26.3",
                "Zope.Interface==6.0 --hash=sha256:" + H1,
                "zope_interface==6.1 \\",
                "    --hash=sha256:" + H2 + " \\",
                "    --hash sha256:" + "c".repeat(64),
                "attrs[tests]==23.1.0 ; python_version >= \"3.8\"",
                "   "));
        assertEquals(Set.of("requests", "numpy", "zope-interface", "attrs"), list.names());
        AllowList.Entry requests = list.get("requests");
        assertTrue(requests.allowsVersion("0.1") && requests.allowsHash(H1) && requests.allowsHash(null));
        assertEquals(3, requests.line());
        AllowList.Entry numpy = list.get("numpy");
        assertEquals(List.of("1.26.4", "1.26.3"), List.copyOf(numpy.pins().values()));
        assertTrue(numpy.allowsVersion("1.26.4.0"));
        assertFalse(numpy.allowsVersion("1.26.5"));
        AllowList.Entry zope = list.get("zope-interface");
        assertEquals(Set.of(H1, H2.toLowerCase(), "c".repeat(64)), zope.sha256());
        assertTrue(zope.allowsHash(H2));
        assertFalse(zope.allowsHash("d".repeat(64)));
        assertFalse(zope.allowsHash(null));
        assertTrue(list.get("attrs").allowsVersion("23.1.0"));
        assertNull(list.get("evil"));
    }

    @Test
    void errorsNameTheFileAndLine() {
        assertError("numpy>=1.0", "line 2", "not an exact pin");
        assertError("numpy==1.*", "line 2", "not an exact pin");
        assertError("numpy==1.0,==2.0", "line 2", "more than one version specifier");
        assertError("-r other.txt", "line 2", "'-r' is not allowed here");
        assertError("--index-url https://evil.example/simple", "line 2", "is not allowed here");
        assertError("numpy --index-url=https://x", "line 2", "only --hash");
        assertError("numpy --hash=md5:abc", "line 2", "only sha256");
        assertError("numpy --hash=sha256:abc", "line 2", "not a sha256 digest");
        assertError("numpy --hash", "line 2", "--hash without a value");
        assertError("git+https://github.com/x/y", "line 2", "URLs and paths");
        assertError("pkg @ https://x.example/p.whl", "line 2", "URLs and paths");
        assertError("./local/dir", "line 2", "URLs and paths");
        assertError("bad name!", "line 2", "cannot read");
        assertError("ok\u0001", "line 2", "control character");
        assertError("numpy\nnumpy==1.0", "line 3", "pinned here but line 2 allows every version");
        assertError("numpy==1.0\nnumpy", "line 3", "allowed in every version here but pinned on line 2");
        assertError("numpy==1.0 --hash=sha256:" + H1 + "\nnumpy==2.0", "line 3", "--hash options on some lines");
    }

    private static void assertError(String body, String where, String what) {
        StockadeError e = assertThrows(StockadeError.class, () -> AllowList.parse("/etc/list.txt", "# first\n" + body));
        assertEquals(StockadeError.Code.INVALID_ARGUMENT, e.code());
        assertTrue(e.getMessage().startsWith("package allow-list /etc/list.txt " + where + ": "), e.getMessage());
        assertTrue(e.getMessage().contains(what), e.getMessage());
    }

    @Test
    void loadsFilesAndRefusesUnreadableOnes(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("allow.txt");
        Files.writeString(f, "six==1.16.0\n");
        assertTrue(AllowList.load(f).get("six").allowsVersion("1.16.0"));
        StockadeError missing = assertThrows(StockadeError.class, () -> AllowList.load(dir.resolve("nope.txt")));
        assertTrue(missing.getMessage().contains("cannot be read"), missing.getMessage());
        Files.write(f, new byte[] {(byte) 0xff, (byte) 0xfe, 'x'});
        assertTrue(assertThrows(StockadeError.class, () -> AllowList.load(f)).getMessage().contains("not UTF-8"));
        Files.write(f, new byte[AllowList.MAX_BYTES + 1]);
        assertTrue(assertThrows(StockadeError.class, () -> AllowList.load(f)).getMessage().contains("larger than"));
    }
}
