package dev.stockade.server.egress;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Resolves host names on the host, for the proxy: the operator's static overrides first,
 * otherwise the JDK resolver on a virtual thread, bounded in time ({@code connectTimeout}), in
 * concurrent lookups (64 for the whole server) and in answers (the first 16 addresses).
 * Nothing the sandbox says about addresses is ever used.
 */
final class HostResolver {
    static final int MAX_CONCURRENT = 64;
    static final int MAX_ADDRESSES = 16;

    private final Map<String, List<InetAddress>> overrides;
    private final Duration timeout;
    private final Semaphore lookups = new Semaphore(MAX_CONCURRENT);

    HostResolver(Map<String, List<InetAddress>> overrides, Duration timeout) {
        this.overrides = Map.copyOf(overrides);
        this.timeout = timeout;
    }

    /**
     * The addresses of {@code host} (a normalized name, not an IP literal), in resolver order.
     *
     * @throws UnknownHostException with a readable message when the name does not resolve in time
     */
    List<InetAddress> resolve(String host) throws UnknownHostException {
        List<InetAddress> fixed = overrides.get(host);
        if (fixed != null) {
            return fixed;
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        try {
            if (!lookups.tryAcquire(timeout.toNanos(), TimeUnit.NANOSECONDS)) {
                throw new UnknownHostException("too many name lookups in progress");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UnknownHostException("interrupted while resolving " + host);
        }
        CompletableFuture<InetAddress[]> lookup = new CompletableFuture<>();
        Thread.ofVirtual().name("egress-dns").start(() -> {
            try {
                lookup.complete(InetAddress.getAllByName(host));
            } catch (Throwable t) {
                lookup.completeExceptionally(t);
            } finally {
                lookups.release();
            }
        });
        try {
            InetAddress[] all = lookup.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            return List.of(Arrays.copyOf(all, Math.min(all.length, MAX_ADDRESSES)));
        } catch (TimeoutException e) {
            throw new UnknownHostException(host + " did not resolve within " + timeout.toMillis() + " ms");
        } catch (ExecutionException e) {
            throw new UnknownHostException(host + " does not resolve");
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new UnknownHostException("interrupted while resolving " + host);
        }
    }
}
