// Stockade benchmark, issue 5: create → first `echo` through Stockade's Java SDK (dev.stockade.sdk),
// sequential or concurrent, against a server with or without a warm pool. Single-file program run
// by bench/run.sh against the sdk jar:
//   java -cp SDK_JAR:JACKSON... SdkCreateBench.java seq|conc N BURSTS POOL SANDBOXES_DIR OUT.json
// Reads STOCKADE_URL and STOCKADE_API_KEY. seq: N creates one after the other, no sleeping (the pool
// refills only as it does in real use). conc: BURSTS bursts of N creates started together on N
// threads (one shared client, which is thread-safe); with a pool (POOL > 0), each burst first waits
// until the pool holds POOL ready sandboxes (the server's metric; else agent sockets under SANDBOXES_DIR). Each sandbox is
// killed after its sample, outside the timed region. Writes raw samples in milliseconds.
import dev.stockade.sdk.CommandResult;
import dev.stockade.sdk.Sandbox;
import dev.stockade.sdk.StockadeClient;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import java.util.stream.Stream;

public class SdkCreateBench {
    record Sample(Sandbox sandbox, double total, double create, double echo) {}

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        int n = Integer.parseInt(args[1]);
        int bursts = Integer.parseInt(args[2]);
        int pool = Integer.parseInt(args[3]);
        Path sandboxes = Path.of(args[4]);
        Path out = Path.of(args[5]);
        List<Double> total = new ArrayList<>(), create = new ArrayList<>(), echo = new ArrayList<>();
        List<Double> poolWait = new ArrayList<>(), burstWall = new ArrayList<>();
        try (StockadeClient client = StockadeClient.builder().build()) {
            for (int i = 0; i < 3; i++) once(client).sandbox().kill(); // warm-up: JIT, connections
            if (pool > 0) waitReady(sandboxes, pool);
            if (mode.equals("seq")) {
                for (int i = 0; i < n; i++) {
                    Sample s = once(client);
                    s.sandbox().kill();
                    total.add(s.total());
                    create.add(s.create());
                    echo.add(s.echo());
                }
            } else if (mode.equals("conc")) {
                try (ExecutorService ex = Executors.newFixedThreadPool(n)) {
                    for (int b = 0; b < bursts; b++) {
                        if (pool > 0) poolWait.add(waitReady(sandboxes, pool));
                        CountDownLatch go = new CountDownLatch(1);
                        List<Future<Sample>> fs = new ArrayList<>();
                        for (int i = 0; i < n; i++) fs.add(ex.submit(() -> { go.await(); return once(client); }));
                        long t0 = System.nanoTime();
                        go.countDown();
                        List<Sample> got = new ArrayList<>();
                        Exception failed = null;
                        for (Future<Sample> f : fs) {
                            try { got.add(f.get()); } catch (Exception e) { failed = e; }
                        }
                        burstWall.add((System.nanoTime() - t0) / 1e6);
                        for (Sample s : got) s.sandbox().kill();
                        if (failed != null) throw new IllegalStateException((n - got.size()) + " of " + n + " concurrent creates failed", failed);
                        for (Sample s : got) { total.add(s.total()); create.add(s.create()); echo.add(s.echo()); }
                        System.err.printf("[SdkCreateBench conc] burst %d/%d of %d: %.2f s%n", b + 1, bursts, n, burstWall.getLast() / 1000);
                    }
                }
            } else {
                throw new IllegalArgumentException("mode must be seq or conc, got " + mode);
            }
        }
        Files.writeString(out, "{\"total\":" + json(total) + ",\"create\":" + json(create) + ",\"echo\":" + json(echo)
                + ",\"pool_wait_ms\":" + json(poolWait) + ",\"burst_wall_ms\":" + json(burstWall) + "}");
    }

    static Sample once(StockadeClient client) {
        long t0 = System.nanoTime();
        Sandbox s = client.create();
        long t1 = System.nanoTime();
        CommandResult r = s.commands().run("echo hi");
        long t2 = System.nanoTime();
        if (!"hi\n".equals(r.stdout())) {
            s.kill();
            throw new IllegalStateException("unexpected echo output: " + r);
        }
        return new Sample(s, (t2 - t0) / 1e6, (t1 - t0) / 1e6, (t2 - t1) / 1e6);
    }

    /**
     * Waits (at most 5 minutes) until the pool holds `want` ready sandboxes, preload done: the
     * server's metric stockade_pool_ready (GET /metrics), or, when the server has none, agent
     * sockets under SANDBOXES_DIR. Returns the wait in ms.
     */
    static double waitReady(Path sandboxes, int want) throws IOException, InterruptedException {
        long t0 = System.nanoTime();
        while (true) {
            long ready = poolReady();
            if (ready < 0) {
                try (Stream<Path> ids = Files.list(sandboxes)) {
                    ready = ids.filter(p -> Files.exists(p.resolve("disk/run/agent.sock"))).count();
                }
            }
            if (ready >= want) return (System.nanoTime() - t0) / 1e6;
            if (System.nanoTime() - t0 > 300_000_000_000L) throw new IllegalStateException("the pool did not reach " + want + " ready sandboxes in 300 s");
            Thread.sleep(50);
        }
    }

    private static final HttpClient HTTP = HttpClient.newHttpClient();

    /** stockade_pool_ready from GET /metrics, or -1 when the server does not report it. */
    static long poolReady() throws InterruptedException {
        try {
            HttpRequest req = HttpRequest.newBuilder(URI.create(System.getenv("STOCKADE_URL") + "/metrics"))
                    .header("X-API-Key", System.getenv("STOCKADE_API_KEY")).timeout(Duration.ofSeconds(10)).build();
            Matcher m = Pattern.compile("(?m)^stockade_pool_ready (\\d+)").matcher(HTTP.send(req, HttpResponse.BodyHandlers.ofString()).body());
            return m.find() ? Long.parseLong(m.group(1)) : -1;
        } catch (IOException e) {
            return -1;
        }
    }

    static String json(List<Double> xs) {
        return xs.stream().map(d -> String.format(java.util.Locale.ROOT, "%.4f", d)).collect(Collectors.joining(",", "[", "]"));
    }
}
