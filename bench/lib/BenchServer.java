// Fallback server launcher for the benchmark, used only while ./stockade is missing: starts the
// real server (StockadeServer, embedded defaults) on a port with a given key and data dir, prints
// "READY <url>", and ends every sandbox when it gets SIGTERM. Run with the single-file source
// launcher against the installed module jars (see bench/run.sh).
import dev.stockade.server.StockadeServer;
import dev.stockade.server.config.ServerConfig;
import java.nio.file.Path;

public class BenchServer {
    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        int port = Integer.parseInt(args[1]);
        String key = args[2];
        StockadeServer s = StockadeServer.start(ServerConfig.defaults(dir).withPort(port).withApiKey(key));
        Runtime.getRuntime().addShutdownHook(new Thread(s::close));
        System.out.println("READY " + s.url());
        System.out.flush();
        s.awaitClose();
    }
}
