package dev.stockade.it;

import dev.stockade.conformance.RawClient;
import dev.stockade.conformance.TestServer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;

/**
 * A test class that shares one real server ({@link TestServer}: its own data directory, the
 * default tenant's admin key) among its tests; its close asserts that nothing was left behind.
 * Classes run one at a time, so the static fields belong to the class running.
 */
abstract class OneServerPerClass {
    static TestServer ts;
    static RawClient c;

    @BeforeAll
    static void startServer() {
        ts = new TestServer();
        c = ts.client;
    }

    @AfterAll
    static void stopServer() {
        ts.close();
    }
}
