package dev.stockade.server.api;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import dev.stockade.server.core.Sandbox;
import dev.stockade.server.core.SandboxManager;
import dev.stockade.server.core.StockadeError;
import dev.stockade.server.audit.AuditEntry;
import dev.stockade.server.audit.AuditLog;
import dev.stockade.server.tenancy.ApiKey;
import dev.stockade.server.tenancy.Principal;
import dev.stockade.server.tenancy.QuotaGate;
import dev.stockade.server.tenancy.Tenancy;
import java.io.IOException;
import java.time.Instant;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The single HTTP entry point. A request carrying {@code E2b-Sandbox-Id} is for a sandbox: with
 * {@code E2b-Sandbox-Port: 49999} for its code interpreter ({@link CodeInterpreterApi}), else for its
 * envd (process and filesystem RPCs, /files, /health); any other is for the control plane. Authenticates,
 * dispatches, and turns every failure into the error shape its client expects: E2B's
 * {@code {code, message}} on the control plane and /files, Connect errors on RPCs. Nothing escapes
 * as a 500 unless it is a bug, and then the message says so. Runs on one virtual thread per request.
 */
public final class Router implements HttpHandler {
    private static final Logger LOG = Logger.getLogger(Router.class.getName());
    /** Control-plane routes that name a sandbox: /sandboxes/{id}..., /v2/sandboxes/{id}/... */
    private static final Pattern SANDBOX_ROUTE = Pattern.compile("/(?:v2/)?sandboxes/([^/]+)(/.*)?");

    private final ObjectMapper json;
    private final SandboxManager manager;
    private final Tenancy tenancy;
    private final AuditLog audit;
    private final ControlPlaneApi control;
    private final EgressApi egress;
    private final PackagesApi packages;
    private final AdminApi admin;
    private final ProcessRpc process = new ProcessRpc();
    private final FilesystemRpc filesystem = new FilesystemRpc();
    private final FilesHttp files = new FilesHttp();
    private final CodeInterpreterApi code = new CodeInterpreterApi();

    public Router(ObjectMapper json, SandboxManager manager, Tenancy tenancy, QuotaGate quotas, AuditLog audit,
                  dev.stockade.server.packages.PackagePolicy packagePolicy) {
        this.json = json;
        this.manager = manager;
        this.tenancy = tenancy;
        this.audit = audit;
        this.control = new ControlPlaneApi(manager, quotas);
        this.egress = new EgressApi(manager);
        this.packages = new PackagesApi(manager, packagePolicy);
        this.admin = new AdminApi(tenancy, quotas, audit);
    }

    private enum Plane { CONTROL, CONNECT, FILES, CODE }

    /** The port header the code interpreter SDKs send (Jupyter's port in E2B's template). */
    static final String CODE_INTERPRETER_PORT = "49999";

