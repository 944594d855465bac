package dev.stockade.cli;

import java.util.Map;
import java.util.Set;

/** One {@code stockade} subcommand: its name, help text, accepted options and action. */
interface Subcommand {
    /** Options every client subcommand takes. */
    Set<String> CLIENT_OPTIONS = Set.of("server", "api-key");

    String name();

    /** One line for {@code stockade --help}. */
    String summary();

    /** The full {@code --help} text. */
    String usage();

    Args.Spec spec();

    /** Runs with parsed arguments; returns the process exit code. */
    int run(Args args, Io io) throws Exception;

    static Set<String> with(Set<String> base, String... more) {
        java.util.HashSet<String> s = new java.util.HashSet<>(base);
        s.addAll(Set.of(more));
        return Set.copyOf(s);
    }

    static Map<String, String> noAliases() {
        return Map.of();
    }

    String CONNECTION_HELP = """
              --server URL      the Stockade server (default: $STOCKADE_URL, then $E2B_API_URL, then a
                                `stockade serve` running on the default data directory)
              --api-key KEY     its API key (default: $STOCKADE_API_KEY, then $E2B_API_KEY)
            """;
}
