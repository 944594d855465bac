// Stockade benchmark for bench/tiers.sh: the isolation tiers side by side (runc, runsc), through
// Stockade's Java SDK (dev.stockade.sdk) plus raw HTTP for GET /runtimes, pause and resume, with the
// host baselines measured in the same rounds by bench/lib/tier_workload.py's timer. Single-file
// program, run by bench/tiers.sh against the sdk jar and Jackson:
//   java -cp SDK_JAR:JACKSON... TierBench.java PHASE OUT.json IDS_FILE WORKLOAD_PY HOST_DIR key=value...
// PHASE: main (a server without pools: cold creates, commands, files, cells, workloads, pause,
// idle memory) or pool (a server with a warm pool per tier: create -> first echo). Counts come as
// key=value (cold, echo, agent, py, file, cell, pandas, work, spawn, pause, mem; poolcreate, pool).
// Reads STOCKADE_URL, STOCKADE_API_KEY and TIERS_DATA (the server's data directory: the agent
// sockets for bench/lib/agent_probe.py, found next to WORKLOAD_PY, and the state directories that
// tell a pooled hand-over from a fresh start). Every sample is one wall-clock interval in milliseconds; the
// tiers (and the host, where there is a baseline) take turns in every round, the order rotating,
// so that background load hits them alike. Checks (output, bytes, values) happen outside the timed
// regions; every sandbox is killed, and every id created is appended to IDS_FILE (tier id) first.
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.sdk.CodeContext;
import dev.stockade.sdk.CommandResult;
import dev.stockade.sdk.CreateOptions;
import dev.stockade.sdk.Execution;
import dev.stockade.sdk.RunCodeOptions;
import dev.stockade.sdk.Sandbox;
import dev.stockade.sdk.StockadeClient;
import java.io.BufferedReader;
import java.io.BufferedWriter;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

public class TierBench {
    static final ObjectMapper JSON = new ObjectMapper();
    static final List<String> ALL_TIERS = List.of("runc", "runsc");
    static final String SANDBOX_WORKLOAD = "/tmp/tier_workload.py";
    static final String PANDAS_CELL = "import pandas as pd\npd.DataFrame({'a': range(1000), 'b': [i * 0.5 for i in range(1000)]}).describe()";

    final ObjectNode out = JSON.createObjectNode();
    final ObjectNode samples = out.putObject("samples");
    final ArrayNode errors = out.putArray("errors");
    final Map<String, Integer> n = new HashMap<>();
    final List<String> tiers = new ArrayList<>();
    final Map<String, List<String>> capabilities = new HashMap<>();
    final StockadeClient client;
    final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();
    final String url = System.getenv("STOCKADE_URL"), key = System.getenv("STOCKADE_API_KEY");
    final Path idsFile, workloadPy, hostDir;
    HostTimer host;
    int round;