    @Override
    public void handle(HttpExchange exchange) {
        long started = System.nanoTime();
        Request r = new Request(exchange, json);
        String sandboxId = r.header("E2b-Sandbox-Id");
        String path = r.path();
        Plane plane = sandboxId == null ? Plane.CONTROL
                : CODE_INTERPRETER_PORT.equals(trimmed(r.header("E2b-Sandbox-Port"))) ? Plane.CODE
                : path.startsWith("/process.") || path.startsWith("/filesystem.") ? Plane.CONNECT : Plane.FILES;
        boolean audited = false;
        StockadeError failure = null;
        try {
            if (path.equals("/health") && (r.method().equals("GET") || r.method().equals("HEAD"))) {
                if (sandboxId == null) {
                    r.sendJson(200, json.createObjectNode().put("status", "ok"));
                } else {
                    // envd's health (the SDK's isRunning(), which sends the sandbox's token): 204 alive,
                    // 502 gone. Unlike E2B it needs the token or a key of the sandbox's tenant, so that
                    // it tells nobody else whether an id exists.
                    authorize(r, sandboxId, ENVD_TOKENS);
                    r.send(204, new byte[0]);
                }
                return;
            }
            audited = true;
            if (sandboxId == null) {
                ApiKey key = tenancy.authenticate(r.header("X-API-Key"));
                if (key == null) throw unauthenticated("a valid X-API-Key header is required");
                r.principal = Principal.key(key);
                audited = !r.method().equals("GET");
                if (path.equals("/admin") || path.startsWith("/admin/")) {
                    if (!key.admin()) {
                        throw new StockadeError(StockadeError.Code.FORBIDDEN, "the admin API needs an admin key; key "
                                + key.id() + " of tenant " + key.tenant() + " is not one");
                    }
                    if (!admin.handle(r)) throw StockadeError.notFound("no route " + r.method() + " " + path);
                    return;
                }
                Matcher m = SANDBOX_ROUTE.matcher(path);
                if (m.matches()) {
                    r.auditSandbox = m.group(1);
                    Sandbox named = ownedBy(key.tenant(), m.group(1));
                    // What a client does to it counts as activity for its idle policy; looking at it does not.
                    if (!r.method().equals("GET")) named.touch();
                }
                if (!control.handle(r) && !egress.handle(r) && !packages.handle(r)) throw StockadeError.notFound("no route " + r.method() + " " + path);
                return;
            }
            r.auditSandbox = sandboxId;
            if (plane == Plane.CODE) {
                Sandbox sb = authorize(r, sandboxId, CODE_TOKENS);
                if (!code.handle(r, sb)) throw StockadeError.notFound("no route " + r.method() + " " + path + " on the code interpreter");
                return;
            }
            Sandbox target = authorizeEnvd(r, sandboxId);
            EnvdContext ctx = new EnvdContext(target, EnvdContext.userFrom(
                    r.header("Authorization"), plane == Plane.FILES ? r.query().get("username") : null));
            boolean handled = switch (plane) {
                case CONNECT -> {
                    if (!r.method().equals("POST")) throw StockadeError.invalid("Connect RPCs are POST requests");
                    int dot = path.indexOf('/', 1);
                    String service = dot < 0 ? path.substring(1) : path.substring(1, dot);
                    String method = dot < 0 ? "" : path.substring(dot + 1);
                    yield switch (service) {
                        case "process.Process" -> process.handle(r, ctx, method);
                        case "filesystem.Filesystem" -> filesystem.handle(r, ctx, method);
                        default -> false;
                    };
                }
                case FILES -> {
                    if (!path.equals("/files")) yield false;
                    files.handle(r, ctx);
                    yield true;
                }
                case CONTROL, CODE -> throw new IllegalStateException("unreachable");
            };
            if (!handled) throw StockadeError.notFound("no route " + r.method() + " " + path);
        } catch (StockadeError e) {
            failure = e;
            fail(r, plane, e);
        } catch (dev.stockade.server.store.StoreException e) {
            // The data directory's disk is full or failing: the server is not broken, its storage is.
            LOG.log(Level.WARNING, "the store failed on " + r.method() + " " + path, e);
            failure = new StockadeError(StockadeError.Code.UNAVAILABLE, "the server could not record this: " + e.getMessage()
                    + ". Nothing was changed; check the disk of the server's data directory.");
            fail(r, plane, failure);
        } catch (IOException e) {
            // The client went away mid-response: nothing left to tell it.
            LOG.log(Level.FINE, "client connection failed", e);
        } catch (RuntimeException e) {
            LOG.log(Level.SEVERE, "bug: unhandled failure on " + r.method() + " " + path, e);
            failure = new StockadeError(StockadeError.Code.INTERNAL, "internal error (a bug in Stockade): " + e);
            fail(r, plane, failure);
        } finally {
            // Recorded before the exchange is closed: a client waiting for the end of its response
            // (a stream, a chunked body) sees it only once the entry is committed.
            try {
                if (audited || (failure != null && failure.code() == StockadeError.Code.UNAUTHENTICATED)) {
                    record(r, plane, failure, started);
                }
            } finally {
                exchange.close();
            }
        }
    }

    /**
     * A route naming a sandbox the caller may not see — never existed, ended, starting, or another
     * tenant's — answers with one error, from this one check, before any handler has looked at the
     * request: a malformed body or an unknown sub-route cannot tell them apart.
     */
    private Sandbox ownedBy(String tenant, String sandboxId) {
        Sandbox sb = manager.find(sandboxId);
        if (sb == null || !sb.isLive() || !sb.tenant().equals(tenant)) throw manager.notFoundFor(tenant, sandboxId);
        return sb;
    }

