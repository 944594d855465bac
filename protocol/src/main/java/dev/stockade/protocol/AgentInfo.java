package dev.stockade.protocol;

/** The agent's answer to hello: its version and its pid (1 when it is the sandbox's init). */
public record AgentInfo(String version, int pid) {}
