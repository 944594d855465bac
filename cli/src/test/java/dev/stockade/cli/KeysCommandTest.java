package dev.stockade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.server.store.Store;
import dev.stockade.server.tenancy.ApiKey;
import dev.stockade.server.tenancy.Tenancy;
import dev.stockade.server.tenancy.TenantAdmin;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@code stockade keys} on a real store in a temporary data directory, with a second connection
 * to the same store standing in for a running server (it authenticates exactly as the server does
 * on every request).
 */
class KeysCommandTest {
    private static final Pattern KEY = Pattern.compile("^e2b_[0-9a-f]{40}$");
    private static final Pattern KEY_ID = Pattern.compile("key_[0-9a-f]{12}");
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private TestIo run(String... argv) {
        return runWith(Map.of("STOCKADE_DATA_DIR", "/nonexistent/stockade-test"), argv);
    }

    private static TestIo runWith(Map<String, String> env, String... argv) {
        TestIo t = new TestIo(env);
        t.exit = Main.run(argv, t.io);
        return t;
    }

    private String d() {
        return dir.toString();
    }

    private static String lastLine(String out) {
        assertTrue(out.endsWith("\n"), out);
        List<String> lines = out.lines().toList();
        return lines.getLast();
    }

    private static void noTrace(TestIo t) {
        assertFalse(t.err().contains("\tat ") || t.err().contains("Exception"), t.err());
        assertEquals(1, t.err().lines().filter(l -> !l.startsWith("Run 'stockade")).count(), t.err());
    }

    @Test
    void createListRevokeHoldAtOnceForARunningServer() throws Exception {
        assertEquals(0, run("tenants", "create", "t1", "--data-dir", d()).exit);
        try (Store server = Store.open(dir)) {
            Tenancy serverSide = new Tenancy(server, JSON);

            TestIo made = run("keys", "create", "--tenant", "t1", "--label", "ci bot", "--data-dir", d());
            assertEquals(0, made.exit, made.err());
            assertTrue(made.err().isEmpty(), made.err());
            String secret = lastLine(made.out());
            assertTrue(KEY.matcher(secret).matches(), secret);
            assertTrue(made.out().endsWith(secret + "\n"), "nothing after the key: " + made.out());
            Matcher id = KEY_ID.matcher(made.out());
            assertTrue(id.find(), made.out());
            String keyId = id.group();
            String before = made.out().substring(0, made.out().length() - secret.length() - 1);
            assertTrue(before.contains("tenant t1") && before.contains("only time the key is shown"), before);

            ApiKey k = serverSide.authenticate(secret);
            assertNotNull(k, "the server knows the new key at once");
            assertEquals(keyId, k.id());
            assertEquals("t1", k.tenant());
            assertFalse(k.admin());
            assertEquals("ci bot", k.label());

            TestIo table = run("keys", "list", "--data-dir", d());
            assertEquals(0, table.exit, table.err());
            assertFalse(table.out().contains(secret) || table.out().contains("e2b_"), table.out());
            assertTrue(table.out().startsWith("KEY ID"), table.out());
            String row = table.out().lines().filter(l -> l.startsWith(keyId)).findFirst().orElseThrow();
            assertTrue(row.matches(keyId + " +t1 +no +\\S+ \\S+ +- +ci bot"), row);

            JsonNode listed = listJson("--tenant", "t1");
            assertEquals(1, listed.size());
            JsonNode n = listed.get(0);
            assertEquals(keyId, n.get("id").asText());
            assertEquals("t1", n.get("tenant").asText());
            assertFalse(n.get("admin").asBoolean());
            assertEquals("ci bot", n.get("label").asText());
            assertTrue(n.get("revoked").isNull());
            assertEquals(List.of("id", "tenant", "admin", "label", "created", "revoked"), fieldNames(n));

            TestIo revoked = run("keys", "revoke", keyId, "--data-dir", d());
            assertEquals(0, revoked.exit, revoked.err());
            assertTrue(revoked.out().startsWith(keyId + " revoked (tenant t1, at "), revoked.out());
            assertNull(serverSide.authenticate(secret), "a revoked key stops working at once");
            String revokedAt = listJson().get(0).get("revoked").asText();
            assertFalse(revokedAt.isEmpty() || revokedAt.equals("null"), revokedAt);

            TestIo again = run("keys", "revoke", keyId, "--data-dir", d());
            assertEquals(0, again.exit, again.err());
            assertTrue(again.out().startsWith(keyId + " was already revoked"), again.out());
            assertEquals(revokedAt, listJson().get(0).get("revoked").asText(), "the first revocation time stays");
            assertNull(serverSide.authenticate(secret));
        }
    }