    /** Appends the request's audit entry: who, what, the outcome (never bodies or secrets). */
    private void record(Request r, Plane plane, StockadeError failure, long started) {
        int status = r.exchange.getResponseCode();
        if (status <= 0) status = failure == null ? 499 : Errors.status(failure.code());
        Principal p = r.principal;
        String outcome = failure != null ? failure.code().name().toLowerCase(java.util.Locale.ROOT) : status >= 400 ? "error" : "ok";
        String remote = r.exchange.getRemoteAddress() == null ? null
                : r.exchange.getRemoteAddress().getAddress().getHostAddress();
        audit.append(new AuditEntry(0, Instant.now(), p == null ? null : p.tenant(), p == null ? null : p.keyId(),
                p == null ? "none" : p.via(), remote, action(r, plane), r.auditSandbox, r.auditTarget, status, outcome,
                r.auditDetail, (System.nanoTime() - started) / 1_000_000));
    }

    /** The audit log's name for a route: sandbox.create, process.Start, file.write, code.execute... */
    static String action(Request r, Plane plane) {
        String path = r.path();
        String method = r.method();
        return switch (plane) {
            case CONNECT -> {
                String p = path.substring(1);
                int slash = p.indexOf('/');
                String service = slash < 0 ? p : p.substring(0, slash);
                String rpc = slash < 0 ? "" : p.substring(slash + 1);
                int dot = service.lastIndexOf('.');
                yield (dot < 0 ? service : service.substring(0, dot)) + "." + clip(rpc);
            }
            case FILES -> method.equals("GET") ? "file.read" : method.equals("POST") ? "file.write" : "file." + clip(method);
            case CODE -> {
                if (path.equals("/execute")) yield "code.execute";
                if (path.startsWith("/contexts")) {
                    yield path.endsWith("/restart") ? "context.restart" : method.equals("POST") ? "context.create"
                            : method.equals("DELETE") ? "context.delete" : "context.list";
                }
                yield "code." + clip(method);
            }
            case CONTROL -> {
                if (path.equals("/sandboxes") || path.equals("/v2/sandboxes")) yield method.equals("POST") ? "sandbox.create" : "sandbox.list";
                if (path.startsWith("/templates/")) yield method.equals("DELETE") ? "snapshot.delete" : "template." + clip(method);
                if (path.equals("/snapshots")) yield "snapshot.list";
                if (path.startsWith("/admin/")) {
                    String[] parts = path.split("/");
                    String what = parts.length > 2 ? parts[2] : "";
                    String verb = switch (method) {
                        case "POST" -> "create";
                        case "PUT" -> "update";
                        case "DELETE" -> "revoke";
                        default -> "read";
                    };
                    yield "admin." + clip(what) + "." + verb;
                }
                Matcher m = SANDBOX_ROUTE.matcher(path);
                if (m.matches()) {
                    String rest = m.group(2) == null ? "" : m.group(2);
                    yield switch (rest) {
                        case "" -> method.equals("DELETE") ? "sandbox.kill" : "sandbox.read";
                        case "/timeout" -> "sandbox.timeout";
                        case "/refreshes" -> "sandbox.refresh";
                        case "/connect" -> "sandbox.connect";
                        case "/pause" -> "sandbox.pause";
                        case "/snapshots" -> "snapshot.create";
                        case "/network" -> method.equals("PUT") ? "network.policy" : "network.read";
                        case "/network/log" -> "network.log";
                        case "/packages" -> "packages.install";
                        default -> "sandbox." + clip(method);
                    };
                }
                yield "api." + clip(method);
            }
        };
    }

    private static String clip(String s) {
        String t = s.length() > 40 ? s.substring(0, 40) : s;
        return t.replaceAll("[^A-Za-z0-9_.-]", "_");
    }

    /**
     * In-sandbox calls carry the sandbox's own access token (X-Access-Token, as the E2B SDKs send
     * it) or the API key. Without either the answer is 401, whether or not the sandbox exists.
     */
    private Sandbox authorizeEnvd(Request r, String sandboxId) {
        return authorize(r, sandboxId, ENVD_TOKENS);
    }

