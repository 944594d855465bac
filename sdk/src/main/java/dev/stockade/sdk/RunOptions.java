package dev.stockade.sdk;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * How to run a command. Every setting is optional.
 *
 * <pre>{@code
 * RunOptions options = RunOptions.builder()
 *         .cwd("/home/user")
 *         .env("DEBUG", "1")
 *         .timeout(Duration.ofMinutes(2))
 *         .onStdout(System.out::print)
 *         .onStderr(System.err::print)
 *         .build();
 * }</pre>
 *
 * <p>The callbacks run on the SDK's reader thread for this command, one at a time and in the order
 * the output arrived, while the command runs. A callback that throws stops the SDK following the
 * command; {@link CommandHandle#waitFor()} then throws a {@link SandboxException} with it as the
 * cause.
 *
 * @param envs environment variables added for this command
 * @param cwd working directory; null for the user's home
 * @param user the user to run as; null for the sandbox default ({@code user})
 * @param timeout how long the command may run, counted from {@link Commands#run}, {@link Commands#start}
 *     or {@link Commands#connect}: when it passes the command is killed (by the server too, as in
 *     E2B, which also applies it to background commands) and {@link Commands#run} or
 *     {@link CommandHandle#waitFor()} throws {@link TimeoutException}. {@link Duration#ZERO} means no
 *     limit; null means {@link #DEFAULT_TIMEOUT}. The sandbox's own {@code commandTimeoutSeconds}
 *     limit applies as well.
 * @param onStdout called with each chunk of standard output, decoded as UTF-8; may be null
 * @param onStderr called with each chunk of standard error, decoded as UTF-8; may be null
 * @param stdin keep the command's standard input open for {@link CommandHandle#sendStdin}; when
 *     false the command reads end-of-file at once
 */
public record RunOptions(
        Map<String, String> envs,
        String cwd,
        String user,
        Duration timeout,
        Consumer<String> onStdout,
        Consumer<String> onStderr,
        boolean stdin) {

    /** E2B's default: 60 seconds. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(60);

    public RunOptions {
        envs = envs == null ? Map.of() : Map.copyOf(envs);
        if (timeout == null) timeout = DEFAULT_TIMEOUT;
        if (timeout.isNegative()) throw new IllegalArgumentException("timeout must not be negative, got " + timeout);
    }

    public static RunOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Builds {@link RunOptions}. Not thread-safe. */
    public static final class Builder {
        private final Map<String, String> envs = new LinkedHashMap<>();
        private String cwd;
        private String user;
        private Duration timeout;
        private Consumer<String> onStdout;
        private Consumer<String> onStderr;
        private boolean stdin;

        private Builder() {}

        public Builder env(String name, String value) {
            envs.put(Objects.requireNonNull(name, "name"), Objects.requireNonNull(value, "value"));
            return this;
        }

        public Builder envs(Map<String, String> values) {
            values.forEach(this::env);
            return this;
        }

        public Builder cwd(String value) {
            cwd = value;
            return this;
        }

        public Builder user(String value) {
            user = value;
            return this;
        }

        public Builder timeout(Duration value) {
            timeout = value;
            return this;
        }

        public Builder onStdout(Consumer<String> value) {
            onStdout = value;
            return this;
        }

        public Builder onStderr(Consumer<String> value) {
            onStderr = value;
            return this;
        }

        public Builder stdin(boolean value) {
            stdin = value;
            return this;
        }

        public RunOptions build() {
            return new RunOptions(envs, cwd, user, timeout, onStdout, onStderr, stdin);
        }
    }
}
