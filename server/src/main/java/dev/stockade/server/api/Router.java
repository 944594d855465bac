package dev.stockade.server.api;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.server.core.Sandbox;
import dev.stockade.server.core.SandboxManager;
import dev.stockade.server.error.HostPaths;
import dev.stockade.server.error.StockadeError;
import dev.stockade.server.audit.AuditEntry;
import dev.stockade.server.audit.AuditLog;
import dev.stockade.server.tenancy.ApiKey;
import dev.stockade.server.tenancy.Principal;
import dev.stockade.server.tenancy.QuotaGate;
import dev.stockade.server.tenancy.Tenancy;
import dev.stockade.server.tenancy.TenantAdmin;
import java.io.IOException;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.logging.Level;
import java.util.logging.Logger;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.util.Callback;

/**
 * The single HTTP entry point. Reads the request's {@link Plane} from its headers, looks its route up
 * in {@link Routes}, establishes what the route's handler kind needs (an API key — an admin's under
 * {@code /admin} — and ownership of a {@code {sandboxID}} on the control plane; the sandbox's token or
 * a key of its tenant inside a sandbox), counts activity for idle policies, dispatches, and turns
 * every failure into the error shape its client expects: E2B's {@code {code, message}} on the
 * control plane and /files, Connect errors on RPCs. Nothing escapes as a 500 unless it is a bug, and
 * then the message says so. Every request but /health and control-plane GETs leaves one audit entry
 * named by its route (refused authentications too). Jetty calls {@link #handle} on one of its
 * threads; the request then runs on a virtual thread of its own (blocking reads and writes are what
 * the handlers are written in), and Jetty learns of its end through the callback.
 */
public final class Router extends Handler.Abstract.NonBlocking {
    private static final Logger LOG = Logger.getLogger(Router.class.getName());

    private final ObjectMapper json;
    private final SandboxManager manager;
    private final Tenancy tenancy;
    private final AuditLog audit;
    private final Routes routes;
    private final SignedFileUrls signedUrls;
    private final Executor requests;

    public Router(Executor requests, ObjectMapper json, SandboxManager manager, Tenancy tenancy, QuotaGate quotas, AuditLog audit,
                  dev.stockade.server.packages.PackagePolicy packagePolicy, dev.stockade.server.templates.Templates templates) {
        this.requests = requests;
        this.json = json;
        this.manager = manager;
        this.tenancy = tenancy;
        this.audit = audit;
        this.routes = new Routes(Routes.Endpoints.of(manager, quotas, new TenantAdmin(tenancy), quotas, audit, packagePolicy,
                templates));
        this.signedUrls = new SignedFileUrls(manager, java.time.Clock.systemUTC());
    }

    @Override
    public boolean handle(org.eclipse.jetty.server.Request request, Response response, Callback callback) {
        Request r = new Request(request, response, callback, json);
        // An idle timeout while the handler waits on the client (a read, a write) fails that wait; one
        // while neither happens is a stream whose command is silent, which is not a dead client.
        request.addIdleTimeoutListener(t -> false);
        try {
            requests.execute(() -> {
                try {
                    handle(r);
                } catch (RuntimeException | Error e) {
                    // Before the dispatch's own try (a bug): the exchange must still end, never hang.
                    LOG.log(Level.SEVERE, "bug: unhandled failure before dispatch", e);
                    callback.failed(e);
                }
            });
        } catch (RejectedExecutionException stopping) {
            return false; // the server is stopping: Jetty answers 404 through the JSON error handler
        }
        return true;
    }

