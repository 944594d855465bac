package dev.stockade.server.api;

import dev.stockade.server.audit.AuditLog;
import dev.stockade.server.core.Admission;
import dev.stockade.server.core.SandboxManager;
import dev.stockade.server.packages.PackagePolicy;
import dev.stockade.server.tenancy.TenantAdmin;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/**
 * Every route of the server, each declared once: method, path (as {@code api/openapi.yaml} writes
 * it), plane, the audit log's action, handler. {@link Router} dispatches through it, names audit
 * entries from it, and {@code OpenApiContractIT} holds it against the OpenAPI file ({@link #declared()}).
 * To add a route: one line here, its operation in api/openapi.yaml, its call in OpenApiContractIT.
 *
 * <p>Two rules cover areas rather than routes, because they hold for paths no route matches as
 * well (so an unknown path tells a caller nothing more than a known one): everything under
 * {@code /admin} needs an admin key, and a control-plane path naming {@code {sandboxID}} is checked
 * to be the caller's before its handler runs. Built once at server start; read by request threads.
 */
public final class Routes {
    /** The path parameter naming a sandbox on the control plane: the router checks it is the caller's. */
    static final String SANDBOX_PARAM = "sandboxID";

    /** The endpoint groups the handlers call; the table reaches them only when a route runs. */
    record Endpoints(SandboxLifecycleApi lifecycle, SandboxListApi lists, SnapshotsApi snapshots, EgressApi egress,
                     PackagesApi packages, AdminApi admin, ProcessRpc process, FilesystemRpc filesystem, FilesHttp files,
                     CodeInterpreterApi code, TemplatesApi templates) {
        static Endpoints of(SandboxManager manager, Admission admission, TenantAdmin tenants,
                            dev.stockade.server.tenancy.QuotaGate quotas, AuditLog audit, PackagePolicy packagePolicy,
                            dev.stockade.server.templates.Templates templates) {
            return new Endpoints(new SandboxLifecycleApi(manager, admission), new SandboxListApi(manager),
                    new SnapshotsApi(manager), new EgressApi(manager), new PackagesApi(manager, packagePolicy),
                    new AdminApi(tenants, quotas, audit), new ProcessRpc(), new FilesystemRpc(), new FilesHttp(manager::diskFree),
                    new CodeInterpreterApi(), new TemplatesApi(templates, java.time.Clock.systemUTC()));
        }
    }

    private final List<Route> all;
    private final Map<Plane, List<Route>> byPlane = new EnumMap<>(Plane.class);

    Routes(Endpoints endpoints) {
        this.all = table(endpoints);
        for (Plane p : Plane.values()) byPlane.put(p, new ArrayList<>());
        for (Route r : all) {
            List<Route> plane = byPlane.get(r.plane());
            int at = plane.size();
            for (int i = 0; i < plane.size(); i++) {
                Route other = plane.get(i);
                if (!other.path().overlaps(r.path())) continue;
                // A literal segment where the other has a parameter takes the paths both fit (found first).
                if (r.path().precedes(other.path())) {
                    at = Math.min(at, i);
                } else if (!other.path().precedes(r.path()) && other.method().equals(r.method())) {
                    throw new IllegalStateException("routes " + other.method() + " " + other.path() + " and " + r.path()
                            + " on the " + r.plane() + " plane would match the same requests");
                }
            }
            plane.add(at, r);
        }
    }

