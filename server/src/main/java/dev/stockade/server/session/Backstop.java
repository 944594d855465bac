package dev.stockade.server.session;

/**
 * The server's own limits behind the agent's: the agent enforces a command's or a cell's timeout
 * and output limit, but it runs inside the sandbox and is not trusted, so the server ends a run that
 * outlives its deadline by a grace period or forwards more than its output limit plus some slack.
 * One policy for commands and cells; only the grace differs, for the reasons given below.
 *
 * @param deadlineNanos System.nanoTime() after which the server ends the run; 0: none
 * @param outputCap bytes of output after which the server ends the run; 0: none
 * @param timeoutMillis the run's timeout as the agent was told it, for messages
 * @param outputLimit the run's output limit as the agent was told it, for messages
 */
record Backstop(long deadlineNanos, long outputCap, long timeoutMillis, long outputLimit) {
    /** A stream that only watches (attaching to a running process): the limits are its starter's. */
    static final Backstop NONE = new Backstop(0, 0, 0, 0);

    /** How much later than the agent the server stops a command: the agent kills at once at its deadline. */
    static final long COMMAND_GRACE_MILLIS = 5_000;
    /**
     * How much later than the agent the server stops a cell: a cell may first wait up to 60 s for an
     * earlier cell of its context, then run to its timeout, then be interrupted and, 2 s later, have
     * its interpreter restarted.
     */
    static final long CELL_GRACE_MILLIS = 60_000 + 20_000;
    /** Output forwarded beyond the limit before the server steps in (the agent cuts at the limit). */
    static final long OUTPUT_SLACK = 1024 * 1024;

    static Backstop command(long timeoutMillis, long outputLimit) {
        return of(timeoutMillis, outputLimit, COMMAND_GRACE_MILLIS);
    }

    static Backstop cell(long timeoutMillis, long outputLimit) {
        return of(timeoutMillis, outputLimit, CELL_GRACE_MILLIS);
    }

    private static Backstop of(long timeoutMillis, long outputLimit, long graceMillis) {
        return new Backstop(System.nanoTime() + (timeoutMillis + graceMillis) * 1_000_000L, outputLimit + OUTPUT_SLACK,
                timeoutMillis, outputLimit);
    }

    /** Nanoseconds left until the deadline (≤ 0: passed); Long.MAX_VALUE without one. */
    long nanosLeft() {
        return deadlineNanos == 0 ? Long.MAX_VALUE : deadlineNanos - System.nanoTime();
    }

    /** True once {@code forwarded} bytes of output are more than the cap allows. */
    boolean overOutput(long forwarded) {
        return outputCap != 0 && forwarded > outputCap;
    }
}
