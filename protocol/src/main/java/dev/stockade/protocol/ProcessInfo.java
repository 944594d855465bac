package dev.stockade.protocol;

import java.util.List;
import java.util.Map;

/**
 * A process the agent is running, as listed by it: the argv, the env given in its request (not
 * the base environment the agent adds), the resolved working directory, and the request's tag.
 */
public record ProcessInfo(int pid, List<String> argv, Map<String, String> env, String cwd, String tag) {}
