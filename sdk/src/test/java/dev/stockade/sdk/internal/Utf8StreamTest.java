package dev.stockade.sdk.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class Utf8StreamTest {

    @Test
    void charactersSplitAcrossChunksComeOutWhole() {
        byte[] all = "añ€😀z".getBytes(StandardCharsets.UTF_8);
        StringBuilder out = new StringBuilder();
        Utf8Stream s = new Utf8Stream();
        for (byte b : all) out.append(s.decode(new byte[] {b}));
        out.append(s.finish());
        assertEquals("añ€😀z", out.toString());
    }

    @Test
    void incompleteTailBecomesReplacementAtEnd() {
        byte[] euro = "€".getBytes(StandardCharsets.UTF_8);
        Utf8Stream s = new Utf8Stream();
        assertEquals("a", s.decode(new byte[] {'a', euro[0], euro[1]}));
        assertEquals("\uFFFD", s.finish());
    }

    @Test
    void invalidBytesBecomeReplacement() {
        Utf8Stream s = new Utf8Stream();
        assertEquals("a\uFFFDb", s.decode(new byte[] {'a', (byte) 0xff, 'b'}) + s.finish());
    }

    @Test
    void largeChunks() {
        String text = "ü".repeat(100_000);
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        Utf8Stream s = new Utf8Stream();
        String out = s.decode(Arrays.copyOf(bytes, 99_999)) + s.decode(Arrays.copyOfRange(bytes, 99_999, bytes.length));
        assertEquals(text, out + s.finish());
    }
}
