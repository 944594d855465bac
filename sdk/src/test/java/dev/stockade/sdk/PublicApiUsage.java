package dev.stockade.sdk;

import dev.stockade.protocol.Outcome;
import java.io.InputStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * Compile-only: uses the public API the way the docs show it, from outside the SDK's internals.
 * It is never run; if a change breaks this file's compilation, it breaks users' code too.
 */
@SuppressWarnings("unused")
final class PublicApiUsage {
    private PublicApiUsage() {}

    static void everything() throws Exception {
        try (StockadeClient client = StockadeClient.builder()
                        .apiUrl("http://127.0.0.1:49982")
                        .apiKey("e2b_00")
                        .requestTimeout(Duration.ofSeconds(30))
                        .build();
                Sandbox sandbox = Sandbox.create(client, CreateOptions.builder()
                        .template("base")
                        .timeout(Duration.ofMinutes(5))
                        .metadata("k", "v")
                        .metadata(Map.of())
                        .env("A", "1")
                        .envs(Map.of())
                        .runtime("runc")
                        .limits(Limits.builder().memoryMB(512).cpus(1).pids(64).diskMB(256).outputMB(8)
                                .commandTimeoutSeconds(60).build())
                        .allowOut(List.of())
                        .build())) {
            Sandbox again = client.connect(sandbox.id());
            Sandbox other = client.create();
            Sandbox third = Sandbox.connect(client, Sandbox.create(client).id());
            List<SandboxInfo> all = Sandbox.list(client);
            List<SandboxInfo> same = client.list();
            boolean gone = client.kill("x");
            SandboxInfo info = sandbox.info();
            sandbox.setTimeout(Duration.ofMinutes(10));

            Commands commands = sandbox.commands();
            CommandResult r = commands.run("echo hi");
            r = commands.run("echo hi", RunOptions.builder()
                    .cwd("/tmp").user("user").env("B", "2").envs(Map.of())
                    .timeout(Duration.ZERO).onStdout(System.out::print).onStderr(System.err::print).stdin(false)
                    .build());
            int code = r.exitCode();
            Outcome outcome = r.outcome();
            String reason = r.reason();
            CommandHandle h = commands.start("sleep 1", RunOptions.defaults());
            h = commands.start("sleep 1");
            h.sendStdin("x");
            h.sendStdin(new byte[0]);
            h.closeStdin();
            String soFar = h.stdout() + h.stderr();
            CommandResult done = h.waitFor();
            boolean killed = h.kill() || commands.kill(h.pid());
            h.disconnect();
            CommandHandle followed = commands.connect(1);
            followed = commands.connect(1, RunOptions.defaults());
            List<ProcessInfo> procs = commands.list();
            commands.sendStdin(1, "x");
            commands.sendStdin(1, new byte[0]);
            commands.closeStdin(1);

            Filesystem files = sandbox.files();
            EntryInfo e = files.write("/a", "text");
            e = files.write("/a", new byte[0]);
            e = files.write("/a", InputStream.nullInputStream());
            e = files.write("/a", Path.of("local"));
            String text = files.read("/a");
            byte[] bytes = files.readBytes("/a");
            try (InputStream in = files.readStream("/a")) {
                in.transferTo(System.out);
            }
            List<EntryInfo> entries = files.list("/");
            entries = files.list("/", 2);
            boolean exists = files.exists("/a");
            EntryInfo described = files.getInfo("/a");
            boolean made = files.makeDir("/d");
            EntryInfo moved = files.rename("/a", "/b");
            files.remove("/b");
            FileType type = described.type();

            Execution ex = sandbox.runCode("x = 1\nx + 1");
            CodeContext ctx = sandbox.createCodeContext();
            ctx = sandbox.createCodeContext("/tmp");
            ex = sandbox.runCode("print(x)", RunCodeOptions.builder()
                    .context(ctx).env("C", "3").envs(Map.of()).timeout(Duration.ofSeconds(30))
                    .onStdout(System.out::print).onStderr(System.err::print)
                    .onResult(res -> System.out.println(res.text())).onError(err -> System.err.println(err.name()))
                    .build());
            ex = sandbox.runCode("1", RunCodeOptions.defaults());
            String value = ex.text();
            for (Result res : ex.results()) {
                byte[] png = res.pngBytes();
                byte[] jpeg = res.jpegBytes();
                byte[] pdf = res.pdfBytes();
                String html = res.html() + res.markdown() + res.svg() + res.latex() + res.json() + res.javascript() + res.chart();
                boolean main = res.isMainResult();
                List<String> formats = res.formats();
            }
            String printed = ex.logs().stdoutText() + ex.logs().stderrText() + ex.logs().stdout() + ex.logs().stderr();
            ExecutionError err = ex.error();
            String where = err == null ? "" : err.name() + err.value() + err.traceback();
            int count = ex.executionCount();
            Outcome how = ex.outcome();
            String why = ex.reason();
            boolean lost = ex.stateLost();
            for (CellFile f : ex.files()) {
                byte[] content = files.readBytes(f.path() + f.name() + f.size());
            }
            List<CodeContext> contexts = sandbox.listCodeContexts();
            sandbox.restartCodeContext(ctx);
            sandbox.restartCodeContext(ctx.id());
            sandbox.removeCodeContext(ctx);
            sandbox.removeCodeContext(ctx.id() + ctx.language() + ctx.cwd());
        } catch (CommandExitException e) {
            CommandResult result = e.result();
        } catch (NotFoundException | AuthenticationException | InvalidArgumentException | TimeoutException
                | RateLimitException | SandboxException e) {
            int status = e.statusCode();
        } catch (StockadeException e) {
            throw e;
        }
    }
}
