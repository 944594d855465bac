package dev.stockade.server.templates;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.server.core.TemplateCatalog;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Runs started template builds (E2B's {@code POST /v2/templates/{id}/builds/{buildID}}), one at a
 * time on one virtual thread, in step order, each with its log entries and, on failure, E2B's reason
 * ({@code message}, {@code step} = "base" | "1".."N" | "finalize", the step's warnings).
 *
 * <p>What a build does today (issue 17, first round): its base is a built-in template or one of the
 * tenant's ready templates ({@code fromImage} fails at "base": images come later); ENV (values
 * expanded against the environment so far: {@code $VAR}, {@code ${VAR}}, no command substitution),
 * WORKDIR (relative ones joined to the current one) and USER (root or user) change the config the
 * sandboxes created from it get; RUN and COPY fail at their step, as they need build sandboxes and
 * layers that are not built yet; startCmd and readyCmd are recorded, not run. A server stopping
 * mid-build leaves it building in the store: the next start marks it error
 * ({@link TemplateStore#failInterrupted}). The request threads call {@link #start} and {@link #live}.
 */
public final class TemplateBuilds implements AutoCloseable {
    private static final Logger LOG = Logger.getLogger(TemplateBuilds.class.getName());
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern ENV_KEY = Pattern.compile("[A-Za-z_][A-Za-z0-9_]{0,255}");
    private static final Pattern REFERENCE = Pattern.compile("\\$(?:\\{([A-Za-z_][A-Za-z0-9_]*)}|([A-Za-z_][A-Za-z0-9_]*))");
    private static final int MAX_ENV = 256;
    private static final int MAX_VALUE = 32 * 1024;
    /** What a sandbox's shell has before any ENV: what $PATH, $HOME... expand to in a value. */
    private static final String PATH = "/home/user/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    static final String RESTARTED = "the server restarted during the build";

    private final TemplateStore store;
    private final ExecutorService thread = Executors.newSingleThreadExecutor(Thread.ofVirtual().name("template-build").factory());
    private final Map<String, BuildLog> running = new ConcurrentHashMap<>();

    /** A start request's step: its type and arguments (unknown keys of the wire's step objects are dropped). */
    public record Step(String type, List<String> args) {
        public Step {
            args = List.copyOf(args);
        }
    }

    /** E2B's TemplateBuildStartV2, checked for shape (exactly one of fromImage and fromTemplate). */
    public record Start(String fromImage, String fromTemplate, List<Step> steps, String startCmd, String readyCmd) {
        public Start {
            steps = List.copyOf(steps);
        }
    }

    /** Marks what an earlier server left building as failed: a build's state lived in that server. */
    public TemplateBuilds(TemplateStore store) {
        this.store = store;
        int n = store.failInterrupted(reason(RESTARTED, null, List.of()));
        if (n > 0) LOG.info(n + " template build(s) were running when the server stopped: marked error");
    }

    /** Starts a waiting build (CONFLICT if it was started already): building at once, run in turn. */
    public void start(String tenant, String buildId, Start request, String requestJson) {
        BuildLog log = new BuildLog();
        running.put(buildId, log);
        try {
            store.start(buildId, requestJson);
        } catch (RuntimeException e) {
            running.remove(buildId, log);
            throw e;
        }
        log.add("info", "base", "Build " + buildId + " queued");
        thread.execute(() -> run(tenant, buildId, request, log));
    }

    /** The log of a build this server runs now, or null (a build not started, or ended: its log is in the store). */
    public BuildLog live(String buildId) {
        return running.get(buildId);
    }

    private void run(String tenant, String buildId, Start request, BuildLog log) {
        try {
            BuildConfig cfg = execute(tenant, request, log);
            log.add("info", "finalize", "Build finished: template ready (base " + cfg.base() + ", user " + cfg.user()
                    + ", workdir " + cfg.workdir() + ")");
            store.finish(buildId, TemplateStore.Status.READY, cfg.toJson(), null, log.toJson());
        } catch (StepFailed f) {
            log.add("error", f.step, f.getMessage());
            store.finish(buildId, TemplateStore.Status.ERROR, null, reason(f.getMessage(), f.step, log.warnings(f.step)),
                    log.toJson());
        } catch (RuntimeException e) {
            LOG.log(Level.SEVERE, "bug: template build " + buildId + " failed unexpectedly", e);
            String why = "the build failed inside the server (a bug in Stockade; the server's log has it)";
            log.add("error", "finalize", why);
            store.finish(buildId, TemplateStore.Status.ERROR, null, reason(why, "finalize", List.of()), log.toJson());
        } finally {
            running.remove(buildId, log);
        }
    }

    /** A step that cannot be built: its message and where (E2B's reason.step). */
    static final class StepFailed extends RuntimeException {
        final String step;

        StepFailed(String step, String message) {
            super(message, null, false, false);
            this.step = step;
        }
    }

    BuildConfig execute(String tenant, Start request, BuildLog log) {
        String base;
        Map<String, String> env = new LinkedHashMap<>();
        String workdir = null; // null: the user's home
        String user = "user";
        if (request.fromImage() != null) {
            log.add("info", "base", "FROM " + request.fromImage());
            throw new StepFailed("base", "building from an image is not supported yet; use fromTemplate('base')");
        }
        String from = request.fromTemplate();
        log.add("info", "base", "FROM TEMPLATE " + from);
        if (TemplateCatalog.isBuiltIn(from)) {
            base = from;
        } else {
            TemplateCatalog.Resolved parent = store.resolve(tenant, from);
            if (parent == null) {
                throw new StepFailed("base", "template '" + from + "' is neither a built-in template (base, python,"
                        + " code-interpreter-v1, each also -hardened) nor one of your ready templates");
            }
            base = parent.base();
            env.putAll(parent.env());
            workdir = parent.workdir();
            user = parent.user();
        }
        int n = request.steps().size();
        for (int i = 0; i < n; i++) {
            Step s = request.steps().get(i);
            String step = Integer.toString(i + 1);
            log.add("info", step, "[builder " + (i + 1) + "/" + n + "] " + s.type() + " " + String.join(" ", s.args()));
            switch (s.type()) {
                case "ENV" -> env(s.args(), env, user, step);
                case "WORKDIR" -> {
                    if (s.args().size() != 1 || s.args().getFirst().isEmpty() || s.args().getFirst().indexOf('\0') >= 0) {
                        throw new StepFailed(step, "WORKDIR takes one path");
                    }
                    String cwd = workdir == null ? BuildConfig.home(user) : workdir;
                    workdir = Path.of("/").resolve(cwd).resolve(s.args().getFirst()).normalize().toString();
                }
                case "USER" -> {
                    if (s.args().isEmpty() || !(s.args().getFirst().equals("root") || s.args().getFirst().equals("user"))) {
                        throw new StepFailed(step, "USER " + (s.args().isEmpty() ? "" : s.args().getFirst())
                                + ": only the users root and user exist in Stockade's templates for now");
                    }
                    user = s.args().getFirst();
                }
                case "RUN", "COPY" -> throw new StepFailed(step, "RUN/COPY steps are not built yet: this server builds"
                        + " templates from ENV, WORKDIR and USER steps only for now (" + s.type() + " comes with build"
                        + " sandboxes and template layers)");
                default -> throw new StepFailed(step, "unknown step type '" + s.type() + "' (COPY, RUN, ENV, WORKDIR, USER)");
            }
        }
        if (request.startCmd() != null || request.readyCmd() != null) {
            log.add("warn", "finalize", "the start and ready commands are recorded, not run: Stockade does not run them yet");
        }
        return new BuildConfig(base, env, workdir == null ? BuildConfig.home(user) : workdir, user, request.startCmd(),
                request.readyCmd());
    }

    /** ENV k1 v1 k2 v2...: each value expanded against the environment so far, then set. */
    private static void env(List<String> args, Map<String, String> env, String user, String step) {
        if (args.size() < 2 || args.size() % 2 != 0) throw new StepFailed(step, "ENV takes pairs of a name and a value");
        for (int i = 0; i < args.size(); i += 2) {
            String key = args.get(i);
            if (!ENV_KEY.matcher(key).matches()) {
                throw new StepFailed(step, "ENV name '" + key + "' is invalid: it must match " + ENV_KEY.pattern());
            }
            String value = expand(args.get(i + 1), env, user);
            if (value.length() > MAX_VALUE || value.indexOf('\0') >= 0) {
                throw new StepFailed(step, "ENV " + key + ": a value is at most " + MAX_VALUE + " characters without NUL");
            }
            env.put(key, value);
            if (env.size() > MAX_ENV) throw new StepFailed(step, "a template sets at most " + MAX_ENV + " variables");
        }
    }

    /**
     * {@code $NAME} and {@code ${NAME}} replaced by their values so far (a sandbox's PATH, HOME, USER
     * and LANG before any ENV sets them; unset ones by nothing), as E2B's builder's
     * {@code printf "%s" "<value>"} does; everything else, {@code $(...)} and backquotes included, literal.
     */
    static String expand(String value, Map<String, String> env, String user) {
        Matcher m = REFERENCE.matcher(value);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String name = m.group(1) != null ? m.group(1) : m.group(2);
            String v = env.get(name);
            if (v == null) {
                v = switch (name) {
                    case "PATH" -> PATH;
                    case "HOME" -> BuildConfig.home(user);
                    case "USER" -> user;
                    case "LANG" -> "C.UTF-8";
                    default -> "";
                };
            }
            m.appendReplacement(out, Matcher.quoteReplacement(v));
        }
        m.appendTail(out);
        return out.toString();
    }

    /** E2B's BuildStatusReason as stored JSON. */
    static String reason(String message, String step, List<BuildLog.Entry> entries) {
        ObjectNode n = JSON.createObjectNode();
        n.put("message", message);
        if (step != null) n.put("step", step);
        n.set("logEntries", BuildLog.entries(JSON, entries));
        return n.toString();
    }

    @Override
    public void close() {
        thread.shutdownNow();
    }
}
