package dev.stockade.cli;

import dev.stockade.sdk.StockadeException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.List;

/**
 * The {@code stockade} command line (run through the {@code ./stockade} launcher). Parses the
 * subcommand, runs it, and turns failures into exit codes: 0 success, 1 a failure reported by the
 * server or the host, 2 a usage error, otherwise the exit code of the command run in the sandbox.
 * Runs on the main thread; subcommands start what threads they need.
 */
public final class Main {
    static final String VERSION = "0.1.0";
    static final List<Subcommand> COMMANDS = List.of(
            new ServeCommand(), new RunCommand(), new ReplCommand(), new ExecCommand(), new CreateCommand(), new LsCommand(),
            new KillCommand(), new CpCommand(), new KeysCommand(), new TenantsCommand());

    private Main() {}

    public static void main(String[] argv) {
        int code = run(argv, Io.system());
        System.exit(code);
    }

    static int run(String[] argv, Io io) {
        List<String> given = Arrays.asList(argv);
        // `stockade help run` is `stockade run --help`
        List<String> args = given.size() == 2 && given.getFirst().equals("help") ? List.of(given.get(1), "--help") : given;
        if (args.isEmpty() || args.getFirst().equals("--help") || args.getFirst().equals("-h")
                || args.getFirst().equals("help") && args.size() == 1) {
            io.out().print(topUsage());
            return args.isEmpty() ? 2 : 0;
        }
        if (args.getFirst().equals("--version")) {
            io.out().println("stockade " + VERSION);
            return 0;
        }
        Subcommand cmd = COMMANDS.stream().filter(c -> c.name().equals(args.getFirst())).findFirst().orElse(null);
        if (cmd == null) {
            io.err().println("stockade: unknown command '" + args.getFirst() + "'");
            io.err().println("Run 'stockade --help' for the list of commands.");
            return 2;
        }
        try {
            Args parsed = Args.parse(args.subList(1, args.size()), cmd.spec());
            if (parsed.flag("help")) {
                io.out().print(cmd.usage());
                return 0;
            }
            return cmd.run(parsed, io);
        } catch (UsageException e) {
            io.err().println("stockade " + cmd.name() + ": " + e.getMessage());
            io.err().println("Run 'stockade " + cmd.name() + " --help' for usage.");
            return 2;
        } catch (StockadeException e) {
            io.err().println("stockade " + cmd.name() + ": " + e.getMessage());
            return 1;
        } catch (IOException | UncheckedIOException e) {
            io.err().println("stockade " + cmd.name() + ": " + e.getMessage());
            return 1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            io.err().println("stockade " + cmd.name() + ": interrupted");
            return 130;
        } catch (Exception e) {
            // e.g. the server refusing to start: its message says what to check
            io.err().println("stockade " + cmd.name() + ": " + (e.getMessage() == null ? e.toString() : e.getMessage()));
            return 1;
        }
    }

    static String topUsage() {
        StringBuilder sb = new StringBuilder("""
                Usage: stockade COMMAND [OPTIONS]

                Isolated Python sandboxes on this machine, E2B-compatible.

                Commands:
                """);
        for (Subcommand c : COMMANDS) sb.append(String.format("  %-8s %s%n", c.name(), c.summary()));
        sb.append("""

                Run 'stockade COMMAND --help' for a command's options. Exit codes: 0 success, 1 failure,
                2 usage error; run and exec pass the sandboxed command's own exit code through.
                """);
        return sb.toString();
    }
}