    private static List<Route> table(Endpoints e) {
        return List.of(
                // ---- control plane: E2B's REST API ----
                new Route("GET", "/health", Plane.CONTROL, "server.health", (Route.Open) Routes::healthy),
                new Route("HEAD", "/health", Plane.CONTROL, "server.health", (Route.Open) Routes::healthy),
                control("POST", "/sandboxes", "sandbox.create", (r, p) -> e.lifecycle().create(r, p)),
                control("POST", "/v2/sandboxes", "sandbox.create", (r, p) -> e.lifecycle().create(r, p)),
                control("GET", "/sandboxes", "sandbox.list", (r, p) -> e.lists().list(r, p)),
                control("GET", "/v2/sandboxes", "sandbox.list", (r, p) -> e.lists().list(r, p)),
                control("GET", "/sandboxes/{sandboxID}", "sandbox.read", (r, p) -> e.lifecycle().get(r, p)),
                control("DELETE", "/sandboxes/{sandboxID}", "sandbox.kill", (r, p) -> e.lifecycle().kill(r, p)),
                control("POST", "/sandboxes/{sandboxID}/timeout", "sandbox.timeout", (r, p) -> e.lifecycle().timeout(r, p)),
                control("POST", "/sandboxes/{sandboxID}/refreshes", "sandbox.refresh", (r, p) -> e.lifecycle().refresh(r, p)),
                control("POST", "/sandboxes/{sandboxID}/connect", "sandbox.connect", (r, p) -> e.lifecycle().connect(r, p)),
                control("POST", "/v2/sandboxes/{sandboxID}/connect", "sandbox.connect", (r, p) -> e.lifecycle().connect(r, p)),
                control("POST", "/sandboxes/{sandboxID}/pause", "sandbox.pause", (r, p) -> e.lifecycle().pause(r, p)),
                control("GET", "/sandboxes/{sandboxID}/metrics", "sandbox.metrics", (r, p) -> e.lifecycle().metrics(r, p)),
                // ---- control plane: snapshots (a snapshot is a template of its tenant) ----
                control("POST", "/sandboxes/{sandboxID}/snapshots", "snapshot.create", (r, p) -> e.snapshots().create(r, p)),
                control("GET", "/snapshots", "snapshot.list", (r, p) -> e.snapshots().list(r, p)),
                // A template of the Template API (its id or alias), else a snapshot (E2B's deleteSnapshot).
                control("DELETE", "/templates/{templateID}", "template.delete", (r, p) -> {
                    if (!e.templates().delete(r, p)) e.snapshots().delete(r, p);
                }),
                // ---- control plane: E2B's Template API (issue 17) ----
                control("POST", "/v3/templates", "template.build", (r, p) -> e.templates().requestBuild(r, p)),
                control("GET", "/templates/{templateID}/files/{hash}", "template.files", (r, p) -> e.templates().filesUrl(r, p)),
                new Route("PUT", "/templates/{templateID}/files/{hash}", Plane.CONTROL, "template.upload",
                        (Route.Capability) (r, p) -> e.templates().upload(r, p)),
                control("POST", "/v2/templates/{templateID}/builds/{buildID}", "template.start", (r, p) -> e.templates().startBuild(r, p)),
                control("GET", "/templates/{templateID}/builds/{buildID}/status", "template.status", (r, p) -> e.templates().status(r, p)),
                control("GET", "/templates/aliases/{alias}", "template.alias", (r, p) -> e.templates().alias(r, p)),
                control("POST", "/templates/tags", "template.tag", (r, p) -> e.templates().assignTags(r, p)),
                control("DELETE", "/templates/tags", "template.untag", (r, p) -> e.templates().removeTags(r, p)),
                control("GET", "/templates/{templateID}/tags", "template.tags", (r, p) -> e.templates().tags(r, p)),
                control("GET", "/templates", "template.list", (r, p) -> e.templates().list(r, p)),
                control("GET", "/v2/templates", "template.list", (r, p) -> e.templates().list(r, p)),
                // ---- control plane: Stockade's extensions ----
                control("GET", "/runtimes", "runtime.list", (r, p) -> e.lists().runtimes(r, p)),
                control("PUT", "/sandboxes/{sandboxID}/network", "network.policy", (r, p) -> handled(e.egress().handle(r))),
                control("GET", "/sandboxes/{sandboxID}/network", "network.read", (r, p) -> handled(e.egress().handle(r))),
                control("GET", "/sandboxes/{sandboxID}/network/log", "network.log", (r, p) -> handled(e.egress().handle(r))),
                control("POST", "/sandboxes/{sandboxID}/packages", "packages.install", (r, p) -> handled(e.packages().handle(r))),
                control("GET", "/metrics", "metrics.read", (r, p) -> handled(e.egress().handle(r))),
                // ---- control plane: the admin API (admin keys only) ----
                control("GET", "/admin/tenants", "admin.tenants.read", (r, p) -> e.admin().listTenants(r, p)),
                control("POST", "/admin/tenants", "admin.tenants.create", (r, p) -> e.admin().createTenant(r, p)),
                control("GET", "/admin/tenants/{tenant}", "admin.tenants.read", (r, p) -> e.admin().getTenant(r, p)),
                control("PUT", "/admin/tenants/{tenant}/quota", "admin.tenants.update", (r, p) -> e.admin().setQuota(r, p)),
                control("GET", "/admin/keys", "admin.keys.read", (r, p) -> e.admin().listKeys(r, p)),
                control("POST", "/admin/keys", "admin.keys.create", (r, p) -> e.admin().createKey(r, p)),
                control("DELETE", "/admin/keys/{keyID}", "admin.keys.revoke", (r, p) -> e.admin().revokeKey(r, p)),
                control("GET", "/admin/audit", "admin.audit.read", (r, p) -> e.admin().auditLog(r, p)),
                // ---- envd: process.Process (Connect RPC) ----
                rpc("process.Process/Start", (r, c) -> handled(e.process().handle(r, c, "Start"))),
                rpc("process.Process/Connect", (r, c) -> handled(e.process().handle(r, c, "Connect"))),
                rpc("process.Process/List", (r, c) -> handled(e.process().handle(r, c, "List"))),
                rpc("process.Process/SendInput", (r, c) -> handled(e.process().handle(r, c, "SendInput"))),
                rpc("process.Process/SendSignal", (r, c) -> handled(e.process().handle(r, c, "SendSignal"))),
                rpc("process.Process/CloseStdin", (r, c) -> handled(e.process().handle(r, c, "CloseStdin"))),
                // Terminals: recognised, answered "not supported yet" (400).
                rpc("process.Process/Update", (r, c) -> handled(e.process().handle(r, c, "Update"))),
                rpc("process.Process/StreamInput", (r, c) -> handled(e.process().handle(r, c, "StreamInput"))),
                // ---- envd: filesystem.Filesystem (Connect RPC) ----
                rpc("filesystem.Filesystem/Stat", (r, c) -> handled(e.filesystem().handle(r, c, "Stat"))),
                rpc("filesystem.Filesystem/ListDir", (r, c) -> handled(e.filesystem().handle(r, c, "ListDir"))),
                rpc("filesystem.Filesystem/MakeDir", (r, c) -> handled(e.filesystem().handle(r, c, "MakeDir"))),
                rpc("filesystem.Filesystem/Move", (r, c) -> handled(e.filesystem().handle(r, c, "Move"))),
                rpc("filesystem.Filesystem/Remove", (r, c) -> handled(e.filesystem().handle(r, c, "Remove"))),
                // Directory watching: WatchDir streams; CreateWatcher/GetWatcherEvents/RemoveWatcher poll.
                rpc("filesystem.Filesystem/WatchDir", (r, c) -> handled(e.filesystem().handle(r, c, "WatchDir"))),
                rpc("filesystem.Filesystem/CreateWatcher", (r, c) -> handled(e.filesystem().handle(r, c, "CreateWatcher"))),
                rpc("filesystem.Filesystem/GetWatcherEvents", (r, c) -> handled(e.filesystem().handle(r, c, "GetWatcherEvents"))),
                rpc("filesystem.Filesystem/RemoveWatcher", (r, c) -> handled(e.filesystem().handle(r, c, "RemoveWatcher"))),
                // ---- envd: plain HTTP ----
                new Route("GET", "/files", Plane.FILES, "file.read", (Route.Envd) (r, c) -> e.files().handle(r, c)),
                new Route("POST", "/files", Plane.FILES, "file.write", (Route.Envd) (r, c) -> e.files().handle(r, c)),
                new Route("GET", "/health", Plane.FILES, "sandbox.health", (Route.Probe) Routes::running),
                new Route("HEAD", "/health", Plane.FILES, "sandbox.health", (Route.Probe) Routes::running),
                // ---- the code interpreter (E2b-Sandbox-Port: 49999) ----
                code("POST", "/execute", "code.execute", e),
                code("POST", "/contexts", "context.create", e),
                code("GET", "/contexts", "context.list", e),
                code("POST", "/contexts/{contextID}/restart", "context.restart", e),
                code("DELETE", "/contexts/{contextID}", "context.delete", e),
                new Route("GET", "/health", Plane.CODE, "sandbox.health", (Route.Probe) Routes::running),
                new Route("HEAD", "/health", Plane.CODE, "sandbox.health", (Route.Probe) Routes::running));
    }