    TierBench(Path idsFile, Path workloadPy, Path hostDir) {
        this.idsFile = idsFile;
        this.workloadPy = workloadPy;
        this.hostDir = hostDir;
        this.client = StockadeClient.builder().requestTimeout(Duration.ofSeconds(180)).build();
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 5) throw new IllegalArgumentException("usage: TierBench PHASE OUT.json IDS_FILE WORKLOAD_PY HOST_DIR key=value...");
        TierBench b = new TierBench(Path.of(args[2]), Path.of(args[3]), Path.of(args[4]));
        for (String kv : Arrays.copyOfRange(args, 5, args.length)) {
            String[] p = kv.split("=", 2);
            if (p.length != 2 || !p[1].matches("\\d{1,5}")) throw new IllegalArgumentException("expected key=count, got " + kv);
            b.n.put(p[0], Integer.parseInt(p[1]));
        }
        Path out = Path.of(args[1]);
        b.out.put("phase", args[0]);
        int rc = 0;
        try (b.client; HostTimer h = new HostTimer(b.workloadPy)) {
            b.host = h;
            b.discoverTiers();
            switch (args[0]) {
                case "main" -> b.mainPhase();
                case "pool" -> b.poolPhase();
                default -> throw new IllegalArgumentException("phase must be main or pool, got " + args[0]);
            }
        } catch (Exception e) {
            b.error("the run stopped: " + e);
            e.printStackTrace();
            rc = 1;
        } finally {
            Files.writeString(out, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(b.out));
        }
        System.exit(rc);
    }

    // ---- helpers ---------------------------------------------------------------------------------

    static void log(String s) {
        System.err.printf("[TierBench %tT] %s%n", System.currentTimeMillis(), s);
    }

    void error(String s) {
        log("ERROR " + s);
        errors.add(s);
    }

    /** One timed step; a step that throws ends that measure for that side (recorded, shown in the report). */
    interface Step {
        void run() throws Exception;
    }

    final ObjectNode failed = out.putObject("failed");

    boolean ok(String measure, String who) {
        return !failed.path(measure).has(who);
    }

    void attempt(String measure, String who, Step step) {
        if (!ok(measure, who)) return;
        try {
            step.run();
        } catch (Exception e) {
            String msg = e.getMessage() == null ? e.toString() : e.getMessage();
            error(who + ": " + measure + " failed, not measured further on this side: " + msg);
            (failed.has(measure) ? (ObjectNode) failed.get(measure) : failed.putObject(measure)).put(who, msg);
        }
    }

    int count(String k) {
        Integer v = n.get(k);
        if (v == null) throw new IllegalArgumentException("missing count " + k + "=N");
        return v;
    }

    void add(String measure, String who, double ms) {
        ObjectNode m = samples.has(measure) ? (ObjectNode) samples.get(measure) : samples.putObject(measure);
        (m.has(who) ? (ArrayNode) m.get(who) : m.putArray(who)).add(Math.round(ms * 10000) / 10000.0);
    }

    static double since(long t0) {
        return (System.nanoTime() - t0) / 1e6;
    }

    /** The tiers in this round's order: rotated every round so that neither always goes first. */
    List<String> order() {
        List<String> o = new ArrayList<>(tiers);
        if (!o.isEmpty()) java.util.Collections.rotate(o, round++ % o.size());
        return o;
    }

    JsonNode api(String method, String path) throws IOException, InterruptedException {
        HttpRequest req = HttpRequest.newBuilder(URI.create(url + path)).timeout(Duration.ofSeconds(120))
                .header("X-API-Key", key).header("Content-Type", "application/json")
                .method(method, method.equals("GET") ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString("{}"))
                .build();
        HttpResponse<String> r = http.send(req, HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() / 100 != 2) throw new IOException(method + " " + path + ": HTTP " + r.statusCode() + " " + r.body());
        return r.body().isEmpty() ? JSON.nullNode() : JSON.readTree(r.body());
    }

    void discoverTiers() throws Exception {
        JsonNode rt = api("GET", "/runtimes");
        out.set("runtimes", rt);
        ObjectNode unavailable = out.putObject("unavailable");
        for (String t : ALL_TIERS) {
            JsonNode found = null;
            for (JsonNode r : rt) if (r.path("name").asText().equals(t)) found = r;
            if (found == null) {
                unavailable.put(t, "not listed by GET /runtimes");
            } else if (!found.path("available").asBoolean()) {
                unavailable.put(t, found.path("reason").asText("unavailable"));
            } else {
                tiers.add(t);
                List<String> caps = new ArrayList<>();
                found.path("capabilities").forEach(c -> caps.add(c.asText()));
                capabilities.put(t, caps);
            }
        }
        log("GET /runtimes: offered " + tiers + (unavailable.isEmpty() ? "" : ", unavailable " + unavailable));
        if (!tiers.contains("runc")) throw new IllegalStateException("the server does not offer runc: " + rt);
    }

    Sandbox create(String tier, Duration lifetime) {
        Sandbox s = client.create(CreateOptions.builder().runtime(tier).timeout(lifetime).build());
        try {
            Files.writeString(idsFile, tier + " " + s.id() + "\n", StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return s;
    }

    static void quietKill(Sandbox s) {
        if (s == null) return;
        try {
            s.kill();
        } catch (RuntimeException e) {
            log("kill " + s.id() + ": " + e.getMessage());
        }
    }

    static void checkEcho(CommandResult r) {
        if (!"hi\n".equals(r.stdout()) || r.exitCode() != 0) throw new IllegalStateException("unexpected echo result: " + r);
    }

    /**
     * Runs the first create of a tier (untimed warm-up); a tier whose create fails is dropped from
     * the run with its error recorded (for runsc, still being finished: the report says so).
     */
    boolean warmUp(String tier, int times) {
        for (int i = 0; i < times; i++) {
            Sandbox s = null;
            try {
                s = create(tier, Duration.ofMinutes(5));
                checkEcho(s.commands().run("echo hi"));
            } catch (RuntimeException e) {
                error(tier + ": warm-up create + echo failed: " + e.getMessage());
                ((ObjectNode) out.get("unavailable")).put(tier, "create failed: " + e.getMessage());
                return false;
            } finally {
                quietKill(s);
            }
        }
        return true;
    }

    // ---- phase: no pool ---------------------------------------------------------------------------

    void mainPhase() throws Exception {
        for (String t : List.copyOf(tiers)) if (!warmUp(t, 2)) tiers.remove(t);
        bareBaseline();
        coldCreates();
        Map<String, Sandbox> box = new LinkedHashMap<>();
        try {
            for (String t : List.copyOf(tiers)) {
                try {
                    Sandbox s = create(t, Duration.ofMinutes(60));
                    box.put(t, s);
                    upload(t, s);
                } catch (RuntimeException e) {
                    error(t + ": the long-lived sandbox of the in-sandbox measures could not be set up (" + e.getMessage()
                            + "); this tier is left out of them and of the idle-memory measure");
                    tiers.remove(t);
                }
            }
            echoes(box);
            agentAlone(box);
            pythons(box);
            fileRoundTrips(box);
            cells(box);
            pandasCells(box);
            workload(box, "cpu");
            workload(box, "sys");
            spawns(box);
            pauseResume(box);
        } finally {
            box.values().forEach(TierBench::quietKill);
        }
        idleMemory();
    }

    /**
     * Puts the workload script into the sandbox: through the files API, or, when that fails on a
     * tier, through a command (base64 on the command line), so the workloads still run there.
     */
    void upload(String tier, Sandbox s) throws IOException {
        byte[] script = Files.readAllBytes(workloadPy);
        try {
            s.files().write(SANDBOX_WORKLOAD, script);
            return;
        } catch (RuntimeException e) {
            error(tier + ": uploading the workload script through the files API failed (" + e.getMessage() + "); writing it with a command instead");
        }
        String b64 = java.util.Base64.getEncoder().encodeToString(script);
        CommandResult r = s.commands().run("echo " + b64 + " | base64 -d > " + SANDBOX_WORKLOAD);
        if (r.exitCode() != 0) throw new IllegalStateException(tier + ": could not write the workload script: " + r);
    }

    void bareBaseline() throws IOException {
        int count = count("py");
        log("bare /usr/bin/python3 -c pass on the host, " + count + " (+5 warm-up)");
        for (int i = 0; i < 5; i++) host.run("/usr/bin/python3", "-c", "pass");
        for (int i = 0; i < count; i++) add("bare_python", "host", host.run("/usr/bin/python3", "-c", "pass").ms);
    }

    void coldCreates() {
        int count = count("cold");
        log("cold create -> first echo (no pool), " + count + " per tier, interleaved");
        for (int i = 0; i < count; i++) {
            for (String t : order()) {
                Sandbox s = null;
                try {
                    long t0 = System.nanoTime();
                    s = create(t, Duration.ofMinutes(5));
                    double c = since(t0);
                    CommandResult r = s.commands().run("echo hi");
                    double total = since(t0);
                    checkEcho(r);
                    add("cold_create_first_echo", t, total);
                    add("cold_create", t, c);
                    add("cold_first_echo", t, total - c);
                } catch (RuntimeException e) {
                    error(t + ": cold create " + i + ": " + e.getMessage());
                } finally {
                    quietKill(s);
                }
            }
            if ((i + 1) % 10 == 0) log("  " + (i + 1) + "/" + count);
        }
    }

    void echoes(Map<String, Sandbox> box) {
        int count = count("echo");
        log("echo hi in a running sandbox, " + count + " per tier (+10 warm-up)");
        for (int i = -10; i < count; i++) {
            final boolean warm = i < 0;
            for (String t : order()) {
                attempt("echo", t, () -> {
                    long t0 = System.nanoTime();
                    CommandResult r = box.get(t).commands().run("echo hi");
                    double ms = since(t0);
                    checkEcho(r);
                    if (!warm) add("echo", t, ms);
                });
            }
        }
    }

    /**
     * The agent alone: bench/lib/agent_probe.py (next to the workload script) on each sandbox's
     * agent socket from the host, {@code agent} round trips of exec /bin/echo hi per tier, the tiers
     * one after the other (a probe is one process); and the same number of hello round trips (the
     * socket transport alone, tier_workload.py agent-hello). What is left above the exec figure in
     * the echo row is the SDK, HTTP, the server and {@code bash -l}.
     */
    void agentAlone(Map<String, Sandbox> box) {
        int count = count("agent");
        String data = System.getenv("TIERS_DATA");
        Path probe = workloadPy.resolveSibling("agent_probe.py");
        if (data == null || !Files.exists(probe) || count == 0) return;
        log("the agent alone (agent_probe.py on its socket), " + count + " per tier");
        for (String t : order()) attempt("agent_echo", t, () -> {
            Path dir = Path.of(data, "runtime", t, "sandboxes", box.get(t).id());
            Path sock;
            try (Stream<Path> s = Files.find(dir, 5, (p, a) -> p.getFileName().toString().equals("agent.sock"))) {
                sock = s.findFirst().orElseThrow(() -> new IllegalStateException("no agent.sock under " + dir));
            }
            Path outFile = hostDir.resolve("agent-" + t + ".json");
            Process p = new ProcessBuilder("/usr/bin/python3", probe.toString(), sock.toString(), String.valueOf(count), outFile.toString())
                    .redirectErrorStream(true).start();
            String said = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(120, java.util.concurrent.TimeUnit.SECONDS) || p.exitValue() != 0) {
                p.destroyForcibly();
                throw new IllegalStateException("agent_probe.py failed: " + said.strip());
            }
            for (JsonNode x : JSON.readTree(outFile.toFile()).path("agent_exec_echo")) add("agent_echo", t, x.asDouble());
        });
        for (String t : order()) attempt("agent_hello", t, () -> {
            Path dir = Path.of(data, "runtime", t, "sandboxes", box.get(t).id());
            Path sock;
            try (Stream<Path> s = Files.find(dir, 5, (p, a) -> p.getFileName().toString().equals("agent.sock"))) {
                sock = s.findFirst().orElseThrow(() -> new IllegalStateException("no agent.sock under " + dir));
            }
            HostTimer.Run r = host.run("/usr/bin/python3", workloadPy.toString(), "agent-hello", sock.toString(), String.valueOf(count));
            if (r.rc != 0) throw new IllegalStateException("agent-hello failed: " + r.out);
            for (JsonNode x : JSON.readTree(r.out.strip()).path("ms")) add("agent_hello", t, x.asDouble());
        });
    }

    void pythons(Map<String, Sandbox> box) throws IOException {
        int count = count("py");
        log("python3 -c pass in a running sandbox, " + count + " per tier, with bare python interleaved");
        for (int i = -3; i < count; i++) {
            final boolean warm = i < 0;
            double h = host.run("/usr/bin/python3", "-c", "pass").ms;
            if (!warm) add("python_pass", "host", h);
            for (String t : order()) {
                attempt("python_pass", t, () -> {
                    long t0 = System.nanoTime();
                    CommandResult r = box.get(t).commands().run("/usr/bin/python3 -c pass");
                    double ms = since(t0);
                    if (r.exitCode() != 0) throw new IllegalStateException("python3 -c pass failed: " + r);
                    if (!warm) add("python_pass", t, ms);
                });
            }
        }
    }

    void fileRoundTrips(Map<String, Sandbox> box) {
        // Diagnostic (JSON only): the agent switches its filesystem uid with setfsuid for every file
        // operation; what the kernel of each tier answers to setfsuid (previous fsuid, then the
        // current one through setfsuid(-1), and errno), asked from a command as the sandbox's user.
        ObjectNode diag = out.putObject("setfsuid_probe");
        for (String t : tiers) {
            if (!box.containsKey(t)) continue;
            try {
                CommandResult r = box.get(t).commands().run("/usr/bin/python3 -c 'import ctypes, os; l = ctypes.CDLL(None, use_errno=True);"
                        + " a = l.setfsuid(os.getuid()); b = l.setfsuid(-1); print(os.getuid(), a, b, ctypes.get_errno())'");
                diag.put(t, "uid, setfsuid(uid), setfsuid(-1), errno: " + r.stdout().strip() + (r.exitCode() == 0 ? "" : " (exit " + r.exitCode() + ": " + r.stderr().strip() + ")"));
            } catch (RuntimeException e) {
                diag.put(t, "probe failed: " + e.getMessage());
            }
        }

        int count = count("file");
        log("1 MiB upload + download, " + count + " per tier (+3 warm-up)");
        Random rnd = new Random(42);
        byte[] data = new byte[1 << 20];
        for (int i = -3; i < count; i++) {
            rnd.nextBytes(data);
            final int k = i;
            for (String t : order()) {
                attempt("file_1mib", t, () -> {
                    Sandbox s = box.get(t);
                    String path = "/tmp/blob-" + (k + 3);
                    long t0 = System.nanoTime();
                    s.files().write(path, data);
                    double w = since(t0);
                    byte[] back = s.files().readBytes(path);
                    double total = since(t0);
                    if (!Arrays.equals(back, data)) throw new IllegalStateException("the 1 MiB file came back different");
                    s.files().remove(path);
                    if (k < 0) return;
                    add("file_1mib", t, total);
                    add("file_1mib_write", t, w);
                    add("file_1mib_read", t, total - w);
                });
            }
        }
    }

    void cells(Map<String, Sandbox> box) {
        int count = count("cell");
        log("1+1 cell, " + count + " per tier (+20 warm-up)");
        for (int i = -20; i < count; i++) {
            final boolean warm = i < 0;
            for (String t : order()) {
                attempt("cell_1plus1", t, () -> {
                    long t0 = System.nanoTime();
                    Execution e = box.get(t).runCode("1+1");
                    double ms = since(t0);
                    if (e.error() != null || !"2".equals(e.text())) throw new IllegalStateException("1+1 gave " + e);
                    if (!warm) add("cell_1plus1", t, ms);
                });
            }
        }
    }

    void pandasCells(Map<String, Sandbox> box) throws IOException {
        int count = count("pandas");
        log("new context + first pandas describe() cell, " + count + " per tier (+1 warm-up), bare python beside it");
        for (int i = -1; i < count; i++) {
            final boolean warm = i < 0;
            attempt("pandas_first_cell", "host", () -> {
                HostTimer.Run h = host.run("/usr/bin/python3", "-c", PANDAS_CELL.replace("\npd.", "\nprint(pd.") + ")");
                if (h.rc != 0 || !h.out.contains("count")) throw new IllegalStateException("bare pandas failed: " + h.out);
                if (!warm) add("pandas_first_cell", "host", h.ms);
            });
            for (String t : order()) {
                attempt("pandas_first_cell", t, () -> {
                    Sandbox s = box.get(t);
                    long t0 = System.nanoTime();
                    CodeContext ctx = s.createCodeContext();
                    double c = since(t0);
                    Execution e = s.runCode(PANDAS_CELL, RunCodeOptions.builder().context(ctx).timeout(Duration.ofSeconds(170)).build());
                    double total = since(t0);
                    boolean html = e.results().stream().anyMatch(r -> r.html() != null && r.html().contains("<table"));
                    s.removeCodeContext(ctx);
                    if (e.error() != null || !html) throw new IllegalStateException("the pandas cell gave " + e);
                    if (warm) return;
                    add("pandas_first_cell", t, total);
                    add("pandas_new_context", t, c);
                    add("pandas_cell", t, total - c);
                });
            }
        }
    }

    void workload(Map<String, Sandbox> box, String w) throws IOException {
        int count = count("work");
        log(w + " workload, " + count + " per tier (+1 warm-up), bare on the host beside it");
        for (int i = -1; i < count; i++) {
            List<String> who = new ArrayList<>(order());
            who.add(Math.floorMod(i, who.size() + 1), "host");
            final boolean warm = i < 0;
            for (String t : who) attempt(w + "_e2e", t, () -> {
                double e2e;
                String stdout;
                if (t.equals("host")) {
                    HostTimer.Run r = w.equals("cpu")
                            ? host.run("/usr/bin/python3", workloadPy.toString(), "cpu")
                            : host.run("/usr/bin/python3", workloadPy.toString(), "sys", hostDir.resolve("sys").toString());
                    if (r.rc != 0) throw new IllegalStateException("bare " + w + " workload failed: " + r.out);
                    e2e = r.ms;
                    stdout = r.out;
                } else {
                    String cmd = "/usr/bin/python3 " + SANDBOX_WORKLOAD + (w.equals("cpu") ? " cpu" : " sys /tmp/sys");
                    long t0 = System.nanoTime();
                    CommandResult r = box.get(t).commands().run(cmd, dev.stockade.sdk.RunOptions.builder().timeout(Duration.ofSeconds(170)).build());
                    e2e = since(t0);
                    if (r.exitCode() != 0) throw new IllegalStateException(w + " workload failed: " + r);
                    stdout = r.stdout();
                }
                JsonNode j = JSON.readTree(stdout.strip());
                if (!j.has("ms") || !j.has("check")) throw new IllegalStateException(w + " workload said " + stdout);
                if (warm) return;
                add(w + "_e2e", t, e2e);
                add(w + "_self", t, j.get("ms").asDouble());
            });
        }
    }

    /**
     * Process creation timed inside each sandbox (and bare): {@code spawn} runs of
     * {@code bash -l -c "echo hi"} (what every SDK command is), {@code bash -c "echo hi"} and /bin/true, from one Python
     * loop, so neither HTTP nor the agent is in the figure.
     */
    void spawns(Map<String, Sandbox> box) {
        int count = count("spawn");
        log("process starts timed inside, " + count + " per side");
        List<String> who = new ArrayList<>(order());
        who.add(0, "host");
        for (String t : who) attempt("spawn_bash_l_echo", t, () -> {
            String stdout;
            if (t.equals("host")) {
                HostTimer.Run r = host.run("/usr/bin/python3", workloadPy.toString(), "spawn", String.valueOf(count));
                if (r.rc != 0) throw new IllegalStateException("bare spawn loop failed: " + r.out);
                stdout = r.out;
            } else {
                CommandResult r = box.get(t).commands().run("/usr/bin/python3 " + SANDBOX_WORKLOAD + " spawn " + count,
                        dev.stockade.sdk.RunOptions.builder().timeout(Duration.ofSeconds(170)).build());
                if (r.exitCode() != 0) throw new IllegalStateException("spawn loop failed: " + r);
                stdout = r.stdout();
            }
            JsonNode ms = JSON.readTree(stdout.strip()).path("ms");
            // The host's bash -l reads root's login profile on this machine (not the sandbox template's): not a baseline.
            if (!t.equals("host")) for (JsonNode x : ms.path("bash_l_echo")) add("spawn_bash_l_echo", t, x.asDouble());
            for (JsonNode x : ms.path("bash_c_echo")) add("spawn_bash_c_echo", t, x.asDouble());
            for (JsonNode x : ms.path("true")) add("spawn_true", t, x.asDouble());
        });
    }

    void pauseResume(Map<String, Sandbox> box) throws Exception {
        int count = count("pause");
        List<String> can = tiers.stream().filter(t -> capabilities.get(t).contains("pause")).toList();
        out.putPOJO("pause_tiers", can);
        if (can.isEmpty() || count == 0) return;
        log("pause + resume, " + count + " per tier that lists pause: " + can);
        for (int i = -2; i < count; i++) {
            final boolean warm = i < 0;
            for (String t : order()) {
                if (!can.contains(t)) continue;
                attempt("pause", t, () -> {
                    String id = box.get(t).id();
                    long t0 = System.nanoTime();
                    api("POST", "/sandboxes/" + id + "/pause");
                    double p = since(t0);
                    t0 = System.nanoTime();
                    api("POST", "/v2/sandboxes/" + id + "/connect");
                    double r = since(t0);
                    checkEcho(box.get(t).commands().run("echo hi"));
                    if (warm) return;
                    add("pause", t, p);
                    add("resume", t, r);
                });
            }
        }
    }

    /**
     * Idle memory: per tier, {@code mem} sandboxes started and left idle for 5 s, then each one's
     * memory cgroup read (usage_in_bytes, total_rss, total_cache from memory.stat) and the drop of
     * the host's MemAvailable since before the first of them; plus the CPU the idle sandboxes use
     * (cpuacct.usage over 5 s). One tier at a time, the other tier's sandboxes gone.
     */
    void idleMemory() throws Exception {
        int count = count("mem");
        ObjectNode mem = out.putObject("idle_memory");
        for (String t : tiers) {
            log("idle memory: " + count + " idle " + t + " sandboxes");
            List<Sandbox> made = new ArrayList<>();
            ObjectNode m = mem.putObject(t);
            try {
                Thread.sleep(2000);
                long before = memAvailable();
                for (int i = 0; i < count; i++) made.add(create(t, Duration.ofMinutes(10)));
                Thread.sleep(5000);
                ArrayNode per = m.putArray("sandboxes");
                Map<String, Long> cpu0 = new HashMap<>();
                for (Sandbox s : made) cpu0.put(s.id(), cpuUsage(s.id()));
                long w0 = System.nanoTime();
                Thread.sleep(5000);
                double wall = since(w0);
                long after = memAvailable();
                double usage = 0, rss = 0, cache = 0, cpu = 0;
                int found = 0;
                for (Sandbox s : made) {
                    ObjectNode e = per.addObject();
                    e.put("id", s.id());
                    Path cg = cgroup("memory", s.id());
                    long c1 = cpuUsage(s.id());
                    if (c1 >= 0 && cpu0.get(s.id()) >= 0) {
                        e.put("idle_cpu_ms_per_s", (c1 - cpu0.get(s.id())) / 1e6 / (wall / 1000));
                        cpu += (c1 - cpu0.get(s.id())) / 1e6 / (wall / 1000);
                    }
                    if (cg == null) continue;
                    found++;
                    e.put("cgroup", cg.toString());
                    List<String> comms = new ArrayList<>();
                    for (String pid : Files.readAllLines(cg.resolve("cgroup.procs"))) {
                        try {
                            // argv[0]: runsc re-executes itself, so its processes' comm is "exe"
                            String argv0 = Files.readString(Path.of("/proc", pid.strip(), "cmdline")).split("\0", 2)[0];
                            comms.add(argv0.isEmpty() ? Files.readString(Path.of("/proc", pid.strip(), "comm")).strip()
                                    : Path.of(argv0).getFileName().toString());
                        } catch (IOException gone) {
                            // exited meanwhile
                        }
                    }
                    e.putPOJO("processes", comms);
                    long u = Long.parseLong(Files.readString(cg.resolve("memory.usage_in_bytes")).strip());
                    Map<String, Long> st = memStat(cg);
                    e.put("usage_bytes", u);
                    e.put("total_rss", st.getOrDefault("total_rss", -1L));
                    e.put("total_cache", st.getOrDefault("total_cache", -1L));
                    e.put("total_shmem", st.getOrDefault("total_shmem", -1L));
                    usage += u;
                    rss += st.getOrDefault("total_rss", 0L);
                    cache += st.getOrDefault("total_cache", 0L);
                }
                m.put("sandboxes_started", made.size());
                m.put("cgroups_found", found);
                if (found > 0) {
                    m.put("cgroup_usage_mib_per_sandbox", usage / found / 1048576.0);
                    m.put("cgroup_rss_mib_per_sandbox", rss / found / 1048576.0);
                    m.put("cgroup_cache_mib_per_sandbox", cache / found / 1048576.0);
                } else {
                    error(t + ": no memory cgroup found for its sandboxes (looked for a directory named after the id under /sys/fs/cgroup/memory)");
                }
                m.put("memavailable_drop_mib_per_sandbox", (before - after) / 1024.0 / made.size());
                m.put("idle_cpu_ms_per_s_total", cpu);
            } finally {
                made.forEach(TierBench::quietKill);
            }
        }
    }

    static long memAvailable() throws IOException {
        for (String l : Files.readAllLines(Path.of("/proc/meminfo"))) {
            if (l.startsWith("MemAvailable:")) return Long.parseLong(l.replaceAll("\\D", ""));
        }
        throw new IOException("no MemAvailable in /proc/meminfo");
    }

    static Map<String, Long> memStat(Path cg) throws IOException {
        Map<String, Long> m = new HashMap<>();
        for (String l : Files.readAllLines(cg.resolve("memory.stat"))) {
            String[] p = l.split(" ");
            if (p.length == 2) m.put(p[0], Long.parseLong(p[1]));
        }
        return m;
    }

    /** cpuacct.usage (ns) of the sandbox's cgroup, or -1 when there is none. */
    static long cpuUsage(String id) throws IOException {
        for (String c : List.of("cpuacct", "cpu,cpuacct")) {
            Path cg = cgroup(c, id);
            if (cg != null && Files.exists(cg.resolve("cpuacct.usage"))) return Long.parseLong(Files.readString(cg.resolve("cpuacct.usage")).strip());
        }
        return -1;
    }

    /**
     * The cgroup v1 directory of a sandbox under one controller: {@code stockade-ID} at the top (runc's,
     * and runsc's when it follows the same cgroupsPath), else the first directory up to three levels
     * down whose name contains the id (sandbox ids are random, so a match is this sandbox's).
     */
    static Path cgroup(String controller, String id) throws IOException {
        Path root = Path.of("/sys/fs/cgroup", controller);
        Path direct = root.resolve("stockade-" + id);
        if (Files.isDirectory(direct)) return direct;
        if (!Files.isDirectory(root)) return null;
        try (Stream<Path> s = Files.find(root, 3, (p, a) -> a.isDirectory() && p.getFileName() != null && p.getFileName().toString().contains(id))) {
            return s.findFirst().orElse(null);
        }
    }

    // ---- phase: warm pools -------------------------------------------------------------------------

    /** GET /runtimes' poolReady per tier. */
    Map<String, Integer> poolReady() throws Exception {
        Map<String, Integer> m = new HashMap<>();
        for (JsonNode r : api("GET", "/runtimes")) m.put(r.path("name").asText(), r.path("poolReady").asInt(0));
        return m;
    }

    /** Waits (at most 300 s) until every tier's pool holds `want` ready sandboxes; returns the wait in ms. */
    double waitPools(int want) throws Exception {
        long t0 = System.nanoTime();
        while (true) {
            Map<String, Integer> ready = poolReady();
            if (tiers.stream().allMatch(t -> ready.getOrDefault(t, 0) >= want)) return since(t0);
            if (since(t0) > 300_000) throw new IllegalStateException("the pools did not reach " + want + " ready sandboxes in 300 s: " + ready);
            Thread.sleep(25);
        }
    }

    /**
     * Whether the sandbox was handed over from the pool: its state directory
     * (DATA/runtime/TIER/sandboxes/ID, DATA from TIERS_DATA) was born before the create was sent.
     * Null when that cannot be told (no TIERS_DATA, no such directory, no birth time).
     */
    static Boolean servedFromPool(String tier, String id, long createSentMillis) {
        String data = System.getenv("TIERS_DATA");
        if (data == null) return null;
        Path dir = Path.of(data, "runtime", tier, "sandboxes", id);
        try {
            var a = Files.readAttributes(dir, java.nio.file.attribute.BasicFileAttributes.class);
            if (a.creationTime().equals(a.lastModifiedTime()) && a.creationTime().toMillis() == 0) return null;
            return a.creationTime().toMillis() < createSentMillis;
        } catch (IOException e) {
            return null;
        }
    }

    void poolPhase() throws Exception {
        int count = count("poolcreate"), pool = count("pool");
        log("waiting for the pools (" + pool + " per tier)");
        double first = waitPools(pool);
        out.put("pool_first_fill_ms", first);
        log("pools full after " + Math.round(first) + " ms; create -> first echo, " + count + " per tier (+2 warm-up)");
        for (int i = -2; i < count; i++) {
            for (String t : order()) {
                double wait = waitPools(pool);
                int readyBefore = poolReady().getOrDefault(t, 0);
                Sandbox s = null;
                try {
                    long wall0 = System.currentTimeMillis();
                    long t0 = System.nanoTime();
                    s = create(t, Duration.ofMinutes(5));
                    double c = since(t0);
                    CommandResult r = s.commands().run("echo hi");
                    double total = since(t0);
                    checkEcho(r);
                    if (i < 0) continue;
                    add("pool_create_first_echo", t, total);
                    add("pool_create", t, c);
                    add("pool_first_echo", t, total - c);
                    add("pool_wait_before", t, wait);
                    add("pool_ready_before", t, readyBefore);
                    Boolean served = servedFromPool(t, s.id(), wall0);
                    if (served != null) add("pool_served", t, served ? 1 : 0);
                } catch (RuntimeException e) {
                    error(t + ": pooled create " + i + ": " + e.getMessage());
                } finally {
                    quietKill(s);
                }
            }
            if ((i + 1) % 10 == 0 && i > 0) log("  " + (i + 1) + "/" + count);
        }
    }

    // ---- the host timer ----------------------------------------------------------------------------

    /** tier_workload.py timer: runs host commands on request, so bare baselines share the rounds. */
    static final class HostTimer implements AutoCloseable {
        record Run(double ms, int rc, String out) {}

        private final Process p;
        private final BufferedWriter in;
        private final BufferedReader outR;

        HostTimer(Path workloadPy) throws IOException {
            p = new ProcessBuilder("/usr/bin/python3", workloadPy.toString(), "timer").redirectError(ProcessBuilder.Redirect.INHERIT).start();
            in = new BufferedWriter(new OutputStreamWriter(p.getOutputStream(), StandardCharsets.UTF_8));
            outR = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
        }

        Run run(String... argv) throws IOException {
            in.write(JSON.writeValueAsString(argv));
            in.write('\n');
            in.flush();
            String line = outR.readLine();
            if (line == null) throw new IOException("the host timer exited");
            JsonNode j = JSON.readTree(line);
            return new Run(j.get("ms").asDouble(), j.get("rc").asInt(), j.get("out").asText());
        }

        @Override
        public void close() throws IOException {
            in.close();
            try {
                if (!p.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)) p.destroyForcibly();
            } catch (InterruptedException e) {
                p.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }
}