    private void handle(Request r) {
        long started = System.nanoTime();
        String sandboxId = r.header("E2b-Sandbox-Id");
        String path = r.path();
        // A signed /files URL (E2B's downloadUrl/uploadUrl) is fetched without any header: it is
        // in-sandbox even without E2b-Sandbox-Id, and its signature names the sandbox.
        boolean signed = SignedFileUrls.requested(r);
        Plane plane = signed ? Plane.FILES : Plane.of(sandboxId, r.header("E2b-Sandbox-Port"), path);
        Routes.Lookup found = routes.find(plane, r.method(), path);
        Route.Handler handler = found instanceof Routes.Found f ? f.route().handler() : null;
        // Control-plane GETs and liveness checks are not recorded (they change nothing); a refused
        // authentication always is (see the finally block).
        boolean audited = !(handler instanceof Route.Open || handler instanceof Route.Probe)
                && !(plane == Plane.CONTROL && r.method().equals("GET"));
        if (found instanceof Routes.NotFound) r.auditTarget = unknownPath(path);
        StockadeError failure = null;
        // An ambiguous credential is a refused authentication: recorded, whatever the route.
        boolean unambiguous = false;
        try {
            RequestBounds.check(path, r.rawQuery(), r.headers());
            CredentialHeaders.requireUnambiguous(r.headers());
            unambiguous = true;
            if (handler instanceof Route.Open open) {
                open.handle(r);
                return;
            }
            if (handler instanceof Route.Capability signedUrl && found instanceof Routes.Found f) {
                signedUrl.handle(r, f.params());
                return;
            }
            if (plane == Plane.CONTROL) {
                ApiKey key = tenancy.authenticate(r.header("X-API-Key"));
                if (key == null) throw unauthenticated("a valid X-API-Key header is required");
                r.principal = Principal.key(key);
                if (Routes.inAdminArea(path) && !key.admin()) {
                    throw new StockadeError(StockadeError.Code.FORBIDDEN, "the admin API needs an admin key; key "
                            + key.id() + " of tenant " + key.tenant() + " is not one");
                }
                String sandboxNamed = Routes.sandboxNamed(path);
                if (sandboxNamed != null) {
                    r.auditSandbox = sandboxNamed;
                    Sandbox named = ownedBy(key.tenant(), sandboxNamed);
                    // What a client does to it counts as activity for its idle policy; looking at it does not.
                    if (!r.method().equals("GET")) named.touch();
                }
                Routes.Found route = routeOf(found, r, plane);
                ((Route.Control) route.route().handler()).handle(r, route.params());
                return;
            }
            r.auditSandbox = sandboxId;
            if (handler instanceof Route.Probe probe) {
                probe.handle(r, authorize(r, sandboxId, ENVD_TOKENS));
                return;
            }
            if (plane == Plane.CODE) {
                Sandbox sb = authorize(r, sandboxId, CODE_TOKENS);
                ((Route.Code) routeOf(found, r, plane).route().handler()).handle(r, sb);
                return;
            }
            Sandbox target;
            String authorization = r.header("Authorization");
            if (signed && r.header("X-Access-Token") == null && r.header("X-API-Key") == null) {
                target = signedUrls.verify(r, sandboxId);
                r.auditSandbox = target.id();
                r.principal = Principal.signedUrl(target.tenant());
                // The user is the signed one (the username parameter, else the default user): an
                // Authorization header added to a signed URL must not turn it into root's.
                authorization = null;
            } else {
                target = authorize(r, sandboxId, ENVD_TOKENS);
            }
            EnvdContext ctx = new EnvdContext(target, EnvdContext.userFrom(
                    authorization, plane == Plane.FILES ? r.query().get("username") : null, target.defaultUser()));
            if (plane == Plane.CONNECT && !r.method().equals("POST")) throw StockadeError.invalid("Connect RPCs are POST requests");
            ((Route.Envd) routeOf(found, r, plane).route().handler()).handle(r, ctx);
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
            if (RequestBounds.malformedBody(e)) {
                // The body broke HTTP's framing (a chunk size of 16 hex digits, garbage): the client's 400.
                failure = RequestBounds.readFailure(e);
                fail(r, plane, failure);
            } else {
                // The client went away mid-response: nothing left to tell it.
                LOG.log(Level.FINE, "client connection failed", e);
            }
        } catch (RuntimeException e) {
            LOG.log(Level.SEVERE, "bug: unhandled failure on " + r.method() + " " + path, e);
            failure = new StockadeError(StockadeError.Code.INTERNAL, "internal error (a bug in Stockade; the server's log has it)");
            fail(r, plane, failure);
        } finally {
            // Recorded before the exchange is closed: a client waiting for the end of its response
            // (a stream, a chunked body) sees it only once the entry is committed.
            try {
                if (audited || !unambiguous || (failure != null && failure.code() == StockadeError.Code.UNAUTHENTICATED)) {
                    record(r, found.action(), failure, started);
                }
            } finally {
                r.finish();
            }
        }
    }

    /**
     * The route found, or the error its absence is — 404 for a path no route has, 400 for a method the
     * path does not take — raised only once the request's credentials and sandbox were checked. The
     * handler's kind is the one the plane's checks prepared for: {@link Route} refuses any other.
     */
    private static Routes.Found routeOf(Routes.Lookup found, Request r, Plane plane) {
        return switch (found) {
            case Routes.Found f -> f;
            case Routes.WrongMethod _ -> throw StockadeError.invalid(r.method() + " is not allowed on " + r.path());
            case Routes.NotFound _ -> throw StockadeError.notFound("no route " + r.method() + " " + r.path()
                    + (plane == Plane.CODE ? " on the code interpreter" : ""));
        };
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
    private void record(Request r, String action, StockadeError failure, long started) {
        int status = r.status();
        if (status <= 0) status = failure == null ? 499 : Errors.status(failure.code());
        Principal p = r.principal;
        String outcome = failure != null ? failure.code().name().toLowerCase(java.util.Locale.ROOT) : status >= 400 ? "error" : "ok";
        String remote = r.remoteAddress();
        audit.append(new AuditEntry(0, Instant.now(), p == null ? null : p.tenant(), p == null ? null : p.keyId(),
                p == null ? "none" : p.via(), remote, action, r.auditSandbox, r.auditTarget, status, outcome,
                r.auditDetail, (System.nanoTime() - started) / 1_000_000));
    }

    /** An unknown path as the audit log keeps it (its action says only "route.unknown"): cut, printable. */
    private static String unknownPath(String path) {
        String t = path.length() > 100 ? path.substring(0, 100) : path;
        return t.replaceAll("[^\\x21-\\x7e]", "?");
    }

    /**
     * Headers that may carry the sandbox's token, per plane. In-sandbox calls carry the sandbox's own
     * access token (X-Access-Token, as the E2B SDKs send it) or the API key. Without either the answer
     * is 401, whether or not the sandbox exists.
     */
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
                r.setResponseHeader("Retry-After", Long.toString(e.retryAfterSeconds()));
            }
            if (plane == Plane.CONNECT && e.code() != StockadeError.Code.SANDBOX_GONE) {
                body.put("code", Errors.connectCode(e.code()));
                body.put("message", HostPaths.scrub(e.getMessage()));
                r.sendJson(Errors.connectStatus(e.code()), body);
            } else {
                int status = Errors.status(e.code());
                body.put("code", status);
                body.put("message", HostPaths.scrub(e.getMessage()));
                r.sendJson(status, body);
            }
        } catch (IOException | RuntimeException ignored) {
            // Headers were already sent (a stream failed midway) or the client is gone.
        }
    }
}
