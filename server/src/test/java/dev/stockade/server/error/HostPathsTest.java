package dev.stockade.server.error;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HostPathsTest {
    @TempDir
    Path tmp;

    @Test
    void aRegisteredDataDirectoryNeverReachesAClientMessage() throws Exception {
        Path data = Files.createDirectories(tmp.resolve("data"));
        Path link = Files.createSymbolicLink(tmp.resolve("alias"), data);
        HostPaths.hide(link);
        String socket = data + "/runtime/runc/sandboxes/abc/disk/run/agent.sock";
        assertEquals("cannot connect to <data-dir>/runtime/runc/sandboxes/abc/disk/run/agent.sock: refused",
                HostPaths.scrub("cannot connect to " + socket + ": refused"));
        assertEquals("egress socket <data-dir>/egress/x.sock", HostPaths.scrub("egress socket " + link + "/egress/x.sock"));
        assertEquals("nothing here", HostPaths.scrub("nothing here"));
        assertNull(HostPaths.scrub(null));
    }

    @Test
    void runcsLogFramingAndJavaClassNamesAreLeftOut() {
        assertEquals("runc pause failed: container not running",
                HostPaths.scrub("runc pause failed: time=\"2026-12-07T18:06:08Z\" level=error msg=\"container not running\""));
        assertEquals("reading failed: Connection reset", HostPaths.scrub("reading failed: java.net.SocketException: Connection reset"));
        assertEquals("Cannot invoke \"\" because \"sb\" is null",
                HostPaths.scrub("Cannot invoke \"dev.stockade.server.core.Sandbox.id()\" because \"sb\" is null"));
        // A sandbox's own paths and Python's errors are the user's: they pass.
        assertEquals("cannot read /home/user/java.txt: FileNotFoundError",
                HostPaths.scrub("cannot read /home/user/java.txt: FileNotFoundError"));
    }
}
