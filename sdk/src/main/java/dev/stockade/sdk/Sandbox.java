package dev.stockade.sdk;

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
 * }
 * }</pre>
 */
public final class Sandbox implements AutoCloseable {
    private final StockadeClient client;
    private final String id;
    private final Commands commands;
    private final Filesystem files;

    Sandbox(StockadeClient client, ControlPlane.Connection connection) {
        this.client = client;
        this.id = connection.sandboxId();
        EnvdClient envd = new EnvdClient(client.transport(), id, connection.accessToken());
        this.commands = new CommandsImpl(envd);
        this.files = new FilesystemImpl(envd);
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
