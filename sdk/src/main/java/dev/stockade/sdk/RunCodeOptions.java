package dev.stockade.sdk;

import dev.stockade.protocol.Outcome;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;

/**
 * How to run a cell. Every setting is optional.
 *
 * <pre>{@code
 * RunCodeOptions options = RunCodeOptions.builder()
 *         .context(sandbox.createCodeContext())
 *         .env("DEBUG", "1")
 *         .timeout(Duration.ofMinutes(2))
 *         .onStdout(System.out::print)
 *         .onResult(r -> System.out.println(r.text()))
 *         .build();
 * }</pre>
 *
 * <p>The callbacks run on the thread that called {@link Sandbox#runCode(String, RunCodeOptions)},
 * one at a time and in the order the events arrived, while the cell runs. A callback that throws
 * stops following the cell (the cell itself runs on to its end in the sandbox) and the exception
 * propagates out of {@code runCode}.
 *
 * @param context the context to run in; null for the sandbox's default Python context
 * @param envs environment variables set for this cell only
 * @param timeout how long the cell may run: the server interrupts it then and the
 *     {@link Execution} says {@link Outcome#TIMEOUT}. {@link Duration#ZERO} means only the
 *     sandbox's own {@code commandTimeoutSeconds} limit; null means {@link #DEFAULT_TIMEOUT}
 * @param onStdout called with each chunk the cell prints to standard output; may be null
 * @param onStderr called with each chunk the cell prints to standard error; may be null
 * @param onResult called with each result (displays, figures, the main result); may be null
 * @param onError called with the error the cell raised; may be null
 */
public record RunCodeOptions(
        CodeContext context,
        Map<String, String> envs,
        Duration timeout,
        Consumer<String> onStdout,
        Consumer<String> onStderr,
        Consumer<Result> onResult,
        Consumer<ExecutionError> onError) {

    /** E2B's default: 60 seconds. */
    public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(60);

    public RunCodeOptions {
        envs = envs == null ? Map.of() : Map.copyOf(envs);
        if (timeout == null) timeout = DEFAULT_TIMEOUT;
        if (timeout.isNegative()) throw new IllegalArgumentException("timeout must not be negative, got " + timeout);
    }

    public static RunCodeOptions defaults() {
        return builder().build();
    }

    public static Builder builder() {
        return new Builder();
    }

    /** Builds {@link RunCodeOptions}. Not thread-safe. */
    public static final class Builder {
        private final Map<String, String> envs = new LinkedHashMap<>();
        private CodeContext context;
        private Duration timeout;
        private Consumer<String> onStdout;
        private Consumer<String> onStderr;
        private Consumer<Result> onResult;
        private Consumer<ExecutionError> onError;

        private Builder() {}

        public Builder context(CodeContext value) {
            context = value;
            return this;
        }

        public Builder env(String name, String value) {
            envs.put(Objects.requireNonNull(name, "name"), Objects.requireNonNull(value, "value"));
            return this;
        }

        public Builder envs(Map<String, String> values) {
            values.forEach(this::env);
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

        public Builder onResult(Consumer<Result> value) {
            onResult = value;
            return this;
        }

        public Builder onError(Consumer<ExecutionError> value) {
            onError = value;
            return this;
        }

        public RunCodeOptions build() {
            return new RunCodeOptions(context, envs, timeout, onStdout, onStderr, onResult, onError);
        }
    }
}
