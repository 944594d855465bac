package dev.stockade.sdk;

import java.util.Objects;

/**
 * An interpreter context in a sandbox, like E2B's {@code Context}: one Python process whose
 * variables, imports and functions persist from cell to cell. Contexts are isolated from each
 * other. Pass it to {@link RunCodeOptions.Builder#context} to run cells in it.
 *
 * @param id the context's id
 * @param language its language ({@code python})
 * @param cwd its working directory inside the sandbox
 */
public record CodeContext(String id, String language, String cwd) {
    public CodeContext {
        Objects.requireNonNull(id, "id");
    }
}
