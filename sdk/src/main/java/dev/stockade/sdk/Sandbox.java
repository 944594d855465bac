package dev.stockade.sdk;

import dev.stockade.sdk.internal.CodeInterpreterClient;
import dev.stockade.sdk.internal.CommandsImpl;
import dev.stockade.sdk.internal.ControlPlane;
import dev.stockade.sdk.internal.EnvdClient;
import dev.stockade.sdk.internal.FilesystemImpl;
import java.time.Duration;
import java.util.List;
import java.util.Objects;

/**
 * One isolated sandbox on the server, shaped like E2B's {@code Sandbox}. Closing it kills it, so
 * try-with-resources leaves nothing behind. Thread-safe: several threads may run commands and move
 * files in the same sandbox at once.
 *
 * <pre>{@code
 * try (Sandbox sandbox = Sandbox.create(client, CreateOptions.builder().timeout(Duration.ofMinutes(10)).build())) {
 *     sandbox.files().write("/home/user/hello.py", "print('hello')");
 *     CommandResult r = sandbox.commands().run("python3 hello.py");
 *     System.out.print(r.stdout());
 *     Execution e = sandbox.runCode("x = 40\nx + 2");
 *     System.out.println(e.text());   // 42
 * }
 * }</pre>
 */
public final class Sandbox implements AutoCloseable {
    private final StockadeClient client;
    private final String id;
    private final Commands commands;
    private final Filesystem files;
    private final CodeInterpreterClient code;

    Sandbox(StockadeClient client, ControlPlane.Connection connection) {
        this.client = client;
        this.id = connection.sandboxId();
        EnvdClient envd = new EnvdClient(client.transport(), id, connection.accessToken());
        this.commands = new CommandsImpl(envd);
        this.files = new FilesystemImpl(envd);
        this.code = new CodeInterpreterClient(client.transport(), id, connection.accessToken(),
                connection.trafficAccessToken());
    }

    /** Creates a sandbox with the server's defaults; same as {@code client.create()}. */
    public static Sandbox create(StockadeClient client) {
        return client.create();
    }

    /** Creates a sandbox; same as {@code client.create(options)}. */
    public static Sandbox create(StockadeClient client, CreateOptions options) {
        return client.create(options);
    }

    /** Connects to a running sandbox; same as {@code client.connect(id)}. */
    public static Sandbox connect(StockadeClient client, String sandboxId) {
        return client.connect(sandboxId);
    }

    /** The running sandboxes; same as {@code client.list()}. */
    public static List<SandboxInfo> list(StockadeClient client) {
        return client.list();
    }

    public String id() {
        return id;
    }

    public Commands commands() {
        return commands;
    }

    public Filesystem files() {
        return files;
    }

    /**
     * Runs a cell of Python in the sandbox's default context, like E2B's {@code runCode}: variables,
     * imports and functions persist from cell to cell; the last expression's value, displays and
     * matplotlib figures come back as {@link Result}s. A cell that raises returns normally, with
     * {@link Execution#error()} set.
     *
     * @throws NotFoundException when the sandbox has ended, or the context does not exist
     * @throws TimeoutException when the server did not end the cell well after its timeout
     */
    public Execution runCode(String code) {
        return runCode(code, RunCodeOptions.defaults());
    }

    /** Runs a cell with options: its context, environment, timeout and streaming callbacks. */
    public Execution runCode(String code, RunCodeOptions options) {
        return this.code.run(code, options);
    }

    /** Creates a Python context (a separate interpreter process) whose working directory is /home/user. */
    public CodeContext createCodeContext() {
        return code.createContext(null);
    }

    /** Creates a Python context whose working directory is {@code cwd}. */
    public CodeContext createCodeContext(String cwd) {
        Objects.requireNonNull(cwd, "cwd");
        return code.createContext(cwd);
    }

    /** The sandbox's code contexts, its default one among them. */
    public List<CodeContext> listCodeContexts() {
        return code.listContexts();
    }

    /** Restarts a context's interpreter: its variables and imports are gone afterwards. */
    public void restartCodeContext(CodeContext context) {
        restartCodeContext(Objects.requireNonNull(context, "context").id());
    }

    /** Restarts the context with this id. */
    public void restartCodeContext(String contextId) {
        code.restartContext(Objects.requireNonNull(contextId, "contextId"));
    }

    /** Removes a context and stops its interpreter. */
    public void removeCodeContext(CodeContext context) {
        removeCodeContext(Objects.requireNonNull(context, "context").id());
    }

    /** Removes the context with this id. */
    public void removeCodeContext(String contextId) {
        code.removeContext(Objects.requireNonNull(contextId, "contextId"));
    }

    /**
     * What the server knows about this sandbox now.
     *
     * @throws NotFoundException when it has ended
     */
    public SandboxInfo info() {
        return client.controlPlane().info(id);
    }

    /**
     * Sets the sandbox's remaining lifetime, counted from now (whole seconds, rounded up); it may
     * extend or shorten the current one, up to the server's maximum.
     */
    public void setTimeout(Duration timeout) {
        Objects.requireNonNull(timeout, "timeout");
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout must be positive, got " + timeout);
        }
        client.controlPlane().setTimeout(id, timeout);
    }

    /** Kills the sandbox and every process in it. Returns false when it had already ended. */
    public boolean kill() {
        return client.controlPlane().kill(id);
    }

    /** Kills the sandbox; a sandbox that has already ended is not an error. */
    @Override
    public void close() {
        kill();
    }

    @Override
    public String toString() {
        return "Sandbox[" + id + "]";
    }
}
