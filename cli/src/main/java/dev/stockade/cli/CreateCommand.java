package dev.stockade.cli;

import dev.stockade.sdk.CreateOptions;
import dev.stockade.sdk.Limits;
import dev.stockade.sdk.Sandbox;
import java.time.Duration;
import java.util.Map;
import java.util.Set;

/** {@code stockade create}: a sandbox for scripting; prints its id. */
final class CreateCommand implements Subcommand {

    @Override
    public String name() {
        return "create";
    }

    @Override
    public String summary() {
        return "create a sandbox and print its id";
    }

    @Override
    public String usage() {
        return """
                Usage: stockade create [OPTIONS]

                Creates a sandbox and prints its id, for scripts:
                  id=$(stockade create --timeout 600) && stockade exec "$id" -- python3 -V && stockade kill "$id"

                Options:
                """ + CONNECTION_HELP + """
                  --timeout SECONDS the sandbox's lifetime (default: the server's, 300 s)
                  --template NAME   template (default: base)
                  --runtime NAME    runc or runsc (default: the server's)
                  --memory MB       memory limit
                  --cpus N          CPU limit, in cores (may be fractional)
                  --env KEY=VALUE   environment variable for every command (repeatable)
                  --metadata K=V    metadata stored with the sandbox (repeatable)
                """;
    }

    @Override
    public Args.Spec spec() {
        return new Args.Spec(name(), Subcommand.with(CLIENT_OPTIONS, "timeout", "template", "runtime", "memory", "cpus",
                "env", "metadata"), Set.of("env", "metadata"), Set.of(), Map.of(), -1);
    }

    @Override
    public int run(Args args, Io io) throws Exception {
        if (!args.positionals().isEmpty()) throw new UsageException(name(), "unexpected argument '" + args.positionals().getFirst() + "'");
        CreateOptions.Builder b = CreateOptions.builder()
                .envs(args.pairs(name(), "env"))
                .metadata(args.pairs(name(), "metadata"));
        int timeout = args.intValue(name(), "timeout", 0, 1, Integer.MAX_VALUE);
        if (timeout > 0) b.timeout(Duration.ofSeconds(timeout));
        if (args.value("template") != null) b.template(args.value("template"));
        if (args.value("runtime") != null) b.runtime(args.value("runtime"));
        Limits.Builder limits = Limits.builder();
        boolean anyLimit = false;
        if (args.value("memory") != null) {
            limits.memoryMB(args.intValue(name(), "memory", 0, 1, Integer.MAX_VALUE));
            anyLimit = true;
        }
        if (args.value("cpus") != null) {
            try {
                double cpus = Double.parseDouble(args.value("cpus"));
                if (!(cpus > 0) || Double.isInfinite(cpus)) throw new NumberFormatException();
                limits.cpus(cpus);
                anyLimit = true;
            } catch (NumberFormatException e) {
                throw new UsageException(name(), "--cpus must be a positive number, got '" + args.value("cpus") + "'");
            }
        }
        if (anyLimit) b.limits(limits.build());
        try (Target target = Target.resolve(name(), args, io, false)) {
            Sandbox sandbox = target.client().create(b.build());
            io.out().println(sandbox.id());
        }
        return 0;
    }
}
