// Stockade benchmark, part 3 (optional): the same create-to-first-echo and echo through Stockade's
// own Java SDK (dev.stockade.sdk). Single-file program run by bench/run.sh against the sdk jar:
//   java -cp SDK_JAR:JACKSON... SdkBench.java N_CREATE N_ECHO OUT.json
// Reads STOCKADE_URL and STOCKADE_API_KEY. Kills each sandbox outside the timed region. Writes raw
// samples in milliseconds.
import dev.stockade.sdk.CommandResult;
import dev.stockade.sdk.Sandbox;
import dev.stockade.sdk.StockadeClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Collectors;

public class SdkBench {
    public static void main(String[] args) throws Exception {
        int nCreate = Integer.parseInt(args[0]);
        int nEcho = Integer.parseInt(args[1]);
        Path out = Path.of(args[2]);
        List<Double> total = new ArrayList<>();
        List<Double> echo = new ArrayList<>();
        try (StockadeClient client = StockadeClient.builder().build()) {
            for (int i = 0; i < 3; i++) { // warm-up (JIT, connection pool), not counted
                try (Sandbox s = client.create()) {
                    s.commands().run("echo hi");
                }
            }
            for (int i = 0; i < nCreate; i++) {
                long t0 = System.nanoTime();
                Sandbox s = client.create();
                CommandResult r = s.commands().run("echo hi");
                long t1 = System.nanoTime();
                total.add((t1 - t0) / 1e6);
                if (!"hi\n".equals(r.stdout())) throw new IllegalStateException("unexpected echo output: " + r);
                s.kill();
            }
            try (Sandbox s = client.create()) {
                for (int i = 0; i < 10; i++) s.commands().run("echo hi");
                for (int i = 0; i < nEcho; i++) {
                    long t0 = System.nanoTime();
                    CommandResult r = s.commands().run("echo hi");
                    echo.add((System.nanoTime() - t0) / 1e6);
                    if (!"hi\n".equals(r.stdout())) throw new IllegalStateException("unexpected echo output: " + r);
                }
            }
        }
        Files.writeString(out, "{\"create_to_first_echo\":" + json(total) + ",\"echo\":" + json(echo) + "}");
    }

    private static String json(List<Double> xs) {
        return xs.stream().map(d -> String.format(java.util.Locale.ROOT, "%.4f", d)).collect(Collectors.joining(",", "[", "]"));
    }
}
