package dev.stockade.sdk.internal;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.stockade.sdk.CommandHandle;
import dev.stockade.sdk.CommandResult;
import dev.stockade.sdk.Commands;
import dev.stockade.sdk.ProcessInfo;
import dev.stockade.sdk.RunOptions;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Objects;

/** {@link Commands} over envd's {@code process.Process} service. Stateless and thread-safe. */
public final class CommandsImpl implements Commands {
    private final EnvdClient envd;

    public CommandsImpl(EnvdClient envd) {
        this.envd = envd;
    }

    @Override
    public CommandResult run(String cmd) {
        return run(cmd, RunOptions.defaults());
    }

    @Override
    public CommandResult run(String cmd, RunOptions options) {
        return start(cmd, options, true).waitFor();
    }

    @Override
    public CommandHandle start(String cmd) {
        return start(cmd, RunOptions.defaults());
    }

    @Override
    public CommandHandle start(String cmd, RunOptions options) {
        return start(cmd, options, false);
    }

    private CommandHandle start(String cmd, RunOptions options, boolean foreground) {
        Objects.requireNonNull(cmd, "cmd");
        Objects.requireNonNull(options, "options");
        ObjectNode req = Json.object();
        ObjectNode process = req.putObject("process");
        process.put("cmd", "/bin/bash");
        process.putArray("args").add("-l").add("-c").add(cmd);
        if (!options.envs().isEmpty()) options.envs().forEach(process.putObject("envs")::put);
        if (options.cwd() != null) process.put("cwd", options.cwd());
        req.put("stdin", options.stdin());
        String what = "running `" + abbreviate(cmd) + "` in sandbox " + envd.sandboxId();
        long started = System.nanoTime();
        ConnectStream stream = envd.stream("process.Process/Start", req, options.user(), options.timeout(), what);
        return new CommandHandleImpl(this, stream, options.onStdout(), options.onStderr(), options.timeout(),
                foreground, what, started).awaitStart();
    }

    @Override
    public CommandHandle connect(int pid) {
        return connect(pid, RunOptions.defaults());
    }

    @Override
    public CommandHandle connect(int pid, RunOptions options) {
        String what = "following process " + pid + " in sandbox " + envd.sandboxId();
        long started = System.nanoTime();
        ConnectStream stream = envd.stream("process.Process/Connect", selector(pid), null, options.timeout(), what);
        return new CommandHandleImpl(this, stream, options.onStdout(), options.onStderr(), options.timeout(), false,
                what, started).awaitStart();
    }

    @Override
    public List<ProcessInfo> list() {
        String what = "listing processes in sandbox " + envd.sandboxId();
        JsonNode body = envd.unary("process.Process/List", Json.object(), null, what).orThrow(what);
        List<ProcessInfo> out = new ArrayList<>();
        for (JsonNode p : body.path("processes")) out.add(Wire.processInfo(p));
        return out;
    }

    @Override
    public boolean kill(int pid) {
        String what = "killing process " + pid + " in sandbox " + envd.sandboxId();
        ObjectNode req = selector(pid).put("signal", "SIGNAL_SIGKILL");
        EnvdClient.Reply reply = envd.unary("process.Process/SendSignal", req, null, what);
        if (reply.error() != null && reply.error().is("not_found")) return false;
        reply.orThrow(what);
        return true;
    }

    @Override
    public void sendStdin(int pid, String data) {
        sendStdin(pid, data.getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public void sendStdin(int pid, byte[] data) {
        String what = "writing to the stdin of process " + pid + " in sandbox " + envd.sandboxId();
        ObjectNode req = selector(pid);
        req.putObject("input").put("stdin", Base64.getEncoder().encodeToString(data));
        envd.unary("process.Process/SendInput", req, null, what).orThrow(what);
    }

    @Override
    public void closeStdin(int pid) {
        String what = "closing the stdin of process " + pid + " in sandbox " + envd.sandboxId();
        envd.unary("process.Process/CloseStdin", selector(pid), null, what).orThrow(what);
    }

    private static ObjectNode selector(int pid) {
        ObjectNode req = Json.object();
        req.putObject("process").put("pid", pid);
        return req;
    }

    private static String abbreviate(String cmd) {
        String oneLine = cmd.replace('\n', ' ');
        return oneLine.length() <= 60 ? oneLine : oneLine.substring(0, 57) + "...";
    }
}
