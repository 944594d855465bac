package dev.stockade.server.api;

/**
 * Which face of the server a request is for, read from its headers before any route is looked up:
 * without {@code E2b-Sandbox-Id} the control plane (E2B's REST API, Stockade's extensions, the admin
 * API); with it, the sandbox's code interpreter when {@code E2b-Sandbox-Port} is 49999, else its envd —
 * Connect RPCs under {@code /process.} and {@code /filesystem.}, plain HTTP ({@code /files},
 * {@code /health}) for the rest. The plane chooses the credentials a request needs and the shape of
 * its errors (Connect's for RPCs, E2B's {@code {code, message}} elsewhere).
 */
enum Plane {
    CONTROL, CONNECT, FILES, CODE;

    /** The port header the code interpreter SDKs send (Jupyter's port in E2B's template). */
    static final String CODE_INTERPRETER_PORT = "49999";

    static Plane of(String sandboxId, String port, String path) {
        if (sandboxId == null) return CONTROL;
        if (port != null && CODE_INTERPRETER_PORT.equals(port.trim())) return CODE;
        return isRpcPath(path) ? CONNECT : FILES;
    }

    /** Connect RPC paths: {@code /package.Service/Method}. */
    static boolean isRpcPath(String path) {
        return path.startsWith("/process.") || path.startsWith("/filesystem.");
    }

    /** Whether the request is made inside one sandbox (and so names it in a header). */
    boolean inSandbox() {
        return this != CONTROL;
    }
}
