package dev.stockade.cli;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A parsed command line: options ({@code --name value}, {@code --name=value}, short aliases like
 * {@code -q}), flags, positional arguments, and what follows {@code --}. Parsing is driven by a
 * {@link Spec}, so an unknown option or a missing value is a {@link UsageException} naming it.
 */
final class Args {

    /**
     * What a command accepts.
     *
     * @param command the subcommand's name, for messages
     * @param valued options that take a value (long names without dashes)
     * @param repeatable the valued options that may be given more than once
     * @param flags options without a value
     * @param aliases short forms, e.g. {@code "q" -> "quiet"}
     * @param stopAtPositional after this many positionals, everything is positional (for
     *     {@code run script.py --flag-of-the-script}); -1 never stops
     */
    record Spec(String command, Set<String> valued, Set<String> repeatable, Set<String> flags,
            Map<String, String> aliases, int stopAtPositional) {}

    private final Map<String, List<String>> values = new LinkedHashMap<>();
    private final List<String> positionals = new ArrayList<>();
    private final List<String> rest = new ArrayList<>();
    private boolean dashDash;

    private Args() {}

    static Args parse(List<String> argv, Spec spec) throws UsageException {
        Args a = new Args();
        for (int i = 0; i < argv.size(); i++) {
            String arg = argv.get(i);
            boolean optionsOver = spec.stopAtPositional() >= 0 && a.positionals.size() >= spec.stopAtPositional();
            if (optionsOver) {
                a.positionals.add(arg);
                continue;
            }
            if (arg.equals("--")) {
                a.dashDash = true;
                a.rest.addAll(argv.subList(i + 1, argv.size()));
                break;
            }
            if (arg.startsWith("--") || (arg.startsWith("-") && arg.length() > 1 && !isNumber(arg))) {
                String name = arg.startsWith("--") ? arg.substring(2) : arg.substring(1);
                String inline = null;
                int eq = name.indexOf('=');
                if (eq >= 0) {
                    inline = name.substring(eq + 1);
                    name = name.substring(0, eq);
                }
                if (!arg.startsWith("--")) {
                    String full = spec.aliases().get(name);
                    if (full == null) throw new UsageException(spec.command(), "unknown option " + arg);
                    name = full;
                }
                if (name.equals("help")) {
                    a.values.computeIfAbsent("help", k -> new ArrayList<>()).add("true");
                } else if (spec.flags().contains(name)) {
                    if (inline != null) throw new UsageException(spec.command(), "option --" + name + " takes no value");
                    a.values.computeIfAbsent(name, k -> new ArrayList<>()).add("true");
                } else if (spec.valued().contains(name)) {
                    String v = inline;
                    if (v == null) {
                        if (i + 1 >= argv.size()) throw new UsageException(spec.command(), "option --" + name + " needs a value");
                        v = argv.get(++i);
                    }
                    List<String> list = a.values.computeIfAbsent(name, k -> new ArrayList<>());
                    if (!list.isEmpty() && !spec.repeatable().contains(name)) {
                        throw new UsageException(spec.command(), "option --" + name + " given twice");
                    }
                    list.add(v);
                } else {
                    throw new UsageException(spec.command(), "unknown option " + arg);
                }
                continue;
            }
            a.positionals.add(arg);
        }
        return a;
    }

    private static boolean isNumber(String s) {
        return s.matches("-\\d+");
    }

    boolean flag(String name) {
        return values.containsKey(name);
    }

    String value(String name) {
        List<String> v = values.get(name);
        return v == null ? null : v.getLast();
    }

    List<String> values(String name) {
        return values.getOrDefault(name, List.of());
    }

    List<String> positionals() {
        return positionals;
    }

    /** What followed {@code --}. */
    List<String> rest() {
        return rest;
    }

    boolean hasDashDash() {
        return dashDash;
    }

    /** A whole number option within [min, max], or {@code dflt} when absent. */
    int intValue(String command, String name, int dflt, int min, int max) throws UsageException {
        String v = value(name);
        if (v == null) return dflt;
        try {
            int n = Integer.parseInt(v.strip());
            if (n < min || n > max) {
                throw new UsageException(command, "--" + name + " must be between " + min + " and " + max + ", got " + v);
            }
            return n;
        } catch (NumberFormatException e) {
            throw new UsageException(command, "--" + name + " must be a whole number, got '" + v + "'");
        }
    }

    /** {@code KEY=VALUE} pairs of a repeatable option. */
    Map<String, String> pairs(String command, String name) throws UsageException {
        Map<String, String> out = new LinkedHashMap<>();
        for (String kv : values(name)) {
            int eq = kv.indexOf('=');
            if (eq <= 0) throw new UsageException(command, "--" + name + " takes KEY=VALUE, got '" + kv + "'");
            out.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        return out;
    }
}
