package dev.stockade.cli;

import dev.stockade.sdk.SandboxInfo;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** {@code stockade ls}: the running sandboxes. */
final class LsCommand implements Subcommand {
    private static final DateTimeFormatter TIME = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss").withZone(ZoneId.systemDefault());

    @Override
    public String name() {
        return "ls";
    }

    @Override
    public String summary() {
        return "list the running sandboxes";
    }

    @Override
    public String usage() {
        return """
                Usage: stockade ls [-q]

                Lists the running sandboxes.

                Options:
                """ + CONNECTION_HELP + """
                  -q, --quiet       print only the ids, one per line
                """;
    }

    @Override
    public Args.Spec spec() {
        return new Args.Spec(name(), CLIENT_OPTIONS, Set.of(), Set.of("quiet"), Map.of("q", "quiet"), -1);
    }

    @Override
    public int run(Args args, Io io) throws Exception {
        if (!args.positionals().isEmpty()) throw new UsageException(name(), "unexpected argument '" + args.positionals().getFirst() + "'");
        List<SandboxInfo> all;
        try (Target target = Target.resolve(name(), args, io, false)) {
            all = target.client().list();
        }
        if (args.flag("quiet")) {
            all.forEach(s -> io.out().println(s.sandboxId()));
            return 0;
        }
        io.out().print(table(all, Instant.now()));
        return 0;
    }

    static String table(List<SandboxInfo> sandboxes, Instant now) {
        List<String[]> rows = new ArrayList<>();
        rows.add(new String[] {"SANDBOX ID", "TEMPLATE", "RUNTIME", "STATE", "STARTED", "ENDS IN"});
        for (SandboxInfo s : sandboxes) {
            rows.add(new String[] {
                s.sandboxId(),
                orDash(s.templateId()),
                orDash(s.runtime()),
                orDash(s.state()),
                s.startedAt() == null ? "-" : TIME.format(s.startedAt()),
                s.endAt() == null ? "-" : left(Duration.between(now, s.endAt()))
            });
        }
        int[] width = new int[rows.getFirst().length];
        for (String[] r : rows) for (int i = 0; i < r.length; i++) width[i] = Math.max(width[i], r[i].length());
        StringBuilder sb = new StringBuilder();
        for (String[] r : rows) {
            for (int i = 0; i < r.length; i++) {
                sb.append(i == r.length - 1 ? r[i] : String.format("%-" + (width[i] + 2) + "s", r[i]));
            }
            sb.append('\n');
        }
        return sb.toString();
    }

    private static String orDash(String s) {
        return s == null || s.isEmpty() ? "-" : s;
    }

    static String left(Duration d) {
        if (d.isNegative()) return "ending";
        long s = d.toSeconds();
        if (s < 120) return s + "s";
        if (s < 7200) return (s / 60) + "m";
        return (s / 3600) + "h" + (s % 3600 / 60) + "m";
    }
}