    private static Route control(String method, String path, String action, Route.Control handler) {
        return new Route(method, path, Plane.CONTROL, action, handler);
    }

    /** A Connect RPC: POST /package.Service/Method, audited as service.Method (process.Start, filesystem.Stat). */
    private static Route rpc(String name, Route.Envd handler) {
        String service = name.substring(0, name.indexOf('/'));
        String action = service.substring(0, service.lastIndexOf('.')) + "." + name.substring(name.indexOf('/') + 1);
        return new Route("POST", "/" + name, Plane.CONNECT, action, handler);
    }

    /** {@link CodeInterpreterApi} dispatches its routes itself (it is rewritten on another branch). */
    private static Route code(String method, String path, String action, Endpoints e) {
        return new Route(method, path, Plane.CODE, action, (Route.Code) (r, sb) -> handled(e.code().handle(r, sb)));
    }

    private static void healthy(Request r) throws java.io.IOException {
        r.sendJson(200, r.json.createObjectNode().put("status", "ok"));
    }

    /**
     * envd's health (the SDK's isRunning(), which sends the sandbox's token): 204 alive, 502 gone
     * (the router's answer before this runs). Unlike E2B it needs the token or a key of the sandbox's
     * tenant, so that it tells nobody else whether an id exists.
     */
    private static void running(Request r, dev.stockade.server.core.Sandbox sb) throws java.io.IOException {
        r.send(204, new byte[0]);
    }

