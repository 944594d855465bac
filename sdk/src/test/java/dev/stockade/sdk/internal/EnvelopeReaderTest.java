package dev.stockade.sdk.internal;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.sdk.SandboxException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class EnvelopeReaderTest {

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (byte[] p : parts) out.writeBytes(p);
        return out.toByteArray();
    }

    private static byte[] frame(int flags, String json) {
        return new Envelope(flags, json.getBytes(StandardCharsets.UTF_8)).encode();
    }

    /** Hands out at most {@code chunk} bytes per read, as a network would. */
    private static InputStream trickle(byte[] data, int chunk) {
        return new ByteArrayInputStream(data) {
            @Override
            public synchronized int read(byte[] b, int off, int len) {
                return super.read(b, off, Math.min(len, chunk));
            }
        };
    }

    @Test
    void readsFramesThenCleanEnd() throws IOException {
        byte[] wire = concat(frame(0, "{\"a\":1}"), frame(0, ""), frame(2, "{}"));
        EnvelopeReader r = new EnvelopeReader(new ByteArrayInputStream(wire));
        Envelope first = r.next();
        assertEquals(0, first.flags());
        assertEquals("{\"a\":1}", new String(first.payload(), StandardCharsets.UTF_8));
        assertEquals(0, r.next().payload().length);
        Envelope end = r.next();
        assertTrue(end.endStream());
        assertNull(r.next());
    }

    @Test
    void reassemblesFramesSplitAcrossReads() throws IOException {
        String big = "{\"x\":\"" + "y".repeat(70_000) + "\"}";
        byte[] wire = concat(frame(0, "{\"n\":1}"), frame(0, big), frame(2, "{}"));
        for (int chunk : new int[] {1, 2, 3, 5, 4096}) {
            EnvelopeReader r = new EnvelopeReader(trickle(wire, chunk));
            assertEquals("{\"n\":1}", new String(r.next().payload(), StandardCharsets.UTF_8));
            assertEquals(big, new String(r.next().payload(), StandardCharsets.UTF_8));
            assertTrue(r.next().endStream());
            assertNull(r.next());
        }
    }

    @Test
    void streamCutInsideHeaderFails() {
        byte[] wire = Arrays.copyOf(frame(0, "{}"), 3);
        SandboxException e = assertThrows(SandboxException.class, () -> new EnvelopeReader(new ByteArrayInputStream(wire)).next());
        assertTrue(e.getMessage().contains("frame header"), e.getMessage());
    }

    @Test
    void streamCutInsidePayloadFails() {
        byte[] full = frame(0, "{\"hello\":\"world\"}");
        byte[] wire = Arrays.copyOf(full, full.length - 4);
        SandboxException e = assertThrows(SandboxException.class,
                () -> new EnvelopeReader(trickle(wire, 2)).next());
        assertTrue(e.getMessage().contains("inside a frame"), e.getMessage());
    }

    @Test
    void oversizedFrameIsRefusedBeforeReadingIt() {
        byte[] header = {0, 0x7f, (byte) 0xff, (byte) 0xff, (byte) 0xff};
        SandboxException e = assertThrows(SandboxException.class,
                () -> new EnvelopeReader(new ByteArrayInputStream(header)).next());
        assertTrue(e.getMessage().contains("exceeds the limit"), e.getMessage());
        byte[] justOver = frame(0, "x".repeat(101));
        assertThrows(SandboxException.class, () -> new EnvelopeReader(new ByteArrayInputStream(justOver), 100).next());
        assertEquals(100, assertDoesNotThrowNext(frame(0, "x".repeat(100)), 100).payload().length);
    }

    private static Envelope assertDoesNotThrowNext(byte[] wire, int max) {
        try {
            return new EnvelopeReader(new ByteArrayInputStream(wire), max).next();
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void garbageIsNotGuessedAt() {
        byte[] html = "<html><body>502 Bad Gateway</body></html>".getBytes(StandardCharsets.UTF_8);
        assertThrows(SandboxException.class, () -> new EnvelopeReader(new ByteArrayInputStream(html)).next());
        byte[] compressed = frame(1, "{}");
        SandboxException e = assertThrows(SandboxException.class,
                () -> new EnvelopeReader(new ByteArrayInputStream(compressed)).next());
        assertTrue(e.getMessage().contains("compressed"), e.getMessage());
        byte[] unknownFlag = frame(0x80, "{}");
        assertThrows(SandboxException.class, () -> new EnvelopeReader(new ByteArrayInputStream(unknownFlag)).next());
    }

    @Test
    void encodeWritesBigEndianLength() {
        byte[] wire = new Envelope(2, new byte[300]).encode();
        assertArrayEquals(new byte[] {2, 0, 0, 1, 44}, Arrays.copyOf(wire, 5));
        assertEquals(305, wire.length);
    }
}
