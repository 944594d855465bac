package dev.stockade.runtime.oci;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Not a test: times N sandbox-disk creates of one size, by mkfs (as before issue 16) and by copying a
 * blank ({@link BlankDisks}), as the image alone and as LoopDisk's whole create (image, loop device,
 * mount; unmounted again after each). Wall time per create (median, p90) and the CPU of the JVM and
 * its children (mkfs) per create. Run as root from the module, after `mvn -pl runtime-oci -am
 * test-compile`, with the classpath of the test run, e.g.:
 * <pre>
 *   java -cp runtime-oci/target/classes:runtime-oci/target/test-classes:runtime-spi/target/classes \
 *       dev.stockade.runtime.oci.DiskCreateBench /var/tmp/disk-bench 50 1024
 * </pre>
 */
final class DiskCreateBench {
    private DiskCreateBench() {}

    public static void main(String[] args) throws Exception {
        Path dir = Path.of(args.length > 0 ? args[0] : "/var/tmp/disk-bench");
        int n = args.length > 1 ? Integer.parseInt(args[1]) : 50;
        int diskMB = args.length > 2 ? Integer.parseInt(args[2]) : 1024;
        Files.createDirectories(dir);
        Path notADir = Files.writeString(dir.resolve("no-blanks"), "");
        BlankDisks blanks = new BlankDisks(dir.resolve("disks"));
        BlankDisks none = new BlankDisks(notADir); // copyTo says no at once: LoopDisk runs mkfs
        blanks.blank(diskMB); // made once, before timing, as a running server has it
        for (int round = 0; round < 2; round++) { // the first round warms the JIT up
            time("image by mkfs", n, round, dir, i -> LoopDisk.mkfs(dir.resolve("i" + i), diskMB));
            time("image by copy", n, round, dir, i -> blanks.copyTo(dir.resolve("i" + i), diskMB));
            time("create by mkfs", n, round, dir, i -> mountAndUnmount(dir, i, diskMB, none));
            time("create by copy", n, round, dir, i -> mountAndUnmount(dir, i, diskMB, blanks));
        }
        Files.delete(notADir);
    }

    private interface Step {
        void run(int i) throws Exception;
    }

    private static void mountAndUnmount(Path dir, int i, int diskMB, BlankDisks blanks) throws Exception {
        BundleLayout layout = new BundleLayout(dir.resolve("s" + i));
        Files.createDirectories(layout.disk());
        LoopDisk.create(layout, diskMB, blanks);
        if (Libc.umount2(layout.disk().toString(), 0) != 0) throw new IllegalStateException("umount " + layout.disk());
    }

    private static void time(String what, int n, int round, Path dir, Step step) throws Exception {
        long[] wall = new long[n];
        long cpu0 = cpuTicks();
        for (int i = 0; i < n; i++) {
            long t0 = System.nanoTime();
            step.run(i);
            wall[i] = System.nanoTime() - t0;
        }
        long cpu = cpuTicks() - cpu0;
        for (int i = 0; i < n; i++) {
            Files.deleteIfExists(dir.resolve("i" + i));
            BundleLayout layout = new BundleLayout(dir.resolve("s" + i));
            if (Files.exists(layout.state())) TemplateBuilder.deleteTree(layout.state());
        }
        Arrays.sort(wall);
        if (round == 0) return;
        System.out.printf("%-15s n=%d  wall median %.2f ms, p90 %.2f ms;  CPU (JVM + children) %.2f ms per create%n",
                what, n, wall[n / 2] / 1e6, wall[n * 9 / 10] / 1e6, cpu * 10.0 / n);
    }

    /** utime + stime + cutime + cstime of this process, in clock ticks (1/100 s). */
    private static long cpuTicks() throws Exception {
        String stat = Files.readString(Path.of("/proc/self/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(f[11]) + Long.parseLong(f[12]) + Long.parseLong(f[13]) + Long.parseLong(f[14]);
    }
}
