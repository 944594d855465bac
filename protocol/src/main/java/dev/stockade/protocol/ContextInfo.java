package dev.stockade.protocol;

/**
 * An interpreter context as the agent reports it: its id (a UUID; stable across restarts), its
 * language ("python" or "bash"), its resolved working directory (absolute, the sandbox's) and its user.
 */
public record ContextInfo(String id, String language, String cwd, String user) {}
