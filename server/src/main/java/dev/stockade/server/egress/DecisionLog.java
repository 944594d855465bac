package dev.stockade.server.egress;

import java.util.ArrayList;
import java.util.List;

/** A bounded ring of a sandbox's most recent decisions; thread-safe. */
final class DecisionLog {
    private final Decision[] ring;
    private long written;

    DecisionLog(int capacity) {
        ring = new Decision[capacity];
    }

    synchronized void clear() {
        java.util.Arrays.fill(ring, null);
        written = 0;
    }

    synchronized void add(Decision d) {
        ring[(int) (written++ % ring.length)] = d;
    }

    /** Up to {@code limit} most recent decisions, oldest first (newest last). */
    synchronized List<Decision> last(int limit) {
        int n = (int) Math.min(Math.min(written, ring.length), Math.max(0, limit));
        List<Decision> out = new ArrayList<>(n);
        for (long i = written - n; i < written; i++) {
            out.add(ring[(int) (i % ring.length)]);
        }
        return out;
    }
}
