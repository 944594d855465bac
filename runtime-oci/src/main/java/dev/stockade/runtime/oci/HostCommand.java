package dev.stockade.runtime.oci;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs a host binary (runc) with a deadline and bounded captured output. The child's environment is
 * reduced to PATH: nothing of the server's environment is handed to runtimes.
 */
final class HostCommand {
    private static final int MAX_CAPTURE = 64 * 1024;

    record Result(int exitCode, String output) {
        boolean ok() {
            return exitCode == 0;
        }
    }

    private HostCommand() {}

    /** Runs {@code argv}; stdout and stderr are captured together, the first 64 KiB of them. */
    static Result run(List<String> argv, Duration timeout) {
        return run(argv, timeout, null);
    }

    /**
     * Runs {@code argv}. With {@code stdio} set, the child's stdout and stderr go to that file
     * (appended) instead of being captured: used for `runc run -d`, whose container inherits them.
     */
    static Result run(List<String> argv, Duration timeout, Path stdio) {
        ProcessBuilder pb = new ProcessBuilder(argv);
        pb.environment().clear();
        pb.environment().put("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        pb.redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
        if (stdio != null) {
            pb.redirectOutput(ProcessBuilder.Redirect.appendTo(stdio.toFile()));
            pb.redirectError(ProcessBuilder.Redirect.appendTo(stdio.toFile()));
        } else {
            pb.redirectErrorStream(true);
        }
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            return new Result(127, "cannot start " + argv.getFirst() + ": " + e.getMessage());
        }
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Thread reader = null;
        if (stdio == null) {
            reader = Thread.ofVirtual().start(() -> drain(p.getInputStream(), out));
        }
        try {
            if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
                p.destroyForcibly();
                p.waitFor(5, TimeUnit.SECONDS);
                return new Result(124, String.join(" ", argv) + " did not finish within " + timeout.toSeconds() + " s");
            }
            if (reader != null) reader.join(Duration.ofSeconds(5));
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            return new Result(130, "interrupted");
        }
        String text;
        synchronized (out) {
            text = out.toString(StandardCharsets.UTF_8);
        }
        return new Result(p.exitValue(), text.strip());
    }

    private static void drain(InputStream in, ByteArrayOutputStream out) {
        byte[] buf = new byte[8192];
        try (in) {
            int n;
            while ((n = in.read(buf)) >= 0) {
                synchronized (out) {
                    if (out.size() < MAX_CAPTURE) out.write(buf, 0, Math.min(n, MAX_CAPTURE - out.size()));
                }
            }
        } catch (IOException ignored) {
            // the process ended; what was read is what we report
        }
    }
}
