package dev.stockade.cli;

/** A command line that cannot be run as given; the CLI prints the message and exits 2. */
final class UsageException extends Exception {
    private final String command;

    UsageException(String command, String message) {
        super(message);
        this.command = command;
    }

    /** The subcommand whose usage applies, or null for the top level. */
    String command() {
        return command;
    }
}
