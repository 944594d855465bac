package dev.stockade.server.api;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpHandler;
import dev.stockade.agent.AgentException;
import dev.stockade.server.core.Sandbox;
import dev.stockade.server.core.SandboxManager;
import dev.stockade.server.core.StockadeError;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.List;
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

    private final ObjectMapper json;
    private final SandboxManager manager;
    private final byte[] apiKey;
    private final ControlPlaneApi control;
    private final EgressApi egress;
    private final PackagesApi packages;
    private final ProcessRpc process = new ProcessRpc();
    private final FilesystemRpc filesystem = new FilesystemRpc();
    private final FilesHttp files = new FilesHttp();
    private final CodeInterpreterApi code = new CodeInterpreterApi();

    public Router(ObjectMapper json, SandboxManager manager, String apiKey,
                  dev.stockade.server.packages.PackagePolicy packagePolicy) {
        this.json = json;
        this.manager = manager;
        this.apiKey = apiKey.getBytes(StandardCharsets.UTF_8);
        this.control = new ControlPlaneApi(manager);
        this.egress = new EgressApi(manager);
        this.packages = new PackagesApi(manager, packagePolicy);
    }

    private enum Plane { CONTROL, CONNECT, FILES, CODE }

    /** The port header the code interpreter SDKs send (Jupyter's port in E2B's template). */
    static final String CODE_INTERPRETER_PORT = "49999";

    @Override
    public void handle(HttpExchange exchange) {
        Request r = new Request(exchange, json);
        String sandboxId = r.header("E2b-Sandbox-Id");
        String path = r.path();
        Plane plane = sandboxId == null ? Plane.CONTROL
                : CODE_INTERPRETER_PORT.equals(trimmed(r.header("E2b-Sandbox-Port"))) ? Plane.CODE
                : path.startsWith("/process.") || path.startsWith("/filesystem.") ? Plane.CONNECT : Plane.FILES;
        try {
            if (path.equals("/health") && (r.method().equals("GET") || r.method().equals("HEAD"))) {
                if (sandboxId == null) {
                    r.sendJson(200, json.createObjectNode().put("status", "ok"));
                } else {
                    // envd's health, unauthenticated as in E2B: 204 alive, 502 gone (the SDK's isRunning()).
                    if (!manager.isRunning(sandboxId)) throw gone(sandboxId);
                    r.send(204, new byte[0]);
                }
                return;
            }
            if (sandboxId == null) {
                if (!validKey(r.header("X-API-Key"))) throw unauthenticated("a valid X-API-Key header is required");
                if (!control.handle(r) && !egress.handle(r) && !packages.handle(r)) throw StockadeError.notFound("no route " + r.method() + " " + path);
                return;
            }
            if (plane == Plane.CODE) {
                Sandbox sb = authorize(r, sandboxId, CODE_TOKENS);
                if (!code.handle(r, sb)) throw StockadeError.notFound("no route " + r.method() + " " + path + " on the code interpreter");
                return;
            }
            EnvdContext ctx = new EnvdContext(authorizeEnvd(r, sandboxId), EnvdContext.userFrom(
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
            fail(r, plane, e);
        } catch (AgentException e) {
            fail(r, plane, Errors.fromAgent(e));
        } catch (IOException e) {
            // The client went away mid-response: nothing left to tell it.
            LOG.log(Level.FINE, "client connection failed", e);
        } catch (RuntimeException e) {
            LOG.log(Level.SEVERE, "bug: unhandled failure on " + r.method() + " " + path, e);
            fail(r, plane, new StockadeError(StockadeError.Code.INTERNAL, "internal error (a bug in Stockade): " + e));
        } finally {
            exchange.close();
        }
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
        boolean keyOk = validKey(r.header("X-API-Key"));
        SandboxManager.Access access = new SandboxManager.Access.Denied();
        for (String h : tokenHeaders) {
            access = manager.access(sandboxId, r.header(h));
            if (!(access instanceof SandboxManager.Access.Denied)) break;
        }
        return switch (access) {
            case SandboxManager.Access.Granted g -> g.sandbox();
            case SandboxManager.Access.Gone gone -> throw gone(sandboxId);
            case SandboxManager.Access.Denied d -> {
                // Unknown or ended sandboxes answer like E2B's proxy (502), whoever asks; a live
                // one without the right credentials answers 401.
                if (!manager.isRunning(sandboxId)) throw gone(sandboxId);
                if (!keyOk) {
                    throw unauthenticated("a valid " + String.join(" or ", tokenHeaders)
                            + " (the sandbox's envdAccessToken) or X-API-Key header is required");
                }
                yield manager.get(sandboxId);
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

    private boolean validKey(String given) {
        return given != null && MessageDigest.isEqual(given.trim().getBytes(StandardCharsets.UTF_8), apiKey);
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
