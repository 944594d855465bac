package dev.stockade.it;

import dev.stockade.conformance.RawClient;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * A test class that shares one real server and one sandbox of the default template on it (five
 * minutes' timeout) among its tests, for suites that send hand-made requests to one sandbox; the
 * sandbox is killed after the class, before the server's leak check.
 */
abstract class OneSandboxPerClass extends OneServerPerClass {
    static RawClient.Box box;

    @BeforeAll
    static void sandbox() {
        box = c.create(Map.of("templateID", "base", "timeout", 300));
    }

    @AfterAll
    static void killSandbox() {
        if (box != null) c.kill(box);
    }
}