    @Test
    void adminKeysAndKeysOfOneTenant() {
        run("tenants", "create", "t1", "--data-dir", d());
        run("tenants", "create", "t2", "--data-dir", d());
        String admin = lastLine(run("keys", "create", "--tenant", "t1", "--admin", "--data-dir", d()).out());
        String other = lastLine(run("keys", "create", "--tenant", "t2", "--data-dir", d()).out());
        try (Store s = Store.open(dir)) {
            Tenancy t = new Tenancy(s, JSON);
            assertTrue(t.authenticate(admin).admin());
            assertFalse(t.authenticate(other).admin());
            assertEquals("t2", t.authenticate(other).tenant());
        }
        JsonNode t2 = listJson("--tenant", "t2");
        assertEquals(1, t2.size());
        assertEquals("t2", t2.get(0).get("tenant").asText());
        assertEquals(2, listJson().size());
        assertTrue(run("keys", "list", "--tenant", "t1", "--data-dir", d()).out().lines().anyMatch(l -> l.contains(" yes ")));
    }

    @Test
    void theKeyIsStoredOnlyAsItsHash() throws IOException {
        run("tenants", "create", "t1", "--data-dir", d());
        String secret = lastLine(run("keys", "create", "--tenant", "t1", "--data-dir", d()).out());
        byte[] needle = secret.getBytes(StandardCharsets.US_ASCII);
        List<Path> files = new ArrayList<>();
        try (Stream<Path> all = Files.walk(dir)) {
            all.filter(Files::isRegularFile).forEach(files::add);
        }
        assertFalse(files.isEmpty());
        for (Path f : files) assertFalse(contains(Files.readAllBytes(f), needle), "the key is in " + f);
    }

    @Test
    void theDefaultDataDirectoryAppliesWithoutDataDir() {
        Map<String, String> env = Map.of("STOCKADE_DATA_DIR", d());
        assertEquals(0, runWith(env, "tenants", "create", "default").exit);
        TestIo made = runWith(env, "keys", "create", "--tenant", "default");
        assertEquals(0, made.exit, made.err());
        assertTrue(KEY.matcher(lastLine(made.out())).matches());
        assertTrue(Files.isRegularFile(Path.of(d(), "stockade.db")), "the default data directory was used");
    }