    /** Headers that may carry the sandbox's token, per plane. */
    private static final List<String> ENVD_TOKENS = List.of("X-Access-Token");
    /**
     * The code interpreter SDK sends E2B-Traffic-Access-Token (the create response's
     * trafficAccessToken, which is the sandbox's one token) on every call, X-Access-Token on /execute.
     */
    private static final List<String> CODE_TOKENS = List.of("X-Access-Token", "E2B-Traffic-Access-Token");

    private Sandbox authorize(Request r, String sandboxId, List<String> tokenHeaders) {
        ApiKey key = r.header("X-API-Key") == null ? null : tenancy.authenticate(r.header("X-API-Key"));
        if (key != null) r.principal = Principal.key(key);
        SandboxManager.Access access = new SandboxManager.Access.Denied();
        for (String h : tokenHeaders) {
            access = manager.access(sandboxId, r.header(h));
            if (!(access instanceof SandboxManager.Access.Denied)) break;
        }
        return switch (access) {
            case SandboxManager.Access.Granted g -> {
                // The token is the sandbox's own: it acts for the sandbox's tenant (a key of another
                // tenant sent alongside adds nothing).
                if (key == null || !key.tenant().equals(g.sandbox().tenant())) {
                    r.principal = Principal.sandboxToken(g.sandbox().tenant());
                }
                yield g.sandbox();
            }
            case SandboxManager.Access.Gone gone -> {
                // The caller holds this sandbox's own token: it may learn that it is only paused.
                Sandbox sb = manager.find(sandboxId);
                if (sb != null && sb.isPaused()) {
                    throw new StockadeError(StockadeError.Code.SANDBOX_GONE, "The sandbox " + sandboxId
                            + " is paused: connect to it to resume it");
                }
                throw gone(sandboxId);
            }
            case SandboxManager.Access.Denied d -> {
                // Without a valid credential the answer is 401 whether or not the id exists; with a
                // valid key, a sandbox that is not the key's tenant's (or not running, or unknown)
                // answers like E2B's proxy for a gone sandbox (502). Neither answer says whether a
                // sandbox the caller may not reach exists.
                if (key == null) {
                    throw unauthenticated("a valid " + String.join(" or ", tokenHeaders)
                            + " (the sandbox's envdAccessToken) or X-API-Key header is required");
                }
                Sandbox sb = manager.find(sandboxId);
                if (sb == null || !sb.isRunning() || !key.tenant().equals(sb.tenant())) throw gone(sandboxId);
                yield sb;
            }
        };
    }

    private static String trimmed(String s) {
        return s == null ? null : s.trim();
    }

    private static StockadeError gone(String sandboxId) {
        return new StockadeError(StockadeError.Code.SANDBOX_GONE, "The sandbox was not found: " + sandboxId
                + " does not exist or has ended");
    }

    private static StockadeError unauthenticated(String message) {
        return new StockadeError(StockadeError.Code.UNAUTHENTICATED, message);
    }

    private void fail(Request r, Plane plane, StockadeError e) {
        if (e.code() == StockadeError.Code.INTERNAL) {
            LOG.log(Level.SEVERE, "internal error on " + r.method() + " " + r.path(), e);
        }
        try {
            ObjectNode body = json.createObjectNode();
            if (e.retryAfterSeconds() > 0) {
                r.exchange.getResponseHeaders().set("Retry-After", Long.toString(e.retryAfterSeconds()));
            }
            if (plane == Plane.CONNECT && e.code() != StockadeError.Code.SANDBOX_GONE) {
                body.put("code", Errors.connectCode(e.code()));
                body.put("message", e.getMessage());
                r.sendJson(Errors.connectStatus(e.code()), body);
            } else {
                int status = Errors.status(e.code());
                body.put("code", status);
                body.put("message", e.getMessage());
                r.sendJson(status, body);
            }
        } catch (IOException | RuntimeException ignored) {
            // Headers were already sent (a stream failed midway) or the client is gone.
        }
    }
}
