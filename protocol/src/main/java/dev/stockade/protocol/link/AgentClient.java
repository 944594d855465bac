package dev.stockade.protocol.link;

import dev.stockade.protocol.AgentEvent;
import dev.stockade.protocol.AgentInfo;
import dev.stockade.protocol.CellEvent;
import dev.stockade.protocol.ContextInfo;
import dev.stockade.protocol.CreateContext;
import dev.stockade.protocol.EntryInfo;
import dev.stockade.protocol.ExecRequest;
import dev.stockade.protocol.ExecuteCell;
import dev.stockade.protocol.ProcessInfo;
import dev.stockade.protocol.WatchEvent;
import dev.stockade.protocol.WatchRequest;
import java.io.InputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * The host's side of the link to one sandbox's agent (see docs/agent-protocol.md).
 *
 * <p>Thread-safe: every call opens its own connection through the {@link Transport}, so calls from
 * many virtual threads proceed in parallel. Everything read from the agent is hostile: frame sizes,
 * JSON and paths are bounded and validated here; a misbehaving agent yields {@link AgentException}
 * with code PROTOCOL, never a hang past the call's deadline or an unbounded allocation.
 *
 * <p>Deadlines: unary calls must complete within the call timeout (30 s unless given to
 * {@link #over(Transport, Duration)}), else TIMEOUT. Event streams wait as long as the caller likes
 * between events ({@link EventStream#next}), and file reads and writes apply the call timeout to
 * each frame. An agent that cannot be reached (a missing or refusing socket) is UNAVAILABLE.
 *
 * <p>Paths and users: relative paths (and {@code ~}) resolve against the user's home inside the
 * sandbox; {@code user} is "user" (uid 1000) or "root" (the sandbox's root), null meaning "user".
 * Paths in answers are the sandbox's, for showing to clients: never use one on the host.
 *
 * <p>Called by the server's core (its data plane, its lifecycle) and by tests; blocking, meant for virtual threads.
 */
public interface AgentClient {

    /** The default deadline of unary calls (and of each frame of a file transfer). */
    Duration DEFAULT_CALL_TIMEOUT = Duration.ofSeconds(30);

    /** A client reaching the agent through {@code transport}, with {@code callTimeout} for unary calls and per file frame. */
    static AgentClient over(Transport transport, Duration callTimeout) {
        return new FramedAgentClient(transport, callTimeout);
    }

    /** A client of the agent listening on {@code socket}, without a peer check (tests, tools). */
    static AgentClient unix(Path socket) {
        return over(new UnixSocketTransport(socket), DEFAULT_CALL_TIMEOUT);
    }

    /** As {@link #unix(Path)}, with another deadline for unary calls (and per file frame). */
    static AgentClient unix(Path socket, Duration callTimeout) {
        return over(new UnixSocketTransport(socket), callTimeout);
    }

    /**
     * A client that refuses any connection whose peer does not run as host uid {@code peerUid}:
     * the server passes the sandbox's root uid so a socket swapped from inside leads nowhere.
     */
    static AgentClient unix(Path socket, Duration callTimeout, long peerUid) {
        return over(new UnixSocketTransport(socket, peerUid), callTimeout);
    }

    /**
     * Waits until the agent answers, up to {@code timeout}, retrying while its socket is missing
     * or refuses connections (the agent is starting). TIMEOUT if it never answered.
     */
    AgentInfo hello(Duration timeout);

    /**
     * Starts a process; returns once the agent has reported its pid (or failed to start it:
     * NOT_FOUND for a missing executable, INVALID_ARGUMENT for a bad cwd, user or env name,
     * PERMISSION_DENIED for one that may not be executed). The stream's first event is
     * {@link AgentEvent.Started} with the pid. Closing the stream does not stop the process.
     */
    EventStream<AgentEvent> exec(ExecRequest request);

    /**
     * Attaches to a running process's output from now on and its end event; to one that ended
     * less than a minute ago, the stream holds just Started and Ended. PROCESS_NOT_FOUND otherwise.
     */
    EventStream<AgentEvent> attach(int pid);

    /** The processes started through {@link #exec} that are still running. */
    List<ProcessInfo> listProcesses();

    /**
     * Writes to the process's stdin (it must have been started with {@code stdin = true}) or to its
     * terminal; returns once the data is in the pipe, which waits while the process does not read.
     */
    void sendInput(int pid, byte[] data);

    /**
     * Sets the size of the terminal the process runs on (the kernel sends SIGWINCH to its
     * foreground job). INVALID_ARGUMENT for a process on pipes, PROCESS_NOT_FOUND when it is not running.
     */
    void resize(int pid, ExecRequest.TerminalSize size);

    /** Closes the process's stdin, so that it reads end-of-file. Idempotent. INVALID_ARGUMENT on a terminal. */
    void closeStdin(int pid);

    /**
     * Sends a signal ("SIGTERM", "SIGKILL", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", ...; any
     * Linux signal name) to the process group of {@code pid}. If it dies of that signal its outcome
     * is KILLED. INVALID_ARGUMENT for an unknown name, PROCESS_NOT_FOUND when it is not running.
     */
    void signal(int pid, String signal);

    /**
     * Describes the entry at {@code path}. A symlink is followed: type, size, mode and owner are
     * the target's, and {@code symlinkTarget} holds the resolved target path (type "symlink" only
     * for a dangling link).
     */
    EntryInfo stat(String path, String user);

    /**
     * The entries under the directory {@code path} down to {@code depth} levels (1: its children),
     * sorted by name per directory; symlinked directories are listed, not descended into.
     * NOT_A_DIRECTORY for a file; INVALID_ARGUMENT beyond 100 000 entries.
     */
    List<EntryInfo> listDir(String path, int depth, String user);

    /**
     * Creates the directory and its missing parents, owned by {@code user}; returns false if it
     * already existed as a directory. NOT_A_DIRECTORY if it or a parent exists as something else.
     */
    boolean makeDir(String path, String user);

    /**
     * Renames {@code source} to {@code destination} (copying across filesystems), creating the
     * destination's parents; replaces an existing file; returns the moved entry.
     */
    EntryInfo move(String source, String destination, String user);

    /** Removes a file, a symlink (not its target), or a directory with everything in it. */
    void remove(String path, String user);

    /**
     * Opens a regular file for reading; fails with NOT_FOUND, IS_A_DIRECTORY, INVALID_ARGUMENT
     * (not a regular file) etc. before any byte is returned. The content stream throws
     * AgentException when the agent fails mid-way. Close it.
     */
    FileRead readFile(String path, String user);

    /**
     * Writes (atomically replaces: temporary file, then rename) a file, creating parent
     * directories owned by {@code user}. A new file is owned by {@code user} with mode 0644; a
     * replaced one keeps its mode and owner. A symlink at {@code path} is written through.
     * The content stream is read without deadline; its IOException is thrown as UncheckedIOException.
     */
    default EntryInfo writeFile(String path, InputStream content, String user) {
        return writeFile(path, content, user, Map.of());
    }

    /**
     * As {@link #writeFile(String, InputStream, String)}, storing {@code metadata} with the new
     * file ({@link dev.stockade.protocol.FileMetadata}; the caller checked it): the file then has
     * exactly these pairs, so an empty map clears what the replaced file had. INVALID_ARGUMENT
     * when the sandbox's filesystem cannot hold them (no user extended attributes).
     */
    EntryInfo writeFile(String path, InputStream content, String user, Map<String, String> metadata);

    /**
     * Watches a directory (with inotify inside the sandbox) and returns once the watch is set up:
     * changes made afterwards are reported. NOT_FOUND for a missing path, NOT_A_DIRECTORY for
     * another entry, PERMISSION_DENIED when the user may not read it, INVALID_ARGUMENT past the
     * sandbox's limits (32 watchers, 8192 watched directories). The stream ends with
     * {@link WatchEvent.Ended} when the directory is removed or moved away, and fails with INTERNAL
     * when events were lost (a queue overflowed). Closing the stream ends the watch.
     */
    EventStream<WatchEvent> watchDir(WatchRequest request);

    /**
     * The polled form of {@link #watchDir} (envd's CreateWatcher): starts a watch that outlives the
     * call and returns its id; its changes wait in the agent (4096 at most) for
     * {@link #watcherEvents}. Refused as watchDir is; it counts against the same 32 watchers.
     */
    String createWatcher(WatchRequest request);

    /**
     * The changes of watcher {@code id} since the last call (none is fine), made into names and
     * entries with its creator's permissions. NOT_FOUND for an unknown id; INTERNAL once events
     * were lost (every later call too, until it is removed).
     */
    List<WatchEvent.Changed> watcherEvents(String id);

    /** Ends watcher {@code id}; NOT_FOUND for an unknown id. */
    void removeWatcher(String id);
    // ---- code contexts (docs/agent-protocol.md, "Code contexts") ------------------------------

    /**
     * Starts a new interpreter context and returns once its interpreter is ready (this takes the
     * interpreter's start-up, ~0.3-0.5 s with IPython). INVALID_ARGUMENT for an unknown language,
     * user, a bad cwd or env name; RESOURCE_EXHAUSTED when the sandbox has 64 contexts already or its
     * pids or memory limit refuses the interpreter; INTERNAL when the interpreter does not start (it
     * exited, or was not ready within 60 s: the message quotes its stderr). Waits at least 75 s.
     */
    ContextInfo createContext(CreateContext req);

    /** The sandbox's contexts, the default one included once it exists, oldest first. */
    List<ContextInfo> listContexts();

    /** Kills the context's interpreter and forgets the context; a running cell ends "killed". NOT_FOUND if unknown. */
    void deleteContext(String id);

    /**
     * Kills the context's interpreter and starts a fresh one under the same id (all state lost);
     * returns once it is ready. A running cell ends "killed" with stateLost. NOT_FOUND if unknown.
     */
    ContextInfo restartContext(String id);

    /**
     * Runs a cell. Returns once the agent has accepted it (NOT_FOUND for an unknown context,
     * INVALID_ARGUMENT for bad fields); the cell may still wait for an earlier cell of the same
     * context (one cell at a time per context, at most 60 s, see {@link EventStream#next}).
     * Closing the stream does not stop the cell.
     */
    EventStream<CellEvent> execute(ExecuteCell req);

    /**
     * Pre-warming hook: creates the default python context if it does not exist yet and runs
     * {@code preloadCode} in it silently (e.g. "import numpy, pandas"; null or empty: nothing),
     * so that a user's first cell finds the interpreter started and the imports done. Its output
     * is discarded, it does not count as an execution and lists no files. Returns once done; an
     * exception in the preload code is logged by the agent, not thrown.
     */
    ContextInfo warmDefaultContext(String preloadCode);
}
