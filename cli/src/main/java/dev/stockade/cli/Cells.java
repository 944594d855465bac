package dev.stockade.cli;

import dev.stockade.protocol.Outcome;
import dev.stockade.sdk.Execution;
import dev.stockade.sdk.ExecutionError;
import dev.stockade.sdk.Result;
import dev.stockade.sdk.RunCodeOptions;
import dev.stockade.sdk.Sandbox;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * What {@code run --cells} and {@code repl} share: splitting a percent-format notebook into cells,
 * and running one cell with its output on this terminal: stdout and stderr as they arrive, then
 * the text of each result, PNG figures saved as files in a local directory (and said so), the
 * error's traceback on stderr. Runs on the caller's thread (the SDK calls back on it).
 */
final class Cells {
    /** A cell marker of the percent format (Jupytext, VS Code, Spyder): {@code # %%} at a line's start. */
    private static final Pattern MARKER = Pattern.compile("^#\\s?%%.*$");
    private static final Pattern MARKDOWN = Pattern.compile("^#\\s?%%.*\\[(markdown|md)\\].*$");

    private Cells() {}

    /**
     * The code cells of a percent-format notebook: text between {@code # %%} lines; markdown cells
     * ({@code # %% [markdown]}) and cells with nothing but blank lines are left out. A file without
     * markers is one cell.
     */
    static List<String> split(String notebook) {
        List<String> cells = new ArrayList<>();
        StringBuilder cell = new StringBuilder();
        boolean markdown = false;
        for (String line : notebook.split("\r?\n", -1)) {
            if (MARKER.matcher(line).matches()) {
                add(cells, cell, markdown);
                cell.setLength(0);
                markdown = MARKDOWN.matcher(line).matches();
                continue;
            }
            cell.append(line).append('\n');
        }
        add(cells, cell, markdown);
        return cells;
    }

    private static void add(List<String> cells, StringBuilder cell, boolean markdown) {
        if (markdown || cell.toString().isBlank()) return;
        String text = cell.toString();
        // Trailing blank lines only: the last expression stays the last line.
        int end = text.length();
        while (end > 0 && Character.isWhitespace(text.charAt(end - 1))) end--;
        cells.add(text.substring(0, end) + "\n");
    }

    /**
     * Runs one cell in the sandbox's default context (with {@code envs} set for it) and prints what it did. Figures go to
     * {@code figureDir} as {@code PREFIX-N.png}. Returns the execution (its error, if any, already printed).
     */
    static Execution run(Sandbox sandbox, String code, Map<String, String> envs, Duration timeout, Io io, Path figureDir,
            String prefix) throws IOException {
        RunCodeOptions options = RunCodeOptions.builder()
                .envs(envs)
                .timeout(timeout)
                .onStdout(s -> {
                    io.out().print(s);
                    io.out().flush();
                })
                .onStderr(s -> {
                    io.err().print(s);
                    io.err().flush();
                })
                .build();
        Execution e = sandbox.runCode(code, options);
        int figure = 0;
        for (Result r : e.results()) {
            byte[] png = r.pngBytes();
            if (png != null) {
                figure++;
                Path file = figureDir.resolve(prefix + (figure == 1 ? "" : "-" + figure) + ".png");
                Files.write(file, png);
                io.out().println("[figure saved to " + display(file) + "]");
            } else if (r.text() != null) {
                io.out().println(r.text());
            } else if (!r.formats().isEmpty()) {
                io.out().println("[" + String.join(", ", r.formats()) + " output]");
            }
        }
        io.out().flush();
        ExecutionError err = e.error();
        if (err != null) {
            String tb = err.traceback().isBlank() ? err.name() + ": " + err.value() : err.traceback().stripTrailing();
            io.err().println(tb);
            if (e.outcome() != null && e.outcome() != Outcome.ERROR && e.reason() != null) {
                io.err().println("(" + e.outcome().wireName() + ": " + e.reason() + ")");
            }
            io.err().flush();
        } else if (e.outcome() != null && e.outcome() != Outcome.OK && e.reason() != null) {
            io.err().println("(" + e.outcome().wireName() + ": " + e.reason() + ")");
        }
        return e;
    }

    /** True when the cell failed: it raised, or did not end on its own. */
    static boolean failed(Execution e) {
        return e.error() != null || (e.outcome() != null && e.outcome() != Outcome.OK);
    }

    private static String display(Path file) {
        Path cwd = Path.of("").toAbsolutePath();
        Path abs = file.toAbsolutePath().normalize();
        return abs.startsWith(cwd) ? cwd.relativize(abs).toString() : abs.toString();
    }
}
