package dev.stockade.server.egress;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLParameters;
import org.junit.jupiter.api.Test;

/** SNI extraction from real JDK ClientHellos, and refusal of everything else. */
class ClientHelloTest {
    /** The first flight of a JDK TLS client: one or more records holding its ClientHello. */
    static byte[] clientHello(String sni, String... protocols) throws Exception {
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, null, null);
        SSLEngine engine = ctx.createSSLEngine(sni == null ? null : "ignored.invalid", 443);
        engine.setUseClientMode(true);
        SSLParameters p = engine.getSSLParameters();
        p.setServerNames(sni == null ? List.of() : List.of(new SNIHostName(sni)));
        if (protocols.length > 0) {
            p.setProtocols(protocols);
        }
        engine.setSSLParameters(p);
        ByteBuffer out = ByteBuffer.allocate(engine.getSession().getPacketBufferSize());
        engine.wrap(ByteBuffer.allocate(0), out);
        out.flip();
        byte[] bytes = new byte[out.remaining()];
        out.get(bytes);
        return bytes;
    }

    private static ClientHello read(byte[] bytes) throws IOException {
        return ClientHello.read(new ByteArrayInputStream(bytes));
    }

    @Test
    void readsSniFromJdkClientHellos() throws Exception {
        byte[] tls13 = clientHello("API.Example.com");
        ClientHello hello = read(tls13);
        assertEquals("api.example.com", hello.sni());
        assertArrayEquals(tls13, hello.prefix());
        assertEquals("example.org", read(clientHello("example.org", "TLSv1.2")).sni());
        assertNull(read(clientHello(null)).sni());
    }

    @Test
    void stopsAtTheEndOfTheClientHello() throws Exception {
        byte[] hello = clientHello("a.test");
        byte[] more = Arrays.copyOf(hello, hello.length + 10);
        ByteArrayInputStream in = new ByteArrayInputStream(more);
        assertEquals(hello.length, ClientHello.read(in).prefix().length);
        assertEquals(10, in.available());
    }

    @Test
    void readsAClientHelloSplitAcrossRecords() throws Exception {
        byte[] one = clientHello("split.test");
        int length = ((one[3] & 0xff) << 8) | (one[4] & 0xff);
        byte[] fragment = Arrays.copyOfRange(one, 5, 5 + length);
        ByteArrayOutputStream two = new ByteArrayOutputStream();
        for (int off = 0; off < fragment.length; off += 100) {
            int n = Math.min(100, fragment.length - off);
            two.write(new byte[] {22, 3, 1, (byte) (n >> 8), (byte) n});
            two.write(fragment, off, n);
        }
        assertEquals("split.test", read(two.toByteArray()).sni());
    }

    @Test
    void refusesWhatIsNotAClientHello() throws Exception {
        assertThrows(ClientHello.NotTls.class, () -> read("GET / HTTP/1.1\r\nHost: x\r\n\r\n".getBytes()));
        assertThrows(EOFException.class, () -> read(new byte[0]));
        assertThrows(ClientHello.NotTls.class, () -> read(new byte[] {22, 3, 1}));
        assertThrows(ClientHello.NotTls.class, () -> read(new byte[] {22, 3, 1, 0, 0}));
        assertThrows(ClientHello.NotTls.class, () -> read(new byte[] {22, 3, 1, (byte) 0xff, (byte) 0xff}));
        assertThrows(ClientHello.NotTls.class, () -> read(new byte[] {23, 3, 3, 0, 1, 0}));
        assertThrows(ClientHello.NotTls.class, () -> read(new byte[] {22, 3, 3, 0, 4, 2, 0, 0, 0}), "a ServerHello");
        byte[] hello = clientHello("t.test");
        for (int cut = 1; cut < hello.length; cut += 7) {
            byte[] truncated = Arrays.copyOf(hello, cut);
            assertThrows(IOException.class, () -> read(truncated), "truncated at " + cut);
        }
    }

    @Test
    void survivesGarbageInsideAValidRecord() throws Exception {
        byte[] hello = clientHello("garbage.test");
        Random random = new Random(42);
        for (int i = 0; i < 2000; i++) {
            byte[] mutated = hello.clone();
            for (int j = 0; j < 4; j++) {
                int at = 9 + random.nextInt(mutated.length - 9); // keep record and handshake headers
                mutated[at] = (byte) random.nextInt(256);
            }
            try {
                ClientHello h = read(mutated);
                assertTrue(h.sni() == null || h.sni().matches("[a-z0-9._-]+"), h.sni());
            } catch (IOException expected) {
                // refusing is fine; an unchecked exception or a hang is not
            }
        }
    }

    @Test
    void refusesNonHostSni() throws Exception {
        byte[] hello = clientHello("abc.test");
        int at = indexOf(hello, "abc.test".getBytes());
        hello[at] = ' ';
        assertThrows(ClientHello.NotTls.class, () -> read(hello));
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        throw new AssertionError("not found");
    }
}
