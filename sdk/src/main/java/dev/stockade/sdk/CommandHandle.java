package dev.stockade.sdk;

/**
 * A command started with {@link Commands#start} or followed with {@link Commands#connect}, like
 * E2B's {@code CommandHandle}. Thread-safe. The SDK reads the command's output on a virtual thread
 * of its own from the moment the handle exists, whether or not anybody waits.
 */
public interface CommandHandle {

    /** The process id inside the sandbox. */
    int pid();

    /**
     * Waits for the command to end (named after {@link Process#waitFor()}, since
     * {@code Object.wait()} is taken).
     *
     * @throws CommandExitException when it exits with a non-zero code
     * @throws TimeoutException when the options' timeout passed first (the command was killed)
     */
    CommandResult waitFor();

    /** The standard output received so far. */
    String stdout();

    /** The standard error received so far. */
    String stderr();

    /** Kills the command with SIGKILL. Returns false when it had already gone. */
    boolean kill();

    /** Writes UTF-8 text to its standard input (start it with {@code stdin(true)}). */
    void sendStdin(String data);

    /** Writes bytes to its standard input (start it with {@code stdin(true)}). */
    void sendStdin(byte[] data);

    /** Closes its standard input, so that it reads end-of-file. */
    void closeStdin();

    /**
     * Stops following the command without killing it: no callback fires after this returns, and
     * {@link #waitFor()} throws. {@link Commands#connect} follows it again.
     */
    void disconnect();
}