    /** A handler that still finds its own route answers whether it knew it; a table route it must know. */
    private static void handled(boolean known) {
        if (!known) throw new IllegalStateException("bug: a handler did not know a route of the route table");
    }

    /**
     * The sandbox a control-plane path names — {@code /sandboxes/{sandboxID}[/…]} or
     * {@code /v2/sandboxes/{sandboxID}[/…]} — matched by a route or not, or null. The router checks it
     * is the caller's before anything else, so an unknown sub-route or a wrong method on another
     * tenant's sandbox answers what a missing sandbox answers.
     */
    static String sandboxNamed(String path) {
        List<String> s = PathTemplate.split(path);
        int i = !s.isEmpty() && s.getFirst().equals("v2") ? 1 : 0;
        return s.size() > i + 1 && s.get(i).equals("sandboxes") && !s.get(i + 1).isEmpty() ? s.get(i + 1) : null;
    }

    /** Whether a path lies in the admin API, matched by a route or not. */
    static boolean inAdminArea(String path) {
        return path.equals("/admin") || path.startsWith("/admin/");
    }

    /** What a request's method and path are on its plane. */
    sealed interface Lookup {
        /** The action the audit log records for this request. */
        String action();
    }

    /** A route: run it. */
    record Found(Route route, Route.Params params) implements Lookup {
        public String action() {
            return route.action();
        }
    }

    /** The path is a route's, the method none's: a 400 naming both (after the path's checks). */
    record WrongMethod(Route sibling) implements Lookup {
        public String action() {
            return sibling.action();
        }
    }

    /** No route has this path on this plane. */
    record NotFound() implements Lookup {
        public String action() {
            return "route.unknown";
        }
    }

    Lookup find(Plane plane, String method, String path) {
        List<String> segments = PathTemplate.split(path);
        WrongMethod wrong = null;
        for (Route r : byPlane.get(plane)) {
            Map<String, String> params = r.path().match(segments);
            if (params == null) continue;
            if (r.method().equals(method)) return new Found(r, params.isEmpty() ? Route.Params.NONE : new Route.Params(params));
            if (wrong == null) wrong = new WrongMethod(r);
        }
        return wrong != null ? wrong : new NotFound();
    }

    /** A route as the OpenAPI file documents it. */
    public record Declared(String method, String path, String plane, String action) {}

    /**
     * The table without a server: the handlers reach their endpoint groups only when a route runs,
     * so none is needed to read it. For OpenApiContractIT and RoutesTest.
     */
    public static List<Declared> declared() {
        return new Routes(null).all.stream()
                .map(r -> new Declared(r.method(), r.path().text(), r.plane().name(), r.action())).toList();
    }
}
