package dev.stockade.sdk;

import java.util.List;

/**
 * Runs and manages commands in one sandbox ({@link Sandbox#commands()}), like E2B's
 * {@code sandbox.commands}. Each command runs as {@code /bin/bash -l -c <cmd>}. Thread-safe.
 *
 * <pre>{@code
 * CommandResult r = sandbox.commands().run("echo hello");          // waits; throws on exit != 0
 * CommandHandle h = sandbox.commands().start("python3 server.py");  // returns at once
 * }</pre>
 */
public interface Commands {

    /** Runs {@code cmd} with the default options and waits for it. */
    CommandResult run(String cmd);

    /**
     * Runs {@code cmd}, streams its output to the callbacks as it arrives, and waits for it.
     *
     * @throws CommandExitException when it exits with a non-zero code (the result is inside)
     * @throws TimeoutException when it outlives {@link RunOptions#timeout()}; it is killed
     */
    CommandResult run(String cmd, RunOptions options);

    /** Starts {@code cmd} in the background with the default options. */
    CommandHandle start(String cmd);

    /**
     * Starts {@code cmd} in the background and returns once the sandbox reports its pid; output
     * goes to the callbacks as it arrives. The options' timeout still applies (60 s by default,
     * as in E2B): pass {@code Duration.ZERO} for a process that should outlive it.
     */
    CommandHandle start(String cmd, RunOptions options);

    /** Follows a running process (its output from now on, and its end). */
    CommandHandle connect(int pid);

    /** Follows a running process; only the callbacks and timeout of {@code options} apply. */
    CommandHandle connect(int pid, RunOptions options);

    /** The processes running in the sandbox. */
    List<ProcessInfo> list();

    /** Kills a process with SIGKILL. Returns false when there was no such process. */
    boolean kill(int pid);

    /** Writes UTF-8 text to the standard input of a process started with {@code stdin(true)}. */
    void sendStdin(int pid, String data);

    /** Writes bytes to the standard input of a process started with {@code stdin(true)}. */
    void sendStdin(int pid, byte[] data);

    /** Closes the standard input of a process, so that it reads end-of-file. */
    void closeStdin(int pid);
}
