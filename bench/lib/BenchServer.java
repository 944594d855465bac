// Server launcher for the benchmark: the fallback while ./stockade is missing, and the density
// bench's server (bench/run.sh), which needs a higher sandbox cap than `serve` offers (the cap,
// ServerConfig.maxSandboxes, 200 by default, has no CLI flag). Starts the real server
// (StockadeServer, embedded defaults: runc, host-Python template, no pool) on a port with a given
// key and data dir, prints "READY <url>", and ends every sandbox when it gets SIGTERM.
//   java ... BenchServer.java DATA_DIR PORT KEY [MAX_SANDBOXES]
// Run with the single-file source launcher against private copies of the module jars.
import dev.stockade.server.StockadeServer;
import dev.stockade.server.config.ServerConfig;
import java.lang.reflect.RecordComponent;
import java.nio.file.Path;

public class BenchServer {
    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args[0]);
        int port = Integer.parseInt(args[1]);
        String key = args[2];
        ServerConfig config = ServerConfig.defaults(dir).withPort(port).withApiKey(key);
        if (args.length > 3) config = withMaxSandboxes(config, Integer.parseInt(args[3]));
        StockadeServer s = StockadeServer.start(config);
        Runtime.getRuntime().addShutdownHook(new Thread(s::close));
        System.out.println("READY " + s.url() + " maxSandboxes=" + config.maxSandboxes());
        System.out.flush();
        s.awaitClose();
    }

    /** The same record with another maxSandboxes, whatever other components it has gained. */
    private static ServerConfig withMaxSandboxes(ServerConfig c, int n) throws Exception {
        RecordComponent[] comps = ServerConfig.class.getRecordComponents();
        Object[] values = new Object[comps.length];
        Class<?>[] types = new Class<?>[comps.length];
        for (int i = 0; i < comps.length; i++) {
            types[i] = comps[i].getType();
            values[i] = comps[i].getName().equals("maxSandboxes") ? n : comps[i].getAccessor().invoke(c);
        }
        return ServerConfig.class.getDeclaredConstructor(types).newInstance(values);
    }
}
