// Stockade load benchmark (issue 7): an OPEN-LOOP mix of API calls from several tenants at a fixed
// request rate, against a server that bench/load.sh started. Single-file program, JDK only:
//
//   java bench/lib/LoadBench.java --url URL --admin-key-file FILE [--rate 500] [--seconds 60]
//        [--tenants 2] [--sandboxes 4] [--create-rate 1] [--warmup-seconds 10] [--baseline-seconds S]
//        [--timeout-seconds 30] [--server-pid PID] [--out FILE.json]
//
// What it does, in order:
//  1. setup (untimed): with the admin key, creates TENANTS tenants (POST /admin/tenants) and a key
//     each (POST /admin/keys); each tenant creates SANDBOXES sandboxes and, in each, writes a fixed
//     file and runs every operation once (this also starts each sandbox's code-interpreter kernel).
//  2. warm-up: the mixed schedule with its rate climbing linearly from 0 to RATE over WARMUP seconds
//     (JIT, connections); reported on one line and in the phase table, not in the main table.
//  3. baseline: GET /health (no key, no store access) at RATE for BASELINE seconds.
//  4. measured: the mixed schedule at RATE for SECONDS.
// Open loop: every request has a scheduled start time fixed before the phase begins (evenly spaced,
// tenants interleaved); one scheduler thread hands each request to its own virtual thread at that
// time and never waits for answers, and latency is measured from the SCHEDULED time, not from the
// moment the request was sent, so a slow server cannot slow the arrivals down and hide its own
// queueing (no coordinated omission). The scheduler's lateness is reported too.
// Per tenant and second the mix is CREATE_RATE creates and as many kills (each kill ends the sandbox
// of one create of the same phase, scheduled half a create interval later; if that create has not
// answered yet, the kill waits for it and its latency starts when the sandbox existed), and the rest
// round-robin over: GET /sandboxes, GET /sandboxes/{id}, process.Process/Start `echo hi` (Connect
// stream read to its end), filesystem.Filesystem/Stat, POST /files (64 B, octet-stream),
// GET /files (64 B), POST /execute `1+1` (code interpreter, port 49999). Control-plane calls carry
// the tenant's X-API-Key; in-sandbox calls carry the sandbox's envdAccessToken (X-Access-Token),
// exactly as the E2B SDKs send them. Every answer is checked (status and content: the list holds
// the tenant's own sandboxes and none of another tenant's, the echo prints hi and exits 0, the cell
// answers 2, the download returns the bytes written at setup); anything else is an error.
// Prints Markdown tables on stdout (progress on stderr), writes the summary JSON to --out, and exits
// 1 when any request of any phase failed (2 on bad arguments). Kills every sandbox it created.
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public class LoadBench {
    /** The operations, in the order of the report. */
    enum Op {
        LIST("GET /sandboxes (list)"),
        GET("GET /sandboxes/{id}"),
        START("process.Process/Start `echo hi` (stream)"),
        STAT("filesystem.Filesystem/Stat"),
        UPLOAD("POST /files (64 B)"),
        DOWNLOAD("GET /files (64 B)"),
        EXECUTE("POST /execute `1+1` (port 49999)"),
        CREATE("POST /sandboxes (create, no pool)"),
        KILL("DELETE /sandboxes/{id} (kill)"),
        HEALTH("GET /health (baseline: no key, no store)");

        final String label;

        Op(String label) {
            this.label = label;
        }
    }

    /** The round-robin part of the mix (create and kill have their own fixed rate). */
    static final Op[] MIX = {Op.LIST, Op.GET, Op.START, Op.STAT, Op.UPLOAD, Op.DOWNLOAD, Op.EXECUTE};
    static final String FIXED_PATH = "/tmp/load-fixed.txt";
    static final byte[] FIXED = "stockade load bench: the file every GET /files reads, 64 bytes..\n".getBytes(StandardCharsets.UTF_8);
    static final byte[] UPLOAD = "stockade load bench: the file every POST /files writes, 64 B...\n".getBytes(StandardCharsets.UTF_8);
    static final int UPLOAD_PATHS = 8;

    record Box(String id, String token) {}

    /** A tenant of the run: its key, its long-lived sandboxes, its own HTTP client (as a separate user would have). */
    record Tenant(String name, String key, List<Box> boxes, HttpClient http) {}

    /** One scheduled request: when (nanoseconds after the phase's start), for whom, what, and which (box or create index). */
    record Slot(long offsetNanos, int tenant, Op op, int index) {}

    record Config(URI url, Path adminKeyFile, double rate, double seconds, int tenants, int sandboxes, double createRate,
                  double warmupSeconds, double baselineSeconds, int timeoutSeconds, long serverPid, Path out) {}

    /** Latencies and errors of one operation in one phase; thread-safe. */
    static final class Stats {
        final Op op;
        final AtomicInteger started = new AtomicInteger();
        private long[] latency = new long[1024];
        private int n;
        private int errors;
        private final List<String> firstErrors = new ArrayList<>();

        Stats(Op op) {
            this.op = op;
        }

        synchronized void ok(long nanos) {
            if (n == latency.length) latency = Arrays.copyOf(latency, n * 2);
            latency[n++] = nanos;
        }

        synchronized void error(String message) {
            errors++;
            if (firstErrors.size() < 5) firstErrors.add(message);
        }

        synchronized long[] sorted() {
            long[] s = Arrays.copyOf(latency, n);
            Arrays.sort(s);
            return s;
        }

        synchronized int errors() {
            return errors;
        }

        synchronized List<String> firstErrors() {
            return List.copyOf(firstErrors);
        }
    }

    /** What one phase measured. */
    record Phase(String name, double scheduledSeconds, int scheduled, double wallSeconds, Map<Op, Stats> stats,
                 long[] lagSorted, List<long[]> samples, Cpu cpu) {
        int errors() {
            return stats.values().stream().mapToInt(Stats::errors).sum();
        }

        int ok() {
            return stats.values().stream().mapToInt(s -> s.sorted().length).sum();
        }
    }

    /**
     * CPU used during a phase, in cores: the whole machine (/proc/stat), the server's JVM, the processes it
     * started and reaped (runc), the long-lived sandboxes of the run (their cgroups' cpuacct.usage),
     * this generator, and the rest (short-lived sandboxes, the kernel, anything else on the machine).
     */
    record Cpu(double machineBusyCores, double serverCores, double serverChildrenCores, double sandboxesCores,
               double generatorCores, int cores, String loadavgAfter) {
        double restCores() {
            return machineBusyCores - serverCores - serverChildrenCores - sandboxesCores - generatorCores;
        }
    }

    static final HttpClient.Version V = HttpClient.Version.HTTP_1_1;
    static Config cfg;
    static HttpClient adminHttp;
    static String adminKey;
    static final List<String> setupErrors = new ArrayList<>();

    public static void main(String[] args) throws Exception {
        try {
            cfg = parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("LoadBench: " + e.getMessage());
            System.exit(2);
        }
        adminKey = Files.readString(cfg.adminKeyFile()).trim();
        adminHttp = client();
        List<Tenant> tenants = new ArrayList<>();
        ConcurrentLinkedQueue<Object[]> leftovers = new ConcurrentLinkedQueue<>(); // {Tenant, Box} to kill at the end
        int exit;
        try {
            setup(tenants, leftovers);
            progress("warm-up: mixed schedule ramping from 0 to %.0f req/s over %.0f s", cfg.rate(), cfg.warmupSeconds());
            Phase warm = run("warm-up (ramp)", ramp(mixed(tenants.size(), cfg.warmupSeconds() / 2), cfg.warmupSeconds()),
                    cfg.warmupSeconds(), tenants, leftovers);
            progress("baseline: GET /health at %.0f req/s for %.0f s", cfg.rate(), cfg.baselineSeconds());
            Phase base = run("baseline", health(cfg.baselineSeconds()), cfg.baselineSeconds(), tenants, leftovers);
            progress("measured: mixed schedule at %.0f req/s for %.0f s from %d tenants", cfg.rate(), cfg.seconds(), tenants.size());
            Phase main = run("mixed", mixed(tenants.size(), cfg.seconds()), cfg.seconds(), tenants, leftovers);
            report(warm, base, main);
            if (cfg.out() != null) Files.writeString(cfg.out(), json(tenants, warm, base, main));
            exit = warm.errors() + base.errors() + main.errors() > 0 ? 1 : 0;
        } catch (Exception e) {
            System.err.println("LoadBench: the run stopped: " + e);
            exit = 1;
        } finally {
            int failedKills = cleanup(tenants, leftovers);
            if (failedKills > 0) {
                System.err.println("LoadBench: " + failedKills + " sandboxes could not be killed at the end (the server's stop ends them)");
            }
        }
        if (!setupErrors.isEmpty()) {
            System.err.println("LoadBench: setup errors: " + setupErrors);
            exit = 1;
        }
        System.exit(exit);
    }

    // ---- arguments ------------------------------------------------------------------------------

    static Config parse(String[] a) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i < a.length; i++) {
            if (!a[i].startsWith("--") || i + 1 >= a.length) throw new IllegalArgumentException("expected --name value pairs, got " + a[i]);
            m.put(a[i].substring(2), a[++i]);
        }
        List<String> known = List.of("url", "admin-key-file", "rate", "seconds", "tenants", "sandboxes", "create-rate",
                "warmup-seconds", "baseline-seconds", "timeout-seconds", "server-pid", "out");
        for (String k : m.keySet()) if (!known.contains(k)) throw new IllegalArgumentException("unknown option --" + k + " (known: " + known + ")");
        if (!m.containsKey("url") || !m.containsKey("admin-key-file")) throw new IllegalArgumentException("--url and --admin-key-file are required");
        double rate = num(m, "rate", 500, 1, 100_000);
        double seconds = num(m, "seconds", 60, 1, 3600);
        int tenants = (int) num(m, "tenants", 2, 1, 50);
        int sandboxes = (int) num(m, "sandboxes", 4, 1, 50);
        double createRate = num(m, "create-rate", 1, 0, 100);
        if (rate / tenants < 2 * createRate + 1) {
            throw new IllegalArgumentException(String.format(Locale.ROOT, "--rate %.0f over %d tenants leaves no room for %.1f creates "
                    + "and kills per tenant per second: raise --rate or lower --create-rate", rate, tenants, createRate));
        }
        return new Config(URI.create(m.get("url")), Path.of(m.get("admin-key-file")), rate, seconds, tenants, sandboxes, createRate,
                num(m, "warmup-seconds", 10, 0, 600), num(m, "baseline-seconds", seconds, 0, 3600),
                (int) num(m, "timeout-seconds", 30, 1, 600), (long) num(m, "server-pid", 0, 0, Long.MAX_VALUE),
                m.containsKey("out") ? Path.of(m.get("out")) : null);
    }

    static double num(Map<String, String> m, String k, double dflt, double min, double max) {
        if (!m.containsKey(k)) return dflt;
        double v;
        try {
            v = Double.parseDouble(m.get(k));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + k + " must be a number, got " + m.get(k));
        }
        if (!(v >= min && v <= max)) throw new IllegalArgumentException("--" + k + " must be in [" + min + ", " + max + "], got " + v);
        return v;
    }

    // ---- setup and cleanup ------------------------------------------------------------------------

    static HttpClient client() {
        return HttpClient.newBuilder().version(V).connectTimeout(Duration.ofSeconds(10))
                .executor(Executors.newVirtualThreadPerTaskExecutor()).build();
    }

    static void setup(List<Tenant> tenants, ConcurrentLinkedQueue<Object[]> leftovers) throws Exception {
        for (int t = 0; t < cfg.tenants(); t++) {
            String name = "load-" + (char) ('a' + t % 26) + (t >= 26 ? Integer.toString(t / 26) : "");
            Resp r = send(adminHttp, req("/admin/tenants").header("X-API-Key", adminKey)
                    .POST(json("{\"name\":\"" + name + "\"}")).build());
            if (r.status() != 201) throw new IllegalStateException("POST /admin/tenants " + name + ": " + r);
            r = send(adminHttp, req("/admin/keys").header("X-API-Key", adminKey)
                    .POST(json("{\"tenant\":\"" + name + "\",\"label\":\"load bench\"}")).build());
            String key = field(r.body(), "key");
            if (r.status() != 201 || key == null) throw new IllegalStateException("POST /admin/keys for " + name + ": " + r);
            tenants.add(new Tenant(name, key, new ArrayList<>(), client()));
        }
        long sandboxTimeout = (long) (cfg.warmupSeconds() + cfg.baselineSeconds() + cfg.seconds()) + 600;
        for (Tenant t : tenants) {
            for (int i = 0; i < cfg.sandboxes(); i++) {
                long t0 = System.nanoTime();
                Box b = create(t, sandboxTimeout);
                leftovers.add(new Object[] {t, b});
                t.boxes().add(b);
                Resp w = upload(t, b, FIXED_PATH, FIXED);
                if (w.status() != 200) throw new IllegalStateException("setup: writing " + FIXED_PATH + " in " + b.id() + ": " + w);
                for (Op op : MIX) {
                    String err = perform(t, op, i, tenants);
                    if (err != null) throw new IllegalStateException("setup: " + op.label + " in " + b.id() + ": " + err);
                }
                progress("tenant %s: sandbox %s ready, every operation checked once (%.0f ms)", t.name(), b.id(), (System.nanoTime() - t0) / 1e6);
            }
        }
    }

    static Box create(Tenant t, long timeoutSeconds) throws IOException, InterruptedException {
        Resp r = send(t.http(), req("/sandboxes").header("X-API-Key", t.key())
                .POST(json("{\"templateID\":\"base\",\"timeout\":" + timeoutSeconds + "}")).build());
        String id = field(r.body(), "sandboxID"), token = field(r.body(), "envdAccessToken");
        if (r.status() != 201 || id == null || token == null) throw new IllegalStateException("create: " + r);
        return new Box(id, token);
    }

    /** Kills every sandbox the run created and did not kill; returns how many kills failed. */
    static int cleanup(List<Tenant> tenants, ConcurrentLinkedQueue<Object[]> leftovers) {
        int failed = 0;
        for (Object[] o : leftovers) {
            Tenant t = (Tenant) o[0];
            Box b = (Box) o[1];
            try {
                Resp r = send(t.http(), req("/sandboxes/" + b.id()).header("X-API-Key", t.key()).DELETE().build());
                if (r.status() != 204 && r.status() != 404) {
                    failed++;
                    System.err.println("LoadBench: cleanup kill " + b.id() + ": " + r);
                }
            } catch (Exception e) {
                failed++;
                System.err.println("LoadBench: cleanup kill " + b.id() + ": " + e);
            }
        }
        for (Tenant t : tenants) t.http().close();
        adminHttp.close();
        return failed;
    }

    // ---- schedules --------------------------------------------------------------------------------

    /** The mixed schedule of a phase: per tenant, evenly spaced slots; creates and kills at their rate, the rest round-robin. */
    static List<Slot> mixed(int tenants, double seconds) {
        double perTenant = cfg.rate() / tenants;
        List<Slot> all = new ArrayList<>();
        for (int t = 0; t < tenants; t++) {
            int n = (int) Math.round(perTenant * seconds);
            int c = (int) Math.round(cfg.createRate() * seconds);
            Op[] ops = new Op[n];
            int[] idx = new int[n];
            for (int k = 0; k < c; k++) {
                // n >= 2c + seconds (checked in parse), so a create and its kill never share a slot.
                int cs = (int) Math.floor(k * (double) n / c), ks = (int) Math.floor((k + 0.5) * n / c);
                ops[cs] = Op.CREATE;
                idx[cs] = k;
                ops[ks] = Op.KILL;
                idx[ks] = k;
            }
            int rr = t; // tenants start the round-robin at different operations
            int[] perOp = new int[Op.values().length];
            for (int j = 0; j < n; j++) {
                if (ops[j] == null) {
                    ops[j] = MIX[rr++ % MIX.length];
                    idx[j] = perOp[ops[j].ordinal()]++;
                }
                all.add(new Slot((long) ((j + (double) t / tenants) / perTenant * 1e9), t, ops[j], idx[j]));
            }
        }
        all.sort((x, y) -> Long.compare(x.offsetNanos(), y.offsetNanos()));
        return all;
    }

    /**
     * The warm-up's arrivals: the slots of an even schedule of W/2 seconds, moved so that the rate
     * climbs linearly from 0 to RATE over W seconds (same slots, same order). A JVM that has not
     * compiled its hot paths yet serves far less than it will, and a cold start at the full rate
     * only measures that backlog.
     */
    static List<Slot> ramp(List<Slot> even, double seconds) {
        List<Slot> out = new ArrayList<>(even.size());
        for (Slot s : even) {
            double u = s.offsetNanos() / 1e9; // the arrivals before t are RATE t² / 2W = RATE u
            out.add(new Slot((long) (Math.sqrt(2 * seconds * u) * 1e9), s.tenant(), s.op(), s.index()));
        }
        return out;
    }

    static List<Slot> health(double seconds) {
        int n = (int) Math.round(cfg.rate() * seconds);
        List<Slot> all = new ArrayList<>(n);
        for (int j = 0; j < n; j++) all.add(new Slot((long) (j / cfg.rate() * 1e9), 0, Op.HEALTH, j));
        return all;
    }

    // ---- one phase --------------------------------------------------------------------------------

    static Phase run(String name, List<Slot> slots, double seconds, List<Tenant> tenants, ConcurrentLinkedQueue<Object[]> leftovers)
            throws Exception {
        Map<Op, Stats> stats = new EnumMap<>(Op.class);
        for (Slot s : slots) stats.computeIfAbsent(s.op(), Stats::new);
        int creates = (int) slots.stream().filter(s -> s.op() == Op.CREATE).count();
        // created[tenant][k]: the sandbox of create k of that tenant and when it existed (nanoTime), for kill k.
        @SuppressWarnings("unchecked")
        CompletableFuture<Object[]>[][] created = new CompletableFuture[tenants.size()][creates + 1];
        for (CompletableFuture<Object[]>[] row : created) for (int k = 0; k < row.length; k++) row[k] = new CompletableFuture<>();
        long[] lag = new long[slots.size()];
        List<long[]> samples = new ArrayList<>(slots.size()); // {offset of the slot, latency}, successes only
        long[] cpu0 = cpuNow(tenants);
        long t0 = System.nanoTime() + 200_000_000L;
        ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor();
        Thread.currentThread().setPriority(Thread.MAX_PRIORITY);
        for (int i = 0; i < slots.size(); i++) {
            Slot s = slots.get(i);
            long due = t0 + s.offsetNanos();
            long d;
            while ((d = due - System.nanoTime()) > 0) {
                if (d > 200_000) LockSupport.parkNanos(d - 100_000);
                else Thread.onSpinWait();
            }
            lag[i] = System.nanoTime() - due;
            Stats st = stats.get(s.op());
            st.started.incrementAndGet();
            pool.execute(() -> {
                Tenant t = tenants.get(s.tenant());
                long from = due;
                String err;
                try {
                    if (s.op() == Op.KILL) {
                        Object[] c;
                        try {
                            c = created[s.tenant()][s.index()].get(cfg.timeoutSeconds(), TimeUnit.SECONDS);
                        } catch (TimeoutException e) {
                            st.error("kill " + s.index() + ": its create had not answered after " + cfg.timeoutSeconds() + " s");
                            return;
                        }
                        if (c == null) return; // its create failed: counted there
                        from = Math.max(due, (long) c[1]);
                        err = kill(t, (Box) c[0], leftovers);
                    } else if (s.op() == Op.CREATE) {
                        err = null;
                        Object[] c = null;
                        try {
                            Box b = create(t, 600);
                            leftovers.add(new Object[] {t, b});
                            c = new Object[] {b, System.nanoTime()};
                        } catch (IllegalStateException e) {
                            err = e.getMessage();
                        } finally {
                            created[s.tenant()][s.index()].complete(c);
                        }
                    } else {
                        err = perform(t, s.op(), s.index(), tenants);
                    }
                } catch (Exception e) {
                    err = e.toString();
                }
                long done = System.nanoTime();
                if (err == null) {
                    st.ok(done - from);
                    synchronized (samples) {
                        samples.add(new long[] {s.offsetNanos(), done - from});
                    }
                } else {
                    st.error(s.op().name().toLowerCase(Locale.ROOT) + " (" + t.name() + "): " + err);
                }
            });
        }
        pool.shutdown();
        boolean finished = pool.awaitTermination(cfg.timeoutSeconds() + 30L, TimeUnit.SECONDS);
        double wall = (System.nanoTime() - t0) / 1e9;
        Cpu cpu = cpuSince(cpu0, tenants);
        if (!finished) {
            pool.shutdownNow();
            for (Stats st : stats.values()) {
                int missing = st.started.get() - st.sorted().length - st.errors();
                for (int i = 0; i < missing; i++) st.error("no answer " + (cfg.timeoutSeconds() + 30) + " s after the schedule ended");
            }
        }
        Arrays.sort(lag);
        Phase p = new Phase(name, seconds, slots.size(), wall, stats, lag, samples, cpu);
        progress("%s: %d requests, %d errors, %.1f s", name, slots.size(), p.errors(), wall);
        return p;
    }

    static String kill(Tenant t, Box b, ConcurrentLinkedQueue<Object[]> leftovers) throws IOException, InterruptedException {
        Resp r = send(t.http(), req("/sandboxes/" + b.id()).header("X-API-Key", t.key()).DELETE().build());
        if (r.status() != 204) return r.toString();
        leftovers.removeIf(o -> o[1] == b);
        return null;
    }

    // ---- the operations ---------------------------------------------------------------------------

    /** Runs one request of the mix and checks its answer: null when right, else what was wrong. */
    static String perform(Tenant t, Op op, int index, List<Tenant> tenants) throws IOException, InterruptedException {
        Box b = t.boxes().get(index % t.boxes().size());
        switch (op) {
            case LIST -> {
                Resp r = send(t.http(), req("/sandboxes").header("X-API-Key", t.key()).GET().build());
                if (r.status() != 200) return r.toString();
                for (Box own : t.boxes()) if (!r.body().contains(own.id())) return "the list lacks own sandbox " + own.id() + ": " + r;
                for (Tenant other : tenants) {
                    if (other == t) continue;
                    for (Box theirs : other.boxes()) if (r.body().contains(theirs.id())) return "the list shows " + theirs.id() + " of tenant " + other.name();
                }
                return null;
            }
            case GET -> {
                Resp r = send(t.http(), req("/sandboxes/" + b.id()).header("X-API-Key", t.key()).GET().build());
                return r.status() == 200 && b.id().equals(field(r.body(), "sandboxID")) ? null : r.toString();
            }
            case START -> {
                return start(t, b);
            }
            case STAT -> {
                Resp r = send(t.http(), envd(b, "/filesystem.Filesystem/Stat").header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString("{\"path\":\"" + FIXED_PATH + "\"}")).build());
                return r.status() == 200 && r.body().contains("\"entry\"") && r.body().contains(FIXED_PATH) ? null : r.toString();
            }
            case UPLOAD -> {
                Resp r = upload(t, b, "/tmp/load-up-" + (index % UPLOAD_PATHS) + ".txt", UPLOAD);
                return r.status() == 200 && r.body().startsWith("[") && r.body().contains("load-up-") ? null : r.toString();
            }
            case DOWNLOAD -> {
                HttpResponse<byte[]> r = t.http().send(envd(b, "/files?path=" + enc(FIXED_PATH)).GET().build(),
                        HttpResponse.BodyHandlers.ofByteArray());
                if (r.statusCode() == 200 && Arrays.equals(r.body(), FIXED)) return null;
                return new Resp(r.statusCode(), new String(r.body(), StandardCharsets.UTF_8)).toString();
            }
            case EXECUTE -> {
                Resp r = send(t.http(), req("/execute").header("E2b-Sandbox-Id", b.id()).header("E2b-Sandbox-Port", "49999")
                        .header("X-Access-Token", b.token()).header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString("{\"code\":\"1+1\"}")).build());
                boolean ok = r.status() == 200 && RESULT_2.matcher(r.body()).find() && !r.body().contains("\"type\":\"error\"")
                        && r.body().contains("end_of_execution");
                return ok ? null : r.toString();
            }
            case HEALTH -> {
                Resp r = send(t.http(), req("/health").GET().build());
                return r.status() == 200 && r.body().contains("ok") ? null : r.toString();
            }
            default -> throw new IllegalArgumentException("not a request of its own: " + op);
        }
    }

    static final Pattern RESULT_2 = Pattern.compile("\"type\"\\s*:\\s*\"result\"[^\\n]*\"text\"\\s*:\\s*\"2\"");

    static Resp upload(Tenant t, Box b, String path, byte[] content) throws IOException, InterruptedException {
        return send(t.http(), envd(b, "/files?path=" + enc(path)).header("Content-Type", "application/octet-stream")
                .POST(HttpRequest.BodyPublishers.ofByteArray(content)).build());
    }

    static final Pattern EXIT_CODE = Pattern.compile("\"exitCode\"\\s*:\\s*(-?\\d+)");
    static final byte[] START_BODY = envelope("{\"process\":{\"cmd\":\"/bin/bash\",\"args\":[\"-l\",\"-c\",\"echo hi\"]}}");

    /** process.Process/Start of `echo hi` as the E2B SDK sends it, read frame by frame to the end of the stream. */
    static String start(Tenant t, Box b) throws IOException, InterruptedException {
        HttpRequest q = envd(b, "/process.Process/Start").header("Content-Type", "application/connect+json")
                .header("Keepalive-Ping-Interval", "50").POST(HttpRequest.BodyPublishers.ofByteArray(START_BODY)).build();
        HttpResponse<InputStream> r = t.http().send(q, HttpResponse.BodyHandlers.ofInputStream());
        try (DataInputStream in = new DataInputStream(r.body())) {
            String ct = r.headers().firstValue("Content-Type").orElse("");
            if (r.statusCode() != 200 || !ct.startsWith("application/connect+json")) {
                return new Resp(r.statusCode(), new String(in.readNBytes(4096), StandardCharsets.UTF_8)).toString();
            }
            boolean hi = false, end = false;
            for (int frames = 0; frames < 64; frames++) {
                int flags;
                try {
                    flags = in.readUnsignedByte();
                } catch (EOFException e) {
                    return "the stream ended without its end-of-stream frame";
                }
                int len = in.readInt();
                if (len < 0 || len > 1 << 20) return "a frame of " + len + " bytes";
                String m = new String(in.readNBytes(len), StandardCharsets.UTF_8);
                if ((flags & 2) != 0) {
                    if (m.contains("\"error\"")) return "end-of-stream error: " + m;
                    if (!hi || !end) return "the stream ended without " + (hi ? "" : "stdout hi ") + (end ? "" : "an end event");
                    return null;
                }
                if (m.contains("\"stdout\":\"aGkK\"")) hi = true; // base64 of "hi\n"
                if (m.contains("\"end\"")) {
                    Matcher code = EXIT_CODE.matcher(m); // omitted when 0 in envd's proto3 JSON; Stockade sends 0
                    if ((code.find() && !code.group(1).equals("0")) || !m.contains("\"exited\":true")) return "echo did not exit 0: " + m;
                    end = true;
                }
            }
            return "more than 64 frames for one echo";
        }
    }

    static byte[] envelope(String msg) {
        byte[] m = msg.getBytes(StandardCharsets.UTF_8);
        byte[] e = new byte[5 + m.length];
        e[1] = (byte) (m.length >>> 24);
        e[2] = (byte) (m.length >>> 16);
        e[3] = (byte) (m.length >>> 8);
        e[4] = (byte) m.length;
        System.arraycopy(m, 0, e, 5, m.length);
        return e;
    }

    // ---- HTTP helpers -----------------------------------------------------------------------------

    record Resp(int status, String body) {
        @Override
        public String toString() {
            String b = body.length() > 300 ? body.substring(0, 300) + "..." : body;
            return "HTTP " + status + " " + b.replace('\n', ' ');
        }
    }

    static HttpRequest.Builder req(String path) {
        return HttpRequest.newBuilder(cfg.url().resolve(path)).timeout(Duration.ofSeconds(cfg.timeoutSeconds()));
    }

    static HttpRequest.Builder envd(Box b, String path) {
        return req(path).header("E2b-Sandbox-Id", b.id()).header("E2b-Sandbox-Port", "49983")
                .header("X-Access-Token", b.token()).header("Connect-Protocol-Version", "1");
    }

    static HttpRequest.BodyPublisher json(String s) {
        return HttpRequest.BodyPublishers.ofString(s);
    }

    static Resp send(HttpClient http, HttpRequest q) throws IOException, InterruptedException {
        if (q.bodyPublisher().isPresent() && q.headers().firstValue("Content-Type").isEmpty()) {
            q = HttpRequest.newBuilder(q, (k, v) -> true).header("Content-Type", "application/json").build();
        }
        HttpResponse<String> r = http.send(q, HttpResponse.BodyHandlers.ofString());
        return new Resp(r.statusCode(), r.body());
    }

    static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    /** A string member of a JSON object, by name (the answers here are flat enough for a pattern). */
    static String field(String json, String name) {
        Matcher m = Pattern.compile("\"" + Pattern.quote(name) + "\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\"").matcher(json);
        return m.find() ? m.group(1) : null;
    }

    // ---- CPU accounting ---------------------------------------------------------------------------

    /** {machine busy ticks, machine total ticks, server ticks, generator ticks, wall nanos}. */
    /** {machine busy ticks, machine total ticks, server ticks, generator ticks, wall nanos, server children ticks, sandboxes nanos}. */
    static long[] cpuNow(List<Tenant> tenants) {
        long busy = 0, total = 0;
        try {
            String[] f = Files.readAllLines(Path.of("/proc/stat")).getFirst().trim().split("\\s+");
            for (int i = 1; i < f.length && i <= 8; i++) {
                long v = Long.parseLong(f[i]);
                total += v;
                if (i != 4 && i != 5) busy += v; // idle and iowait are not busy
            }
        } catch (IOException | RuntimeException e) {
            busy = total = -1;
        }
        long sandboxes = 0;
        for (Tenant t : tenants) {
            for (Box b : t.boxes()) {
                try {
                    sandboxes += Long.parseLong(Files.readString(Path.of("/sys/fs/cgroup/cpuacct/stockade-" + b.id() + "/cpuacct.usage")).trim());
                } catch (IOException | RuntimeException e) {
                    sandboxes = Long.MIN_VALUE / 2; // not cgroups v1 (or not this layout): unknown
                }
            }
        }
        return new long[] {busy, total, procTicks(cfg.serverPid(), 11), procTicks(ProcessHandle.current().pid(), 11), System.nanoTime(),
                procTicks(cfg.serverPid(), 13), sandboxes};
    }

    /** utime + stime (field 11 after the command) or cutime + cstime (field 13) of a process, in ticks; -1 when unknown. */
    static long procTicks(long pid, int field) {
        if (pid <= 0) return -1;
        try {
            String s = Files.readString(Path.of("/proc/" + pid + "/stat"));
            String[] f = s.substring(s.lastIndexOf(')') + 2).split(" ");
            return Long.parseLong(f[field]) + Long.parseLong(f[field + 1]);
        } catch (IOException | RuntimeException e) {
            return -1;
        }
    }

    static Cpu cpuSince(long[] a, List<Tenant> tenants) {
        long[] b = cpuNow(tenants);
        double wallTicks = (b[4] - a[4]) / 1e9 * 100; // USER_HZ is 100 on Linux
        int cores = Runtime.getRuntime().availableProcessors();
        double machine = a[1] < 0 || b[1] == a[1] ? -1 : (double) (b[0] - a[0]) / (b[1] - a[1]) * cores;
        double server = a[2] < 0 || b[2] < 0 ? -1 : (b[2] - a[2]) / wallTicks;
        double gen = a[3] < 0 || b[3] < 0 ? -1 : (b[3] - a[3]) / wallTicks;
        double children = a[5] < 0 || b[5] < 0 ? -1 : (b[5] - a[5]) / wallTicks;
        double sandboxes = a[6] < 0 || b[6] < 0 ? -1 : (b[6] - a[6]) / (double) (b[4] - a[4]);
        String load;
        try {
            load = String.join(" ", Arrays.copyOf(Files.readString(Path.of("/proc/loadavg")).trim().split(" "), 3));
        } catch (IOException e) {
            load = "?";
        }
        return new Cpu(machine, server, children, sandboxes, gen, cores, load);
    }

    // ---- report -----------------------------------------------------------------------------------

    static double pct(long[] sorted, double p) {
        if (sorted.length == 0) return Double.NaN;
        int i = (int) Math.ceil(p * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, i))] / 1e6;
    }

    static String ms(double v) {
        if (Double.isNaN(v)) return "—";
        if (v >= 100) return String.format(Locale.ROOT, "%.0f", v);
        if (v >= 10) return String.format(Locale.ROOT, "%.1f", v);
        return String.format(Locale.ROOT, "%.2f", v);
    }

    static void report(Phase warm, Phase base, Phase main) {
        System.out.printf(Locale.ROOT, "Open loop, latency from each request's scheduled start; %d tenants × %d sandboxes; "
                + "creates %.1f/s per tenant (no pool); %d cores.%n%n", cfg.tenants(), cfg.sandboxes(), cfg.createRate(), main.cpu().cores());
        System.out.println("| operation | requests | errors | median (ms) | p90 (ms) | p99 (ms) | max (ms) | achieved rate (/s) |");
        System.out.println("|---|---:|---:|---:|---:|---:|---:|---:|");
        for (Map.Entry<Op, Stats> e : main.stats().entrySet()) row(e.getKey().label, e.getValue().sorted(), e.getValue().errors(), main);
        row("**all mixed requests**", all(main), main.errors(), main);
        for (Map.Entry<Op, Stats> e : base.stats().entrySet()) row(e.getKey().label, e.getValue().sorted(), e.getValue().errors(), base);
        System.out.println();
        System.out.printf(Locale.ROOT, "| phase | scheduled | rate asked (/s) | wall (s) | scheduler lateness median / p99 / max (ms) | "
                + "machine CPU busy (cores of %d) | server JVM | runc etc. (server's children) | the long-lived sandboxes | "
                + "load generator | rest (short-lived sandboxes, kernel, other work) | load average after |%n", main.cpu().cores());
        System.out.println("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|");
        for (Phase p : List.of(warm, base, main)) {
            Cpu c = p.cpu();
            System.out.printf(Locale.ROOT, "| %s | %d | %.0f | %.1f | %s / %s / %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %s |%n", p.name(),
                    p.scheduled(), p.scheduled() / p.scheduledSeconds(), p.wallSeconds(), ms(pct(p.lagSorted(), .5)),
                    ms(pct(p.lagSorted(), .99)), ms(pct(p.lagSorted(), 1)), c.machineBusyCores(), c.serverCores(), c.serverChildrenCores(),
                    c.sandboxesCores(), c.generatorCores(), c.restCores(), c.loadavgAfter());
        }
        System.out.println();
        System.out.println("| mixed, by 10 s window (scheduled time) | requests answered right | median (ms) | p99 (ms) | max (ms) |");
        System.out.println("|---|---:|---:|---:|---:|");
        int windows = (int) Math.ceil(main.scheduledSeconds() / 10);
        for (int w = 0; w < windows; w++) {
            long lo = w * 10_000_000_000L, hi = lo + 10_000_000_000L;
            long[] in;
            synchronized (main.samples()) {
                in = main.samples().stream().filter(s -> s[0] >= lo && s[0] < hi).mapToLong(s -> s[1]).sorted().toArray();
            }
            System.out.printf(Locale.ROOT, "| %d–%d s | %d | %s | %s | %s |%n", w * 10, Math.min((w + 1) * 10, (int) Math.ceil(main.scheduledSeconds())),
                    in.length, ms(pct(in, .5)), ms(pct(in, .99)), ms(pct(in, 1)));
        }
        for (Phase p : List.of(warm, base, main)) {
            for (Stats s : p.stats().values()) {
                for (String m : s.firstErrors()) System.out.println("- error (" + p.name() + ", " + s.op.label + "): " + m);
            }
        }
        System.out.printf(Locale.ROOT, "%nwarm-up (not in the table): %d requests, the rate ramping from 0 to %.0f/s over %.0f s, %d errors, "
                + "median %s ms, p99 %s ms%n", warm.scheduled(), cfg.rate(), cfg.warmupSeconds(), warm.errors(), ms(pct(all(warm), .5)),
                ms(pct(all(warm), .99)));
        for (Phase p : List.of(base, main)) {
            if (p.cpu().restCores() > 0.3) {
                System.out.printf(Locale.ROOT, "note: during the %s phase %.2f cores went to work outside the server, its sandboxes and this "
                        + "generator (other processes on the machine?): its figures are probably disturbed; rerun on a quiet machine%n",
                        p.name(), p.cpu().restCores());
            }
        }
        int errors = warm.errors() + base.errors() + main.errors();
        System.out.println(errors == 0 ? "result: no errors" : "result: " + errors + " ERRORS");
    }

    static long[] all(Phase p) {
        return p.stats().values().stream().flatMapToLong(s -> Arrays.stream(s.sorted())).sorted().toArray();
    }

    static void row(String label, long[] s, int errors, Phase p) {
        System.out.printf(Locale.ROOT, "| %s | %d | %d | %s | %s | %s | %s | %.1f |%n", label, s.length + errors, errors, ms(pct(s, .5)),
                ms(pct(s, .9)), ms(pct(s, .99)), ms(pct(s, 1)), s.length / p.wallSeconds());
    }

    static String json(List<Tenant> tenants, Phase... phases) {
        StringBuilder b = new StringBuilder("{\"date\":\"").append(Instant.now()).append('"');
        b.append(String.format(Locale.ROOT, ",\"config\":{\"rate\":%s,\"seconds\":%s,\"tenants\":%d,\"sandboxes\":%d,\"createRate\":%s,"
                        + "\"warmupSeconds\":%s,\"baselineSeconds\":%s,\"timeoutSeconds\":%d}", cfg.rate(), cfg.seconds(), cfg.tenants(),
                cfg.sandboxes(), cfg.createRate(), cfg.warmupSeconds(), cfg.baselineSeconds(), cfg.timeoutSeconds()));
        b.append(",\"phases\":{");
        for (int i = 0; i < phases.length; i++) {
            Phase p = phases[i];
            if (i > 0) b.append(',');
            b.append('"').append(p.name()).append("\":{");
            b.append(String.format(Locale.ROOT, "\"scheduled\":%d,\"scheduledSeconds\":%s,\"wallSeconds\":%.3f,\"errors\":%d,",
                    p.scheduled(), p.scheduledSeconds(), p.wallSeconds(), p.errors()));
            b.append(String.format(Locale.ROOT, "\"lateness_ms\":{\"median\":%s,\"p99\":%s,\"max\":%s},", jnum(pct(p.lagSorted(), .5)),
                    jnum(pct(p.lagSorted(), .99)), jnum(pct(p.lagSorted(), 1))));
            b.append(String.format(Locale.ROOT, "\"cpu\":{\"machineBusyCores\":%.3f,\"serverCores\":%.3f,\"serverChildrenCores\":%.3f,"
                            + "\"sandboxesCores\":%.3f,\"generatorCores\":%.3f,\"restCores\":%.3f,\"cores\":%d,\"loadavgAfter\":\"%s\"},",
                    p.cpu().machineBusyCores(), p.cpu().serverCores(), p.cpu().serverChildrenCores(), p.cpu().sandboxesCores(),
                    p.cpu().generatorCores(), p.cpu().restCores(), p.cpu().cores(), p.cpu().loadavgAfter()));
            b.append("\"operations\":{");
            boolean first = true;
            for (Stats s : p.stats().values()) {
                if (!first) b.append(',');
                first = false;
                long[] l = s.sorted();
                b.append('"').append(s.op.name().toLowerCase(Locale.ROOT)).append("\":");
                b.append(String.format(Locale.ROOT, "{\"ok\":%d,\"errors\":%d,\"median_ms\":%s,\"p90_ms\":%s,\"p99_ms\":%s,\"max_ms\":%s,"
                                + "\"rate\":%.2f,\"firstErrors\":[", l.length, s.errors(), jnum(pct(l, .5)), jnum(pct(l, .9)), jnum(pct(l, .99)), jnum(pct(l, 1)),
                        l.length / p.wallSeconds()));
                List<String> fe = s.firstErrors();
                for (int k = 0; k < fe.size(); k++) {
                    if (k > 0) b.append(',');
                    b.append('"').append(fe.get(k).replace("\\", "\\\\").replace("\"", "\\\"").replaceAll("[\\x00-\\x1f]", " ")).append('"');
                }
                b.append("]}");
            }
            b.append("}}");
        }
        b.append("}}\n");
        return b.toString();
    }

    static String jnum(double v) {
        return Double.isNaN(v) ? "null" : String.format(Locale.ROOT, "%.3f", v);
    }

    static void progress(String fmt, Object... args) {
        System.err.printf(Locale.ROOT, "[load %tT] " + fmt + "%n", prepend(java.time.LocalTime.now(), args));
    }

    static Object[] prepend(Object first, Object[] rest) {
        Object[] a = new Object[rest.length + 1];
        a[0] = first;
        System.arraycopy(rest, 0, a, 1, rest.length);
        return a;
    }
}
