package dev.stockade.cli;

import dev.stockade.sdk.CreateOptions;
import dev.stockade.sdk.Execution;
import dev.stockade.sdk.Limits;
import dev.stockade.sdk.RunOptions;
import dev.stockade.sdk.Sandbox;
import dev.stockade.sdk.StockadeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code stockade run script.py [args]}: a fresh sandbox, the script uploaded to /home/user, run
 * with python3, output streamed, exit code passed through, the sandbox killed afterwards — on
 * Ctrl-C too (from a shutdown hook). While the script runs, a virtual thread keeps extending the
 * sandbox's lifetime, so a long script is limited only by the command's own time limit.
 * {@code stockade run --cells notebook.py} runs the file's {@code # %%} cells one after the other
 * in one interpreter context instead, like a notebook.
 */
final class RunCommand implements Subcommand {
    static final String HOME = "/home/user";
    private static final Duration LEASE = Duration.ofMinutes(5);
    private static final Duration RENEW_EVERY = Duration.ofMinutes(1);

    @Override
    public String name() {
        return "run";
    }

    @Override
    public String summary() {
        return "run a Python script in a fresh sandbox";
    }

    @Override
    public String usage() {
        return """
                Usage: stockade run [OPTIONS] SCRIPT.py [ARGS...]
                       stockade run [OPTIONS] --cells NOTEBOOK.py

                Creates a fresh sandbox, uploads SCRIPT.py to /home/user, runs `python3 SCRIPT.py ARGS`
                there with its output streamed here, exits with the script's exit code, and kills the
                sandbox (on Ctrl-C too). Everything after SCRIPT.py goes to the script.

                With --cells, NOTEBOOK.py is split into cells at lines starting with `# %%` (the
                percent format of Jupytext and VS Code; `# %% [markdown]` cells are skipped) and the
                cells run one after the other in one Python context of the code interpreter, so
                variables and imports carry over. Each cell's output is printed as it comes, then its
                results' text; PNG figures are saved in the current directory as NOTEBOOK-cellN.png
                (NOTEBOOK-cellN-2.png, ... for more), and the path printed. The first cell that raises
                stops the run: its traceback goes to stderr and the exit code is 1.

                With no server configured, starts one inside this command on a free loopback port
                (data under $STOCKADE_DATA_DIR or ~/.local/share/stockade).

                Options:
                """ + CONNECTION_HELP + """
                  --timeout SECONDS the script's wall-clock limit (default: the server's, 300 s)
                  --runtime NAME    runc or runsc (default: the server's)
                  --template NAME   sandbox template (default: base)
                  --env KEY=VALUE   environment variable for the script (repeatable)
                  -i, --stdin       forward this terminal's standard input to the script
                  --cells           run NOTEBOOK.py cell by cell in the code interpreter (see above);
                                    --timeout then limits each cell

                Exit codes: the script's own; 124 when its time limit ended it; 137 when it was killed;
                with --cells, 0 when every cell ran and 1 when one failed; 1 when the sandbox could not
                be run; 2 for a usage error.
                """;
    }

    @Override
    public Args.Spec spec() {
        return new Args.Spec(name(), Subcommand.with(CLIENT_OPTIONS, "timeout", "runtime", "template", "env"),
                Set.of("env"), Set.of("stdin", "cells"), Map.of("i", "stdin"), 1);
    }

    @Override
    public int run(Args args, Io io) throws Exception {
        int timeout = args.intValue(name(), "timeout", 0, 1, 86_400 * 30);
        Map<String, String> envs = args.pairs(name(), "env");
        if (args.positionals().isEmpty()) throw new UsageException(name(), "which script? Usage: stockade run SCRIPT.py [ARGS...]");
        Path script = Path.of(args.positionals().getFirst());
        List<String> scriptArgs = args.positionals().subList(1, args.positionals().size());
        if (!Files.isRegularFile(script)) throw new UsageException(name(), "no such file: " + script);
        if (!Files.isReadable(script)) throw new UsageException(name(), "cannot read " + script);
        boolean cells = args.flag("cells");
        List<String> notebook = null;
        if (cells) {
            if (!scriptArgs.isEmpty()) {
                throw new UsageException(name(), "--cells takes one notebook file and no arguments (got " + scriptArgs + ")");
            }
            if (args.flag("stdin")) throw new UsageException(name(), "--cells and --stdin do not go together");
            notebook = Cells.split(Files.readString(script));
            if (notebook.isEmpty()) throw new UsageException(name(), script + " has no code cells");
        }
        CreateOptions.Builder create = CreateOptions.builder().timeout(LEASE).metadata("stockade-cli", "run");
        if (args.value("template") != null) create.template(args.value("template"));
        if (args.value("runtime") != null) create.runtime(args.value("runtime"));
        if (timeout > 0) create.limits(Limits.builder().commandTimeoutSeconds(timeout).build());

        Target target = Target.resolve(name(), args, io, true);
        LeasedSandbox leased = LeasedSandbox.create(target, create.build(), name());
        try {
            Sandbox sandbox = leased.sandbox();
            if (cells) return runCells(sandbox, notebook, script, envs, io);
            String name = script.getFileName().toString();
            sandbox.files().write(HOME + "/" + name, script);
            List<String> argv = new ArrayList<>(List.of("python3", name));
            argv.addAll(scriptArgs);
            RunOptions.Builder options = RunOptions.builder()
                    .cwd(HOME)
                    .env("PYTHONUNBUFFERED", "1")
                    .envs(envs)
                    .timeout(Duration.ZERO);
            return Streaming.run(sandbox, Shell.join(argv), options, args.flag("stdin"), io, name(), false);
        } catch (StockadeException e) {
            // Ctrl-C: the shutdown hook killed the sandbox under the running command; nothing to report
            if (leased.cleanedUp()) return 130;
            throw e;
        } finally {
            leased.close();
        }
    }

    /** Runs the cells in order in the sandbox's default context; stops at the first that fails. */
    private int runCells(Sandbox sandbox, List<String> cells, Path notebook, Map<String, String> envs, Io io)
            throws java.io.IOException {
        String stem = notebook.getFileName().toString().replaceFirst("\\.[^.]*$", "");
        Path here = Path.of("").toAbsolutePath();
        for (int i = 0; i < cells.size(); i++) {
            // Duration.ZERO: each cell is limited by the sandbox's commandTimeoutSeconds (--timeout).
            Execution e = Cells.run(sandbox, cells.get(i), envs, Duration.ZERO, io, here, stem + "-cell" + (i + 1));
            if (Cells.failed(e)) {
                io.err().println("stockade run: cell " + (i + 1) + " of " + cells.size() + " failed"
                        + (e.outcome() == null ? "" : " (" + e.outcome().wireName() + ")"));
                return 1;
            }
        }
        return 0;
    }

    static void renew(Sandbox sandbox) {
        while (true) {
            try {
                Thread.sleep(RENEW_EVERY);
                sandbox.setTimeout(LEASE);
            } catch (InterruptedException e) {
                return;
            } catch (StockadeException e) {
                // transient, or the sandbox ended: the command's own result will say
            }
        }
    }
}
