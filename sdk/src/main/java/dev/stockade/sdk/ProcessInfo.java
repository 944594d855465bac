package dev.stockade.sdk;

import java.util.List;
import java.util.Map;

/**
 * A process running in a sandbox, as {@link Commands#list()} reports it.
 *
 * @param pid its process id inside the sandbox
 * @param tag the tag it was started with, or null
 * @param cmd the executable (commands started by {@link Commands#run} are {@code /bin/bash})
 * @param args its arguments
 * @param envs the environment variables the caller set
 * @param cwd its working directory, or null when the server does not say
 */
public record ProcessInfo(int pid, String tag, String cmd, List<String> args, Map<String, String> envs, String cwd) {
    public ProcessInfo {
        args = args == null ? List.of() : List.copyOf(args);
        envs = envs == null ? Map.of() : Map.copyOf(envs);
    }
}
