package dev.stockade.server.session;

import dev.stockade.protocol.AgentException;
import dev.stockade.protocol.CellEvent;
import dev.stockade.protocol.ContextInfo;
import dev.stockade.protocol.CreateContext;
import dev.stockade.protocol.EntryInfo;
import dev.stockade.protocol.ExecRequest;
import dev.stockade.protocol.ExecuteCell;
import dev.stockade.protocol.ProcessInfo;
import dev.stockade.protocol.WatchEvent;
import dev.stockade.protocol.WatchRequest;
import dev.stockade.protocol.link.AgentClient;
import dev.stockade.protocol.link.EventStream;
import dev.stockade.server.core.Sandbox;
import dev.stockade.server.error.StockadeError;
import java.io.InputStream;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Function;

/**
 * The data plane: every command, cell, file and context operation on a sandbox goes through here,
 * so that the rules for them hold in one place, whichever wire protocol asked —
 * <ul>
 *   <li>the state check: only a running sandbox is reached (NOT_FOUND otherwise);
 *   <li>activity for the idle policy: an operation counts from its start until it returns, a
 *       stream ({@link CommandRun}, {@link CellRun}, {@link FileDownload}) until it is closed;
 *   <li>the server's limits behind the agent's ({@link Backstop}): a command or a cell the agent does
 *       not stop in time, or that floods past its output limit, is ended by the server;
 *   <li>the agent's failures as the server's error type ({@link AgentErrors}): no AgentException
 *       leaves this package, so the HTTP layer never sees the agent link.
 * </ul>
 * The HTTP handlers translate wire messages into these calls and the events back into wire messages.
 *
 * <p>Stateless and thread-safe; called on the requests' virtual threads, blocking.
 */
public final class Sessions {

    // ---- commands -------------------------------------------------------------------------------

    /** Starts a command under the server's backstop for its timeout and output limit. */
    public CommandRun exec(Sandbox sb, ExecRequest request) {
        Backstop backstop = Backstop.command(request.timeoutMillis(), request.outputLimitBytes());
        return stream(sb, agent -> agent.exec(request), (stream, done) -> new CommandRun(sb, stream, backstop, done));
    }

    /** Attaches to a running (or just ended) process; its limits are those it was started with. */
    public CommandRun attach(Sandbox sb, int pid) {
        return stream(sb, agent -> agent.attach(pid), (stream, done) -> new CommandRun(sb, stream, Backstop.NONE, done));
    }

    public List<ProcessInfo> processes(Sandbox sb) {
        return call(sb, AgentClient::listProcesses);
    }

    /** The pid of the running process tagged {@code tag}; NOT_FOUND when there is none. */
    public int pidOfTag(Sandbox sb, String tag) {
        for (ProcessInfo p : processes(sb)) {
            if (tag.equals(p.tag())) return p.pid();
        }
        throw StockadeError.notFound("no process with tag '" + tag + "'");
    }

    public void sendInput(Sandbox sb, int pid, byte[] data) {
        run(sb, agent -> agent.sendInput(pid, data));
    }

    /** Sets the size of the terminal process {@code pid} runs on. */
    public void resize(Sandbox sb, int pid, ExecRequest.TerminalSize size) {
        run(sb, agent -> agent.resize(pid, size));
    }

    public void closeStdin(Sandbox sb, int pid) {
        run(sb, agent -> agent.closeStdin(pid));
    }

    public void signal(Sandbox sb, int pid, String signal) {
        run(sb, agent -> agent.signal(pid, signal));
    }

    // ---- files ----------------------------------------------------------------------------------

    public EntryInfo stat(Sandbox sb, String path, String user) {
        return call(sb, agent -> agent.stat(path, user));
    }

    public List<EntryInfo> listDir(Sandbox sb, String path, int depth, String user) {
        return call(sb, agent -> agent.listDir(path, depth, user));
    }

    /** Creates the directory and its parents; false if it already existed. */
    public boolean makeDir(Sandbox sb, String path, String user) {
        return call(sb, agent -> agent.makeDir(path, user));
    }

    public EntryInfo move(Sandbox sb, String source, String destination, String user) {
        return call(sb, agent -> agent.move(source, destination, user));
    }

    /** Removes a file or a directory tree; false when nothing was there. */
    public boolean remove(Sandbox sb, String path, String user) {
        return call(sb, agent -> {
            try {
                agent.remove(path, user);
                return true;
            } catch (AgentException e) {
                if (e.code() == AgentException.Code.NOT_FOUND) return false;
                throw e;
            }
        });
    }

    public FileDownload readFile(Sandbox sb, String path, String user) {
        return stream(sb, agent -> agent.readFile(path, user), (read, done) -> new FileDownload(sb, read, done));
    }

