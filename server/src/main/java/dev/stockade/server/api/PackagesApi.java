package dev.stockade.server.api;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.protocol.AgentEvent;
import dev.stockade.protocol.ExecRequest;
import dev.stockade.server.core.Sandbox;
import dev.stockade.server.core.SandboxManager;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.packages.PackagePolicy;
import dev.stockade.server.session.CommandRun;
import dev.stockade.server.session.Sessions;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * {@code POST /sandboxes/{id}/packages}: installs Python packages into a sandbox for its user. Every
 * requirement is checked against the package policy first, so a refusal names the policy and the
 * package before pip runs; then pip runs inside the sandbox as the user, against the index the server
 * serves ({@code http://pypi.stockade/}), which applies the same policy to every file (and is also
 * what {@code pip install} and {@code %pip} in the sandbox reach).
 */
final class PackagesApi {
    private static final int MAX_BODY = 64 * 1024;
    private static final int MAX_PACKAGES = 64;
    private static final int MAX_OUTPUT = 256 * 1024;
    private static final Pattern ROUTE = Pattern.compile("/sandboxes/([^/]+)/packages");

    private final SandboxManager manager;
    private final PackagePolicy policy;
    private final Sessions sessions = new Sessions();

    PackagesApi(SandboxManager manager, PackagePolicy policy) {
        this.manager = manager;
        this.policy = policy;
    }

    /** Returns false when no route matches. */
    boolean handle(Request r) throws IOException {
        Matcher m = ROUTE.matcher(r.path());
        if (!m.matches()) return false;
        if (!r.method().equals("POST")) throw StockadeError.invalid(r.method() + " is not allowed on " + r.path());
        JsonNode body = r.jsonBody(MAX_BODY);
        Sandbox sb = manager.get(m.group(1));
        JsonNode list = body.get("packages");
        if (list == null || !list.isArray() || list.isEmpty()) {
            throw StockadeError.invalid("packages must be a non-empty list of requirements such as \"requests==2.31.0\"");
        }
        if (list.size() > MAX_PACKAGES) throw StockadeError.invalid("at most " + MAX_PACKAGES + " packages per request");
        List<String> specs = new ArrayList<>();
        List<String> refused = new ArrayList<>();
        for (JsonNode p : list) {
            if (!p.isTextual()) throw StockadeError.invalid("packages must be a list of strings");
            String spec = p.asText().strip();
            PackagePolicy.Verdict v = policy.checkRequirement(spec);
            if (!v.allowed()) {
                if (PackagePolicy.RULE_INVALID_REQUIREMENT.equals(v.rule())) throw StockadeError.invalid(v.reason());
                refused.add(v.reason());
            }
            specs.add(spec);
        }
        if (!refused.isEmpty()) throw new StockadeError(StockadeError.Code.FORBIDDEN, String.join("; ", refused));

        List<String> argv = new ArrayList<>(List.of("/usr/bin/python3", "-m", "pip", "install", "--user",
                "--no-input", "--disable-pip-version-check", "--progress-bar", "off", "--"));
        argv.addAll(specs);
        long timeoutMs = sb.limits().commandTimeoutSeconds() * 1000L;
        ExecRequest exec = new ExecRequest(argv, sb.processEnv(), null, EnvdContext.DEFAULT_USER, false, timeoutMs,
                (long) sb.limits().outputMB() * 1024 * 1024, "packages");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        AgentEvent.Ended end = null;
        // pip runs as a command: past its timeout the agent (or, behind it, the server) kills it.
        try (CommandRun s = sessions.exec(sb, exec)) {
            while (end == null) {
                Optional<AgentEvent> e = s.next(Duration.ofSeconds(5));
                if (e.isEmpty()) continue;
                switch (e.get()) {
                    case AgentEvent.Stdout o -> append(out, o.data());
                    case AgentEvent.Stderr o -> append(out, o.data());
                    case AgentEvent.Terminal o -> append(out, o.data());
                    case AgentEvent.Ended x -> end = x;
                    case AgentEvent.Started ignored -> { }
                }
            }
        }
        ObjectNode n = r.json.createObjectNode();
        n.put("installed", end.exitCode() == 0);
        n.put("exitCode", end.exitCode());
        n.put("outcome", end.outcome().wireName());
        n.put("reason", end.reason());
        specs.forEach(n.putArray("packages")::add);
        n.put("output", out.toString(StandardCharsets.UTF_8));
        r.sendJson(200, n);
        return true;
    }

    /** Keeps the last MAX_OUTPUT bytes: pip's conclusion is at the end. */
    private static void append(ByteArrayOutputStream out, byte[] data) {
        out.writeBytes(data);
        if (out.size() > 2 * MAX_OUTPUT) {
            byte[] all = out.toByteArray();
            out.reset();
            out.write(all, all.length - MAX_OUTPUT, MAX_OUTPUT);
        }
    }
}
