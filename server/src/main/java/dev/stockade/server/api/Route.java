package dev.stockade.server.api;

import dev.stockade.server.core.Sandbox;
import java.io.IOException;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * One route of the server, declared once in {@link Routes}: its method, its path (as
 * {@code api/openapi.yaml} writes it), the plane it answers on, the audit log's name for it, and its
 * handler. The handler's kind says what the router establishes before calling it — nothing, an API
 * key, or a sandbox's credential — so a handler cannot be registered on a plane that would call it
 * without the credential it assumes. Checked when the table is built (at server start and in
 * {@code RoutesTest}).
 */
record Route(String method, PathTemplate path, Plane plane, String action, Handler handler) {
    private static final Set<String> METHODS = Set.of("GET", "HEAD", "POST", "PUT", "DELETE");
    private static final Pattern ACTION = Pattern.compile("[a-z]+(\\.[A-Za-z]+)+");

    Route {
        if (!METHODS.contains(method)) throw new IllegalArgumentException("route " + path + ": unknown method " + method);
        if (!ACTION.matcher(action).matches()) throw new IllegalArgumentException("route " + path + ": bad audit action " + action);
        boolean fits = switch (handler) {
            case Open o -> plane == Plane.CONTROL;
            case Control c -> plane == Plane.CONTROL;
            case Capability c -> plane == Plane.CONTROL;
            case Probe p -> plane == Plane.FILES || plane == Plane.CODE;
            case Envd e -> plane == Plane.CONNECT || plane == Plane.FILES;
            case Code c -> plane == Plane.CODE;
        };
        if (!fits) throw new IllegalArgumentException("route " + method + " " + path + ": its handler does not serve the " + plane + " plane");
        if (plane == Plane.CONNECT && !Plane.isRpcPath(path.text()) || plane == Plane.FILES && Plane.isRpcPath(path.text())) {
            throw new IllegalArgumentException("route " + path + ": RPC paths, and only they, are on the CONNECT plane");
        }
        if (plane == Plane.CONNECT && !method.equals("POST")) throw new IllegalArgumentException("route " + path + ": Connect RPCs are POST");
        if ((handler instanceof Open || handler instanceof Probe) && !method.equals("GET") && !method.equals("HEAD")) {
            throw new IllegalArgumentException("route " + path + ": an unauthenticated or unaudited route only reads");
        }
    }

    Route(String method, String path, Plane plane, String action, Handler handler) {
        this(method, PathTemplate.of(path), plane, action, handler);
    }

    /** Values of a matched path's {@code {name}} segments, raw (still percent-encoded). */
    record Params(Map<String, String> values) {
        static final Params NONE = new Params(Map.of());

        Params {
            values = Map.copyOf(values);
        }

        /** A parameter the route's path declares; asking for another is a bug in the table. */
        String get(String name) {
            String v = values.get(name);
            if (v == null) throw new IllegalStateException("bug: the route has no {" + name + "} parameter");
            return v;
        }

        /** The sandbox a control-plane route names, or null: the router checks it is the caller's. */
        String sandboxId() {
            return values.get(Routes.SANDBOX_PARAM);
        }
    }

    /** What a route runs; sealed, so the router's dispatch is an exhaustive switch. */
    sealed interface Handler permits Open, Control, Capability, Probe, Envd, Code {}

    /** No credential, never audited: the control plane's liveness. */
    @FunctionalInterface
    non-sealed interface Open extends Handler {
        void handle(Request r) throws IOException;
    }

    /**
     * Control plane: the caller's API key is valid ({@link Request#principal}), an admin's under
     * {@code /admin}, and a {@code {sandboxID}} in the path is one of the caller's live sandboxes.
     */
    @FunctionalInterface
    non-sealed interface Control extends Handler {
        void handle(Request r, Params params) throws IOException;
    }

    /**
     * Control plane without an API key: the URL carries its own capability (a signature the server
     * made, like a presigned upload URL), which the handler checks before anything else. Audited.
     */
    @FunctionalInterface
    non-sealed interface Capability extends Handler {
        void handle(Request r, Params params) throws IOException;
    }

    /** In a sandbox, not audited and not activity: whether it runs (E2B's isRunning), for its token's holder. */
    @FunctionalInterface
    non-sealed interface Probe extends Handler {
        void handle(Request r, Sandbox sandbox) throws IOException;
    }

    /** envd: the sandbox's token or a key of its tenant, and the user the request acts as. */
    @FunctionalInterface
    non-sealed interface Envd extends Handler {
        void handle(Request r, EnvdContext ctx) throws IOException;
    }

    /** The code interpreter: the sandbox's token (either of its two header names) or a key of its tenant. */
    @FunctionalInterface
    non-sealed interface Code extends Handler {
        void handle(Request r, Sandbox sandbox) throws IOException;
    }
}
