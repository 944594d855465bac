package dev.stockade.cli;

import dev.stockade.sdk.RunOptions;
import dev.stockade.sdk.Sandbox;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** {@code stockade exec ID -- cmd args...}: one command in an existing sandbox, exit code passed through. */
final class ExecCommand implements Subcommand {

    @Override
    public String name() {
        return "exec";
    }

    @Override
    public String summary() {
        return "run a command in an existing sandbox";
    }

    @Override
    public String usage() {
        return """
                Usage: stockade exec [OPTIONS] SANDBOX_ID -- COMMAND [ARGS...]

                Runs a command in the sandbox with `bash -l -c`, streams its output here and exits with
                its exit code. Several words are quoted one by one (`-- ls -la "my dir"`); a single word
                is taken as a shell line (`-- 'ls | wc -l'`).

                Options:
                """ + CONNECTION_HELP + """
                  --cwd DIR         working directory (default: /home/user)
                  --user NAME       user to run as: user (default) or root
                  --env KEY=VALUE   environment variable (repeatable)
                  --timeout SECONDS kill the command after this long (default: no limit beyond the sandbox's)
                  -i, --stdin       forward this terminal's standard input to the command
                """;
    }

    @Override
    public Args.Spec spec() {
        return new Args.Spec(name(), Subcommand.with(CLIENT_OPTIONS, "cwd", "user", "env", "timeout"), Set.of("env"),
                Set.of("stdin"), Map.of("i", "stdin"), 1);
    }

    /** The shell line for the words after {@code --}. */
    static String commandLine(List<String> words) {
        return words.size() == 1 ? words.getFirst() : Shell.join(words);
    }

    @Override
    public int run(Args args, Io io) throws Exception {
        List<String> pos = args.positionals();
        if (pos.isEmpty()) throw new UsageException(name(), "which sandbox? Usage: stockade exec SANDBOX_ID -- COMMAND");
        String id = pos.getFirst();
        List<String> words = pos.subList(1, pos.size());
        if (!words.isEmpty() && words.getFirst().equals("--")) words = words.subList(1, words.size());
        if (words.isEmpty() || words.getFirst().isBlank()) {
            throw new UsageException(name(), "which command? Usage: stockade exec " + id + " -- COMMAND [ARGS...]");
        }
        int timeout = args.intValue(name(), "timeout", 0, 0, Integer.MAX_VALUE);
        RunOptions.Builder options = RunOptions.builder()
                .cwd(args.value("cwd"))
                .user(args.value("user"))
                .envs(args.pairs(name(), "env"))
                .timeout(Duration.ofSeconds(timeout));
        try (Target target = Target.resolve(name(), args, io, false)) {
            Sandbox sandbox = target.client().connect(id);
            return Streaming.run(sandbox, commandLine(words), options, args.flag("stdin"), io, name(), true);
        }
    }
}
