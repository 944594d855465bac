package dev.stockade.runtime;

import java.nio.file.Path;

/**
 * A sandbox a runtime has started: where its agent listens, and how the runtime finds it again.
 *
 * @param id the sandbox id
 * @param agentSocket host path of the agent's unix socket
 * @param initPid host pid of the sandbox's init process (the agent), for diagnostics only
 */
public record RuntimeSandbox(String id, Path agentSocket, long initPid) {}
