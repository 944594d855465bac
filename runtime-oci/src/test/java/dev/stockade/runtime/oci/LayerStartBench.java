package dev.stockade.runtime.oci;

import dev.stockade.runtime.Limits;
import dev.stockade.runtime.SandboxRuntime;
import dev.stockade.runtime.SandboxSpec;
import dev.stockade.runtime.Template;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

/**
 * Not a test: times runc sandbox starts (OciRuntime.start until runc run returns; the init sleeps)
 * of the default template, and of it under 1 and under 5 layers, interleaved, N of each (each
 * destroyed at once), plus the first start of a uid range with layers (it makes the range's user
 * namespace) and the making of a range's user namespace alone. Run as root from the repository, after `mvn -pl runtime-oci -am test-compile`:
 * <pre>
 *   java -cp runtime-oci/target/classes:runtime-oci/target/test-classes:runtime-spi/target/classes:$(cat cp.txt) \
 *       dev.stockade.runtime.oci.LayerStartBench /var/tmp/layer-bench 20
 * </pre>
 * (cp.txt: {@code mvn -pl runtime-oci dependency:build-classpath -Dmdep.outputFile=cp.txt}).
 */
final class LayerStartBench {
    private LayerStartBench() {}

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args.length > 0 ? args[0] : "/var/tmp/layer-bench");
        int n = args.length > 1 ? Integer.parseInt(args[1]) : 20;
        Files.createDirectories(dir);
        Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
        Path agent = dir.resolve("agent");
        Files.createDirectories(agent);
        Files.setPosixFilePermissions(agent, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.writeString(agent.resolve("agent"), "import time\ntime.sleep(600)\n");
        List<Path> layers = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            Path l = dir.resolve("layer" + i);
            Files.createDirectories(l.resolve("opt/l" + i));
            Files.writeString(l.resolve("opt/l" + i + "/f"), "layer " + i + "\n");
            layers.add(l);
        }
        SandboxRuntime runtime = new RuncProvider().create(dir.resolve("state"));
        try {
            Template base = runtime.defaultTemplate();
            List<Template> templates = List.of(base,
                    new Template("one", base.lowerDir(), base.readOnlyBinds(), layers.subList(0, 1)),
                    new Template("five", base.lowerDir(), base.readOnlyBinds(), layers));
            long firstRange = 3_700_065_536L;
            System.out.printf("first start of a range with 1 layer (makes its user namespace): %.1f ms%n",
                    start(runtime, dir, templates.get(1), firstRange + 65536) / 1e6);
            for (int round = 0; round < 2; round++) { // the first round warms the JIT up
                long[][] t = new long[3][n];
                for (int i = 0; i < n; i++) {
                    for (int k = 0; k < 3; k++) t[k][i] = start(runtime, dir, templates.get(k), firstRange);
                }
                if (round == 0) continue;
                for (int k = 0; k < 3; k++) {
                    Arrays.sort(t[k]);
                    System.out.printf("%-8s layers=%d start median %.1f ms, p90 %.1f ms%n", templates.get(k).name(),
                            templates.get(k).layers().size(), t[k][n / 2] / 1e6, t[k][n * 9 / 10] / 1e6);
                }
            }
            long[] ns = new long[n];
            for (int i = 0; i < n; i++) {
                long t0 = System.nanoTime();
                Libc.close(IdmapUserns.create(firstRange + 65536L * (2 + i)));
                ns[i] = System.nanoTime() - t0;
            }
            Arrays.sort(ns);
            System.out.printf("a range's user namespace (once per range, cached): median %.1f ms, p90 %.1f ms%n",
                    ns[n / 2] / 1e6, ns[n * 9 / 10] / 1e6);
            System.out.println("load average: " + Files.readString(Path.of("/proc/loadavg")).strip());
        } finally {
            runtime.reapExcept(Set.of());
            runtime.close();
        }
    }

    private static long start(SandboxRuntime runtime, Path dir, Template template, long uidBase) {
        String id = "b" + Long.toHexString(System.nanoTime());
        SandboxSpec spec = new SandboxSpec(id, uidBase, dir.resolve("state/sandboxes").resolve(id), template,
                dir.resolve("agent"), new Limits(256, 1, 64, 32, 16, 60));
        long t0 = System.nanoTime();
        runtime.start(spec);
        long t = System.nanoTime() - t0;
        runtime.destroy(id);
        return t;
    }
}
