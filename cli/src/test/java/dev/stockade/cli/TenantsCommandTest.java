package dev.stockade.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.server.store.Store;
import dev.stockade.server.tenancy.Quota;
import dev.stockade.server.tenancy.Tenancy;
import dev.stockade.server.tenancy.TenantAdmin;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** {@code stockade tenants} on a real store in a temporary data directory. */
class TenantsCommandTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    /** Runs with {@code --data-dir} right after the command, so options anywhere after it still parse. */
    private TestIo run(String command, String... rest) {
        List<String> argv = new ArrayList<>(List.of(command, "--data-dir", dir.toString()));
        argv.addAll(List.of(rest));
        TestIo t = new TestIo(Map.of("STOCKADE_DATA_DIR", "/nonexistent/stockade-test"));
        t.exit = Main.run(argv.toArray(String[]::new), t.io);
        return t;
    }

    private Quota stored(String tenant) {
        try (Store s = Store.open(dir)) {
            return new Tenancy(s, JSON).tenant(tenant).quota();
        }
    }

    @Test
    void quotaOptionsRoundTripThroughTheStore() throws IOException {
        TestIo made = run("tenants", "create", "t2", "--sandboxes", "3", "--memory-mb", "4096", "--cpus", "2.5",
                "--creates-per-minute", "10", "--sandbox-memory-mb", "1024", "--sandbox-cpus", "0.5");
        assertEquals(0, made.exit, made.err());
        assertTrue(made.out().startsWith("Created tenant t2.\n"), made.out());
        assertTrue(made.out().contains("Give it a key: stockade keys create --tenant t2 --data-dir " + dir), made.out());
        assertEquals(new Quota(3, 4096L, 2.5, 10, 1024, 0.5), stored("t2"));

        TestIo shown = run("tenants", "show", "t2");
        assertEquals(0, shown.exit, shown.err());
        for (String line : List.of("sandboxes            3", "memory-mb            4096", "cpus                 2.5",
                "creates-per-minute   10", "sandbox-memory-mb    1024", "sandbox-cpus         0.5", "active keys          0")) {
            assertTrue(shown.out().contains("  " + line + "\n"), shown.out());
        }

        JsonNode j = JSON.readTree(run("tenants", "show", "t2", "--json").out());
        assertEquals("t2", j.get("name").asText());
        assertTrue(j.get("created").asText().endsWith("Z"), j.toString());
        assertEquals(3, j.get("quota").get("sandboxes").asInt());
        assertEquals(4096, j.get("quota").get("memoryMB").asLong());
        assertEquals(2.5, j.get("quota").get("cpus").asDouble());
        assertEquals(10, j.get("quota").get("createsPerMinute").asInt());
        assertEquals(1024, j.get("quota").get("sandboxMemoryMB").asInt());
        assertEquals(0.5, j.get("quota").get("sandboxCpus").asDouble());

        // Change two, clear one, keep the rest.
        TestIo changed = run("tenants", "quota", "t2", "--cpus", "none", "--sandboxes", "5", "--sandbox-cpus", "1");
        assertEquals(0, changed.exit, changed.err());
        assertTrue(changed.out().startsWith("Changed the quota of tenant t2.\n"), changed.out());
        assertTrue(changed.out().contains("  cpus                 unlimited\n"), changed.out());
        assertEquals(new Quota(5, 4096L, null, 10, 1024, 1.0), stored("t2"));

        // Without options, quota shows and changes nothing.
        TestIo same = run("tenants", "quota", "t2");
        assertEquals(0, same.exit, same.err());
        assertTrue(same.out().startsWith("Tenant t2\n"), same.out());
        assertEquals(new Quota(5, 4096L, null, 10, 1024, 1.0), stored("t2"));

        TestIo cleared = run("tenants", "quota", "t2", "--json", "--sandboxes", "NONE", "--memory-mb", "none",
                "--creates-per-minute", "none", "--sandbox-memory-mb", "none", "--sandbox-cpus", "none");
        assertEquals(0, cleared.exit, cleared.err());
        JsonNode q = JSON.readTree(cleared.out()).get("quota");
        q.forEach(v -> assertTrue(v.isNull(), q.toString()));
        assertEquals(Quota.UNLIMITED, stored("t2"));
    }

    @Test
    void listShowsTenantsTheirActiveKeysAndLimits() throws IOException {
        run("tenants", "create", "beta", "--sandboxes", "2", "--cpus", "4");
        run("tenants", "create", "alpha");
        run("keys", "create", "--tenant", "beta");
        String second = run("keys", "create", "--tenant", "beta").out();
        run("keys", "create", "--tenant", "alpha");
        String id = second.replaceAll("(?s).*(key_[0-9a-f]{12}).*", "$1");
        assertEquals(0, run("keys", "revoke", id).exit);

        TestIo t = run("tenants", "list");
        assertEquals(0, t.exit, t.err());
        List<String> lines = t.out().lines().toList();
        assertEquals(3, lines.size(), t.out());
        assertTrue(lines.get(0).matches("TENANT +CREATED +KEYS +QUOTA"), lines.get(0));
        assertTrue(lines.get(1).matches("alpha +\\S+ \\S+ +1 +unlimited"), lines.get(1));
        assertTrue(lines.get(2).matches("beta +\\S+ \\S+ +1 +sandboxes=2 cpus=4"), lines.get(2));

        JsonNode all = JSON.readTree(run("tenants", "list", "--json").out());
        assertEquals(2, all.size());
        assertEquals("alpha", all.get(0).get("name").asText());
        assertEquals(2, all.get(1).get("quota").get("sandboxes").asInt());
    }

    @Test
    void aDefaultTenantMadeHereIsKeptByTheServersFirstStart() {
        assertEquals(0, run("tenants", "create", "default", "--sandboxes", "7").exit);
        try (Store s = Store.open(dir)) {
            Tenancy t = new Tenancy(s, JSON);
            String admin = t.bootstrap(null, dir.resolve("api-key"));
            assertNotNull(t.authenticate(admin));
            assertEquals(7, t.tenant("default").quota().sandboxes());
        }
        TestIo keys = run("keys", "list", "--tenant", "default");
        assertTrue(keys.out().lines().anyMatch(l -> l.contains(" yes ")), keys.out());
    }

    @Test
    void showAndQuotaOfAMissingTenantSayHowToMakeIt() {
        run("tenants", "create", "t1");
        for (String action : List.of("show", "quota")) {
            TestIo t = run("tenants", action, "zz");
            assertEquals(1, t.exit);
            assertEquals("stockade tenants: tenant zz does not exist; create it with stockade tenants create zz --data-dir "
                    + dir + "\n", t.err());
        }
        TestIo dup = run("tenants", "create", "t1");
        assertEquals(1, dup.exit);
        assertEquals("stockade tenants: tenant t1 already exists\n", dup.err());
    }

    @Test
    void createMakesTheStoreButListDoesNot() {
        Path fresh = dir.resolve("a").resolve("b");
        TestIo t = new TestIo(Map.of("STOCKADE_DATA_DIR", fresh.toString()));
        assertEquals(1, Main.run(new String[] {"tenants", "list"}, t.io));
        assertTrue(t.err().startsWith("stockade tenants: there is no Stockade store in " + fresh), t.err());
        assertFalse(Files.exists(fresh));
        TestIo c = new TestIo(Map.of("STOCKADE_DATA_DIR", fresh.toString()));
        assertEquals(0, Main.run(new String[] {"tenants", "create", "t1"}, c.io), c.err());
        assertTrue(Files.isRegularFile(fresh.resolve(Store.FILE)));
        assertTrue(c.out().contains("Give it a key: stockade keys create --tenant t1\n"), c.out());
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "tenants                                    | stockade tenants: which action? One of create, list, show, quota",
        "tenants create                             | stockade tenants: which tenant? Usage: stockade tenants create NAME",
        "tenants create a b                         | stockade tenants: unexpected argument 'b'",
        "tenants create Upper                       | stockade tenants: 'Upper' is not a tenant name",
        "tenants create -x                          | stockade tenants: unknown option -x",
        "tenants create _x                          | stockade tenants: '_x' is not a tenant name",
        "tenants list extra                         | stockade tenants: unexpected argument 'extra'",
        "tenants show t1 --cpus 2                   | stockade tenants: --cpus does not apply to tenants show",
        "tenants list --sandboxes 2                 | stockade tenants: --sandboxes does not apply to tenants list",
        "tenants create t3 --cpus 0                 | stockade tenants: --cpus must be a positive number like 0.5 or 4, or none; got '0'",
        "tenants create t3 --cpus -1                | stockade tenants: --cpus must be a positive number",
        "tenants create t3 --cpus NaN               | stockade tenants: --cpus must be a positive number",
        "tenants create t3 --cpus 1e3               | stockade tenants: --cpus must be a positive number",
        "tenants create t3 --sandbox-cpus Infinity  | stockade tenants: --sandbox-cpus must be a positive number",
        "tenants create t3 --sandboxes 0            | stockade tenants: --sandboxes must be a whole number from 1 to 2147483647, or none; got '0'",
        "tenants create t3 --sandboxes 1.5          | stockade tenants: --sandboxes must be a whole number",
        "tenants create t3 --sandboxes 2147483648   | stockade tenants: --sandboxes must be a whole number",
        "tenants quota t1 --memory-mb abc           | stockade tenants: --memory-mb must be a whole number from 1 to 9223372036854775807",
        "tenants quota t1 --creates-per-minute 99999999999999999999 | stockade tenants: --creates-per-minute must be a whole number",
        "tenants quota t1 --sandbox-memory-mb       | stockade tenants: option --sandbox-memory-mb needs a value",
        "tenants rename t1                          | stockade tenants: unknown action 'rename'",
    })
    void badInputIsAUsageErrorAndChangesNothing(String argv, String message) {
        run("tenants", "create", "t1", "--sandboxes", "4");
        String[] words = argv.split(" ");
        TestIo t = run(words[0], List.of(words).subList(1, words.length).toArray(String[]::new));
        assertEquals(2, t.exit, t.err());
        assertTrue(t.err().startsWith(message), t.err());
        assertFalse(t.err().contains("Exception") || t.err().contains("\tat "), t.err());
        assertTrue(t.out().isEmpty(), t.out());
        assertEquals(new Quota(4, null, null, null, null, null), stored("t1"));
        try (Store s = Store.open(dir)) {
            assertEquals(1, TenantAdmin.on(s).tenants().size(), "a refused command made a tenant");
        }
    }

    @Test
    void help() {
        TestIo t = run("tenants", "--help");
        assertEquals(0, t.exit);
        assertTrue(t.out().startsWith("Usage: stockade tenants create NAME"), t.out());
        for (String option : TenantsCommand.QUOTA_OPTIONS) assertTrue(t.out().contains("  --" + option + " "), option);
    }
}
