package dev.stockade.server.packages;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.util.Iterator;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Flow;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * An upstream response body as an {@link InputStream} with the two bounds the JDK's own body stream lacks:
 * a read that waits longer than the idle timeout fails (and cancels the exchange) instead of hanging, and
 * a body longer than the limit fails. Demand is one batch at a time, so a slow reader slows the upstream.
 *
 * <p>The HTTP client's threads call the subscriber methods; one reader thread calls the stream methods.
 */
final class UpstreamBody extends InputStream implements Flow.Subscriber<List<ByteBuffer>> {
    private static final Object END = new Object();

    private final BlockingQueue<Object> queue = new LinkedBlockingQueue<>();
    private final long idleTimeoutMillis;
    private final long maxBytes;
    private final String what;
    private volatile Flow.Subscription subscription;
    private volatile boolean closed;
    private Iterator<ByteBuffer> batch;
    private ByteBuffer current;
    private boolean finished;
    private long total;

    UpstreamBody(long idleTimeoutMillis, long maxBytes, String what) {
        this.idleTimeoutMillis = idleTimeoutMillis;
        this.maxBytes = maxBytes;
        this.what = what;
    }

    @Override
    public void onSubscribe(Flow.Subscription s) {
        subscription = s;
        if (closed) s.cancel();
        else s.request(1);
    }

    @Override
    public void onNext(List<ByteBuffer> item) {
        queue.add(item);
    }

    @Override
    public void onError(Throwable t) {
        queue.add(t);
    }

    @Override
    public void onComplete() {
        queue.add(END);
    }

    @Override
    public int read() throws IOException {
        byte[] one = new byte[1];
        int n = read(one, 0, 1);
        return n < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
        if (len == 0) return 0;
        if (closed) throw new IOException(what + ": stream closed");
        while (current == null || !current.hasRemaining()) {
            if (batch != null && batch.hasNext()) {
                current = batch.next();
                continue;
            }
            if (finished) return -1;
            Object item;
            try {
                item = queue.poll(idleTimeoutMillis, TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                close();
                throw new IOException(what + ": interrupted");
            }
            if (item == null) {
                close();
                throw new IOException(what + ": the upstream sent nothing for " + idleTimeoutMillis / 1000 + " s");
            }
            if (item == END) {
                finished = true;
                return -1;
            }
            if (item instanceof Throwable t) {
                finished = true;
                throw new IOException(what + ": " + t.getMessage(), t);
            }
            @SuppressWarnings("unchecked")
            List<ByteBuffer> next = (List<ByteBuffer>) item;
            batch = next.iterator();
            Flow.Subscription s = subscription;
            if (s != null) s.request(1);
        }
        int n = Math.min(len, current.remaining());
        current.get(b, off, n);
        total += n;
        if (total > maxBytes) {
            close();
            throw new IOException(what + ": larger than " + maxBytes + " bytes");
        }
        return n;
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        Flow.Subscription s = subscription;
        if (s != null && !finished) s.cancel();
        queue.clear();
    }
}
