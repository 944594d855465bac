package dev.stockade.server.egress;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;

/**
 * Copies bytes both ways between two endpoints until both directions end: one direction on a new
 * virtual thread, the other on the caller's. The end of one direction is passed on as a half-close;
 * an error in either direction closes both endpoints. Idle tunnels are closed by the proxy's sweep.
 */
final class Splice {
    static final int BUFFER = 64 * 1024;

    private Splice() {}

    /** Runs until both directions are done, then closes both endpoints. */
    static void run(Endpoint a, Endpoint b) {
        Thread other = Thread.ofVirtual().name("egress-splice").start(() -> pump(b, a));
        pump(a, b);
        try {
            other.join();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            a.close();
            b.close();
        }
    }

    private static void pump(Endpoint from, Endpoint to) {
        byte[] buf = new byte[BUFFER];
        InputStream in = from.in();
        OutputStream out = to.out();
        try {
            int n;
            while ((n = in.read(buf)) >= 0) {
                out.write(buf, 0, n);
                if (in.available() == 0) {
                    out.flush();
                }
            }
            out.flush();
            to.shutdownOutput();
        } catch (IOException | RuntimeException e) {
            from.close();
            to.close();
        }
    }
}
