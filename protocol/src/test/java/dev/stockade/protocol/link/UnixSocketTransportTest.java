package dev.stockade.protocol.link;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class UnixSocketTransportTest {
    /** The address reaches clients in error messages: it must not show the server's data directory. */
    @Test
    void theAddressNamesNoHostDirectory() {
        assertEquals("…/run/agent.sock",
                new UnixSocketTransport(Path.of("/var/lib/stockade/runtime/runc/sandboxes/x/disk/run/agent.sock")).address());
        assertEquals("agent.sock", new UnixSocketTransport(Path.of("agent.sock")).address());
    }
}