    @Test
    void aNewTenantIsMadeWithoutAQuotaAndSaidSo() throws Exception {
        Path fresh = dir.resolve("fresh");
        TestIo t = run("keys", "create", "--tenant", "acme", "--data-dir", fresh.toString());
        assertEquals(0, t.exit, t.err());
        List<String> lines = t.out().lines().toList();
        assertTrue(lines.getFirst().startsWith("Created tenant acme without a quota"), t.out());
        assertTrue(KEY.matcher(lines.getLast()).matches(), t.out());
        TestIo again = run("keys", "create", "--tenant", "acme", "--data-dir", fresh.toString());
        assertFalse(again.out().contains("Created tenant"), "an existing tenant is not made again: " + again.out());
        TestIo list = run("keys", "list", "--tenant", "acme", "--json", "--data-dir", fresh.toString());
        assertEquals(2, LocalStore.JSON.readTree(list.out()).size(), list.out());
        TestIo missing = run("keys", "list", "--tenant", "t9", "--data-dir", fresh.toString());
        assertEquals(1, missing.exit);
        assertTrue(missing.err().contains("tenant t9 does not exist"), missing.err());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "2 | keys                                 | stockade keys: which action? One of create, list, revoke",
        "2 | keys frob                            | stockade keys: unknown action 'frob'; one of create, list, revoke",
        "2 | keys create                          | stockade keys: which tenant? Usage: stockade keys create --tenant NAME",
        "2 | keys create --tenant Bad!            | stockade keys: 'Bad!' is not a tenant name: 1 to 63 characters",
        "2 | keys create --tenant t1 extra        | stockade keys: unexpected argument 'extra'",
        "2 | keys create --tenant t1 --json       | stockade keys: --json does not apply to keys create",
        "2 | keys list --admin                    | stockade keys: --admin does not apply to keys list",
        "2 | keys list --tenant                   | stockade keys: option --tenant needs a value",
        "2 | keys revoke                          | stockade keys: which key? Usage: stockade keys revoke KEY_ID...",
        "2 | keys revoke key_zz                   | stockade keys: 'key_zz' is not a key id",
        "2 | keys revoke --label x key_0123456789ab | stockade keys: --label does not apply to keys revoke",
        "1 | keys revoke key_0123456789ab         | stockade keys: no key key_0123456789ab",
        "2 | keys create --tenant t1 --data-dir=  | stockade keys: --data-dir needs a directory",
    })
    void badInputIsOneClearLine(int exit, String argv, String message) {
        run("tenants", "create", "t1", "--data-dir", d());
        List<String> args = new ArrayList<>(List.of(argv.split(" ")));
        if (!argv.contains("--data-dir")) args.addAll(1, List.of("--data-dir", d()));
        TestIo t = run(args.toArray(String[]::new));
        assertEquals(exit, t.exit, t.err());
        assertTrue(t.err().startsWith(message), t.err());
        assertTrue(t.out().isEmpty(), t.out());
        noTrace(t);
    }

    @Test
    void labelsAreBounded() {
        run("tenants", "create", "t1", "--data-dir", d());
        for (String label : new String[] {"tab\there", "x".repeat(201), "bell\u0007"}) {
            TestIo t = run("keys", "create", "--tenant", "t1", "--label", label, "--data-dir", d());
            assertEquals(2, t.exit, t.err());
            assertTrue(t.err().startsWith("stockade keys: a key's label is at most 200 characters"), t.err());
            noTrace(t);
        }
        assertEquals(0, listJson().size(), "no key made by a refused create");
        // Checked by the admin service before anything is written: a new tenant is not made either.
        TestIo refused = run("keys", "create", "--tenant", "t2", "--label", "bell\u0007", "--data-dir", d());
        assertEquals(2, refused.exit, refused.err());
        assertTrue(refused.out().isEmpty(), refused.out());
        try (Store s = Store.open(dir)) {
            assertEquals(List.of("t1"), TenantAdmin.on(s).tenants().stream().map(t -> t.name()).toList());
        }
        assertEquals(0, run("keys", "create", "--tenant", "t1", "--label", "x".repeat(200), "--data-dir", d()).exit);
    }

    @Test
    void aLongOrHostileArgumentIsShortenedInTheMessage() {
        TestIo t = run("keys", "create", "--tenant", "a\u001b[2J" + "b".repeat(10_000), "--data-dir", d());
        assertEquals(2, t.exit);
        assertFalse(t.err().contains("\u001b"), t.err());
        assertTrue(t.err().length() < 400, t.err());
    }

    @Test
    void listAndRevokeNeedAStore() {
        Path fresh = dir.resolve("none");
        for (String[] argv : new String[][] {{"keys", "list"}, {"keys", "revoke", "key_0123456789ab"}}) {
            List<String> a = new ArrayList<>(List.of(argv));
            a.addAll(List.of("--data-dir", fresh.toString()));
            TestIo t = run(a.toArray(String[]::new));
            assertEquals(1, t.exit);
            assertTrue(t.err().startsWith("stockade keys: there is no Stockade store in " + fresh), t.err());
            noTrace(t);
        }
        assertFalse(Files.exists(fresh));
    }

    @Test
    void help() {
        TestIo t = run("keys", "--help");
        assertEquals(0, t.exit);
        assertTrue(t.out().startsWith("Usage: stockade keys create --tenant NAME"), t.out());
        assertEquals(t.out(), run("help", "keys").out());
        assertEquals(t.out(), run("keys", "create", "--help").out());
    }

    private JsonNode listJson(String... more) {
        List<String> a = new ArrayList<>(List.of("keys", "list", "--json", "--data-dir", d()));
        a.addAll(List.of(more));
        TestIo t = run(a.toArray(String[]::new));
        assertEquals(0, t.exit, t.err());
        try {
            JsonNode n = JSON.readTree(t.out());
            assertTrue(n.isArray(), t.out());
            return n;
        } catch (IOException e) {
            throw new AssertionError("not JSON: " + t.out(), e);
        }
    }

    private static List<String> fieldNames(JsonNode n) {
        List<String> names = new ArrayList<>();
        n.fieldNames().forEachRemaining(names::add);
        return names;
    }

    private static boolean contains(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
            return true;
        }
        return false;
    }
}
