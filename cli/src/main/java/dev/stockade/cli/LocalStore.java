package dev.stockade.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.store.Store;
import dev.stockade.server.tenancy.TenantAdmin;
import java.io.IOException;
import java.math.BigDecimal;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * A data directory's store opened in this process, for {@code stockade keys} and {@code stockade
 * tenants}: they call the server module's {@link TenantAdmin} on it — the same service, with the
 * same rules, as the admin API — so they need no server and no admin key, only the right to the
 * data directory's files. Whether or not a server runs on the directory does not matter: SQLite's
 * locking orders the writers, and the server reads keys from the store on every request, so what
 * these commands change holds at once. Runs on the command's thread.
 */
final class LocalStore implements AutoCloseable {
    static final ObjectMapper JSON = new ObjectMapper();
    static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss").withZone(ZoneId.systemDefault());

    static final String DATA_DIR_HELP = """
              --data-dir DIR    the data directory whose store to use (default: as for serve,
                                $STOCKADE_DATA_DIR, else ~/.local/share/stockade, else /var/lib/stockade)
            """;

    private final Path dir;
    private final boolean dirGiven;
    private final Store store;
    private final TenantAdmin admin;

    private LocalStore(Path dir, boolean dirGiven, Store store) {
        this.dir = dir;
        this.dirGiven = dirGiven;
        this.store = store;
        this.admin = TenantAdmin.on(store);
    }

    /** {@code --data-dir}, else the CLI's default data directory. */
    static Path dir(String command, Args args, Io io) throws UsageException {
        String given = args.value("data-dir");
        if (given == null) return DataDir.defaultDir(io);
        if (given.isBlank()) throw new UsageException(command, "--data-dir needs a directory");
        try {
            return Path.of(given).toAbsolutePath().normalize();
        } catch (InvalidPathException e) {
            throw new UsageException(command, "--data-dir: not a path: " + shown(given));
        }
    }

    /** Whether {@code dir} holds a store (a server has started on it, or a tenant was created there). */
    static boolean exists(Path dir) {
        return Files.isRegularFile(dir.resolve(Store.FILE));
    }

    /**
     * Opens the store of {@code dir}. Only {@code create} makes one where there is none: a command
     * that reads or changes what is not there says so instead of leaving an empty store behind a
     * mistyped {@code --data-dir}.
     */
    static LocalStore open(Path dir, Args args, boolean create) throws IOException {
        if (!create && !exists(dir)) {
            throw new IOException("there is no Stockade store in " + dir + " (no " + Store.FILE + "): a server makes it"
                    + " on its first start there, and so do 'stockade tenants create' and 'stockade keys create'. Check --data-dir.");
        }
        if (Files.exists(dir) && !Files.isDirectory(dir)) throw new IOException(dir + " is not a directory. Check --data-dir.");
        return new LocalStore(dir, args.value("data-dir") != null, Store.open(dir));
    }

    TenantAdmin admin() {
        return admin;
    }

    Path dir() {
        return dir;
    }

    /** The error for a tenant that is not there, with the command that makes it. */
    StockadeError noTenant(String tenant) {
        return noTenant(tenant, dirGiven ? dir : null);
    }

    static StockadeError noTenant(String tenant, Path dirGiven) {
        return StockadeError.notFound("tenant " + tenant + " does not exist; create it with stockade tenants create " + tenant
                + (dirGiven == null ? "" : " --data-dir " + Shell.quote(dirGiven.toString())));
    }

    /**
     * A tenant name from the command line, checked (by the admin service's rule) before it reaches
     * the store or a message, and refused in the CLI's words.
     */
    static String tenantName(String command, String name) throws UsageException {
        if (name == null || !TenantAdmin.TENANT_NAME.matcher(name).matches()) {
            throw new UsageException(command, (name == null || name.isEmpty() ? "an empty name" : shown(name))
                    + " is not a tenant name: 1 to 63 characters of a-z, 0-9, _ and -, starting with a letter or digit");
        }
        return name;
    }

    /**
     * What a refusal of {@link TenantAdmin} means here: invalid input is a usage error (exit 2), the
     * rest (not found, already exists) a one-line failure (exit 1).
     */
    static int refused(String command, StockadeError e, Io io) throws UsageException {
        if (e.code() == StockadeError.Code.INVALID_ARGUMENT) throw new UsageException(command, e.getMessage());
        io.err().println("stockade " + command + ": " + e.getMessage());
        return 1;
    }

    /**
     * The action named by the first positional, and its options checked: an option of another
     * action (e.g. {@code keys list --admin}) is a usage error, not silently ignored.
     */
    static String action(String command, Args args, Args.Spec spec, Map<String, Set<String>> actions)
            throws UsageException {
        String names = String.join(", ", actions.keySet());
        if (args.positionals().isEmpty()) throw new UsageException(command, "which action? One of " + names);
        String action = args.positionals().getFirst();
        Set<String> allowed = actions.get(action);
        if (allowed == null) throw new UsageException(command, "unknown action " + shown(action) + "; one of " + names);
        if (args.hasDashDash()) throw new UsageException(command, "unexpected argument '--'");
        Set<String> all = new TreeSet<>(spec.valued());
        all.addAll(spec.flags());
        for (String option : all) {
            if (args.flag(option) && !allowed.contains(option)) {
                throw new UsageException(command, "--" + option + " does not apply to " + command + " " + action);
            }
        }
        return action;
    }

    /** Input echoed in a message: at most 64 characters, control characters shown as '?'. */
    static String shown(String s) {
        String cut = s.length() > 64 ? s.substring(0, 64) + "..." : s;
        StringBuilder sb = new StringBuilder("'");
        cut.codePoints().forEach(c -> sb.appendCodePoint(Character.isISOControl(c) ? '?' : c));
        return sb.append('\'').toString();
    }

    static String time(Instant i) {
        return i == null ? "-" : TIME.format(i);
    }

    static String iso(Instant i) {
        return DateTimeFormatter.ISO_INSTANT.format(i);
    }

    /** A quota number as people write it: 2 not 2.0, 0.5 as is, "unlimited" for none. */
    static String number(Number n) {
        if (n == null) return "unlimited";
        if (n instanceof Double d) return BigDecimal.valueOf(d).stripTrailingZeros().toPlainString();
        return n.toString();
    }

    /** Rows as left-aligned columns, two spaces apart; the first row is the header. */
    static String table(List<String[]> rows) {
        int[] width = new int[rows.getFirst().length];
        for (String[] r : rows) for (int i = 0; i < r.length; i++) width[i] = Math.max(width[i], r[i].length());
        StringBuilder sb = new StringBuilder();
        for (String[] r : rows) {
            List<String> cells = new ArrayList<>();
            for (int i = 0; i < r.length; i++) cells.add(i == r.length - 1 ? r[i] : String.format("%-" + (width[i] + 2) + "s", r[i]));
            sb.append(String.join("", cells).stripTrailing()).append('\n');
        }
        return sb.toString();
    }

    @Override
    public void close() {
        store.close();
    }
}
