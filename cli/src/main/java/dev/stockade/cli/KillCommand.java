package dev.stockade.cli;

import java.util.Map;
import java.util.Set;

/** {@code stockade kill ID...}: ends sandboxes and everything in them. */
final class KillCommand implements Subcommand {

    @Override
    public String name() {
        return "kill";
    }

    @Override
    public String summary() {
        return "kill sandboxes";
    }

    @Override
    public String usage() {
        return """
                Usage: stockade kill SANDBOX_ID...

                Kills each sandbox and every process in it, printing the ids it killed. Exits 1 when
                one of them did not exist.

                Options:
                """ + CONNECTION_HELP;
    }

    @Override
    public Args.Spec spec() {
        return new Args.Spec(name(), CLIENT_OPTIONS, Set.of(), Set.of(), Map.of(), -1);
    }

    @Override
    public int run(Args args, Io io) throws Exception {
        if (args.positionals().isEmpty()) throw new UsageException(name(), "which sandbox? Usage: stockade kill SANDBOX_ID...");
        int code = 0;
        try (Target target = Target.resolve(name(), args, io, false)) {
            for (String id : args.positionals()) {
                if (target.client().kill(id)) {
                    io.out().println(id);
                } else {
                    io.err().println("stockade kill: no sandbox " + id);
                    code = 1;
                }
            }
        }
        return code;
    }
}
