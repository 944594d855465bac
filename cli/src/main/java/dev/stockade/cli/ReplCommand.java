package dev.stockade.cli;

import dev.stockade.sdk.CreateOptions;
import dev.stockade.sdk.Limits;
import dev.stockade.sdk.Sandbox;
import dev.stockade.sdk.StockadeException;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.Set;

/**
 * {@code stockade repl}: a Python prompt whose cells run in a fresh sandbox's code interpreter.
 * Lines are read as Python's own prompt reads them: a complete statement runs at once, a block
 * (a line ending in {@code :}, open brackets or strings, a trailing backslash) continues until it is
 * complete, blocks until an empty line. Ctrl-D (end of input), {@code exit()} or {@code quit()} end
 * it and kill the sandbox; so does Ctrl-C (from a shutdown hook). Prompts go to stderr, as
 * Python's do, so stdout carries only what the cells print and show.
 */
final class ReplCommand implements Subcommand {
    @Override
    public String name() {
        return "repl";
    }

    @Override
    public String summary() {
        return "a Python prompt in a fresh sandbox (the code interpreter)";
    }

    @Override
    public String usage() {
        return """
                Usage: stockade repl [OPTIONS]

                Creates a sandbox and gives a Python prompt whose every line (or block) is a cell of
                its code interpreter: variables and imports persist, the value of an expression is
                shown, print output streams, figures (matplotlib) are saved in the current directory
                as repl-N.png and the path printed, exceptions show their traceback. A block (`for`,
                `def`, ...) ends with an empty line, as in Python. Ctrl-D, exit() or quit() end the
                session and delete the sandbox; Ctrl-C too.

                With no server configured, starts one inside this command (as `run` does).

                Options:
                """ + CONNECTION_HELP + """
                  --timeout SECONDS each cell's wall-clock limit (default: the server's, 300 s)
                  --runtime NAME    runc or runsc (default: the server's)
                  --template NAME   sandbox template (default: code-interpreter-v1)
                  --env KEY=VALUE   environment variable for every cell (repeatable)
                """;
    }

    @Override
    public Args.Spec spec() {
        return new Args.Spec(name(), Subcommand.with(CLIENT_OPTIONS, "timeout", "runtime", "template", "env"),
                Set.of("env"), Set.of(), Map.of(), -1);
    }

    @Override
    public int run(Args args, Io io) throws Exception {
        int timeout = args.intValue(name(), "timeout", 0, 1, 86_400 * 30);
        Map<String, String> envs = args.pairs(name(), "env");
        if (!args.positionals().isEmpty()) throw new UsageException(name(), "repl takes no arguments, got " + args.positionals());
        CreateOptions.Builder create = CreateOptions.builder().timeout(Duration.ofMinutes(5)).metadata("stockade-cli", "repl")
                .template(args.value("template") != null ? args.value("template") : "code-interpreter-v1");
        if (args.value("runtime") != null) create.runtime(args.value("runtime"));
        if (timeout > 0) create.limits(Limits.builder().commandTimeoutSeconds(timeout).build());

        Target target = Target.resolve(name(), args, io, true);
        LeasedSandbox leased = LeasedSandbox.create(target, create.build(), name());
        try {
            Sandbox sandbox = leased.sandbox();
            io.err().println("Python in sandbox " + sandbox.id() + " (code interpreter). Ctrl-D to exit.");
            loop(sandbox, envs, io);
            return 0;
        } catch (StockadeException e) {
            if (leased.cleanedUp()) return 130;
            throw e;
        } finally {
            leased.close();
        }
    }

    private static void loop(Sandbox sandbox, Map<String, String> envs, Io io) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(io.in(), StandardCharsets.UTF_8));
        Path here = Path.of("").toAbsolutePath();
        int n = 0;
        while (true) {
            String cell = readCell(in, io);
            if (cell == null) {
                io.err().println();
                return;
            }
            String word = cell.strip();
            if (word.isEmpty()) continue;
            if (word.equals("exit()") || word.equals("quit()") || word.equals("exit") || word.equals("quit")) return;
            n++;
            try {
                Cells.run(sandbox, cell, envs, Duration.ZERO, io, here, "repl-" + n);
            } catch (dev.stockade.sdk.NotFoundException e) {
                throw e; // the sandbox is gone: nothing more to run
            } catch (StockadeException e) {
                io.err().println("stockade repl: " + e.getMessage());
            }
        }
    }

    /** One cell as Python's prompt would read it; null at end of input (with nothing pending). */
    static String readCell(BufferedReader in, Io io) throws java.io.IOException {
        StringBuilder cell = new StringBuilder();
        boolean block = false;
        while (true) {
            io.err().print(cell.isEmpty() ? ">>> " : "... ");
            io.err().flush();
            String line = in.readLine();
            if (line == null) return cell.isEmpty() ? null : cell.toString();
            if (cell.isEmpty() && line.isBlank()) return "";
            if (block && line.isBlank()) return cell.toString();
            cell.append(line).append('\n');
            if (block) continue;
            Completeness c = completeness(cell.toString());
            if (c == Completeness.BLOCK) {
                block = true;
            } else if (c == Completeness.COMPLETE) {
                return cell.toString();
            }
        }
    }

    enum Completeness { COMPLETE, OPEN, BLOCK }

    /**
     * Whether Python source typed so far is a complete statement, still open (brackets, a
     * triple-quoted string, a trailing backslash), or opens a block (its last logical line ends in
     * {@code :} or is a decorator) that an empty line ends.
     */
    static Completeness completeness(String src) {
        int depth = 0;
        String quote = null;
        boolean escaped = false;
        StringBuilder lastLine = new StringBuilder();
        String previous = "";
        for (int i = 0; i < src.length(); i++) {
            char ch = src.charAt(i);
            if (quote != null) {
                if (escaped) {
                    escaped = false;
                } else if (ch == '\\') {
                    escaped = true;
                } else if (src.startsWith(quote, i)) {
                    i += quote.length() - 1;
                    quote = null;
                } else if (ch == '\n' && quote.length() == 1) {
                    quote = null; // an unterminated one-line string: Python will say so
                }
                continue;
            }
            switch (ch) {
                case '#' -> {
                    while (i + 1 < src.length() && src.charAt(i + 1) != '\n') i++;
                }
                case '\'', '"' -> {
                    String triple = String.valueOf(ch).repeat(3);
                    quote = src.startsWith(triple, i) ? triple : String.valueOf(ch);
                    i += quote.length() - 1;
                }
                case '(', '[', '{' -> depth++;
                case ')', ']', '}' -> depth = Math.max(0, depth - 1);
                default -> { }
            }
            if (ch == '\n' && depth == 0) {
                if (!lastLine.toString().isBlank()) previous = lastLine.toString();
                lastLine.setLength(0);
            } else if (ch != '#') {
                lastLine.append(ch);
            }
        }
        if (quote != null && quote.length() == 3) return Completeness.OPEN;
        if (depth > 0) return Completeness.OPEN;
        String trimmed = src.stripTrailing();
        if (trimmed.endsWith("\\")) return Completeness.OPEN;
        String logical = (lastLine.toString().isBlank() ? previous : lastLine.toString()).strip();
        String firstLine = src.lines().findFirst().orElse("").strip();
        if (logical.endsWith(":") || firstLine.startsWith("@")) return Completeness.BLOCK;
        return Completeness.COMPLETE;
    }
}