    /** Writes {@code content} to {@code path}; a failure of {@code content} itself propagates as it is. */
    public EntryInfo writeFile(Sandbox sb, String path, InputStream content, String user) {
        return call(sb, agent -> agent.writeFile(path, content, user));
    }

    /** As {@link #writeFile(Sandbox, String, InputStream, String)}, the file then holding exactly {@code metadata}. */
    public EntryInfo writeFile(Sandbox sb, String path, InputStream content, String user, Map<String, String> metadata) {
        return call(sb, agent -> agent.writeFile(path, content, user, metadata));
    }

    /**
     * Watches a directory; returns once the watch is set up (NOT_FOUND for a missing path,
     * INVALID_ARGUMENT for a file, a directory the user may not read, or past the sandbox's limits).
     */
    public DirWatch watchDir(Sandbox sb, WatchRequest request) {
        return stream(sb, agent -> agent.watchDir(request), (stream, done) -> new DirWatch(sb, stream, done));
    }

    /** The polled form of {@link #watchDir}: starts a watch that outlives the request; returns its id. */
    public String createWatcher(Sandbox sb, WatchRequest request) {
        return call(sb, agent -> agent.createWatcher(request));
    }

    /** The changes of a polled watch since the last call; NOT_FOUND for an unknown id, INTERNAL once events were lost. */
    public List<WatchEvent.Changed> watcherEvents(Sandbox sb, String id) {
        return call(sb, agent -> agent.watcherEvents(id));
    }

    public void removeWatcher(Sandbox sb, String id) {
        run(sb, agent -> agent.removeWatcher(id));
    }

    // ---- code contexts and cells ----------------------------------------------------------------

    public ContextInfo createContext(Sandbox sb, CreateContext request) {
        return call(sb, agent -> agent.createContext(request));
    }

    public List<ContextInfo> contexts(Sandbox sb) {
        return call(sb, AgentClient::listContexts);
    }

    public void deleteContext(Sandbox sb, String id) {
        run(sb, agent -> agent.deleteContext(id));
    }

    public ContextInfo restartContext(Sandbox sb, String id) {
        return call(sb, agent -> agent.restartContext(id));
    }

    /**
     * Runs a cell under the server's backstop. Returns once the agent accepted it (NOT_FOUND for an
     * unknown context, INVALID_ARGUMENT for bad fields); from then on every outcome is an event.
     */
    public CellRun execute(Sandbox sb, ExecuteCell cell) {
        Backstop backstop = Backstop.cell(cell.timeoutMillis(), cell.outputLimitBytes());
        return stream(sb, agent -> agent.execute(cell),
                (EventStream<CellEvent> stream, Runnable done) -> new CellRun(sb, stream, cell.contextId(), backstop, done));
    }

    // ---- the rules ------------------------------------------------------------------------------

    /** A unary operation: counted as activity while it runs, its failure translated. */
    private static <T> T call(Sandbox sb, Function<AgentClient, T> operation) {
        AgentClient agent = sb.agent(); // the state check: NOT_FOUND unless running
        sb.requestStarted();
        try {
            return operation.apply(agent);
        } catch (AgentException e) {
            throw AgentErrors.translate(e);
        } finally {
            sb.requestEnded();
        }
    }

    private interface Operation {
        void apply(AgentClient agent);
    }

    private static void run(Sandbox sb, Operation operation) {
        call(sb, agent -> {
            operation.apply(agent);
            return null;
        });
    }

    /** How a stream of the link becomes one of the data plane, given the action that ends its activity. */
    private interface Wrap<S, R> {
        R wrap(S stream, Runnable done);
    }

    /** An operation that opens a stream: counted as activity until the stream is closed. */
    private static <S extends AutoCloseable, R> R stream(Sandbox sb, Function<AgentClient, S> open, Wrap<S, R> wrap) {
        AgentClient agent = sb.agent();
        sb.requestStarted();
        AtomicBoolean ended = new AtomicBoolean();
        Runnable done = () -> {
            if (ended.compareAndSet(false, true)) sb.requestEnded();
        };
        S stream = null;
        try {
            stream = open.apply(agent);
            return wrap.wrap(stream, done);
        } catch (AgentException e) {
            closeQuietly(stream);
            done.run();
            throw AgentErrors.translate(e);
        } catch (RuntimeException e) {
            closeQuietly(stream);
            done.run();
            throw e;
        }
    }

    private static void closeQuietly(AutoCloseable c) {
        if (c == null) return;
        try {
            c.close();
        } catch (Exception ignored) {
            // already failing; the first failure is the one to report
        }
    }
}
