package dev.stockade.cli;

import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;

/**
 * What a command may touch of the outside world: its streams and environment. Tests pass their
 * own; {@link #system()} writes UTF-8 straight to the file descriptors, whatever the locale, so
 * a sandbox's output reaches the terminal byte for byte.
 */
record Io(PrintStream out, PrintStream err, InputStream in, Map<String, String> env) {

    static Io system() {
        return new Io(
                new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8),
                new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8),
                new FileInputStream(FileDescriptor.in),
                System.getenv());
    }

    String env(String name) {
        String v = env.get(name);
        return v == null || v.isBlank() ? null : v.strip();
    }
}
