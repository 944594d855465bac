package dev.stockade.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Assertions on the shape of Stockade's (E2B's) answers, shared by the contracts and the server-level tests. */
public final class ApiAssertions {
    private ApiAssertions() {
    }

    /** An error answer as E2B's API gives it: {@code status}, a JSON body {code: status, message: non-blank}. */
    public static void assertError(RawClient.Response r, int status) {
        assertEquals(status, r.status(), () -> "status; body: " + r.body());
        assertTrue(r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"),
                () -> "error content type: " + r.headers().map());
        assertNotNull(r.json(), () -> "error body is not JSON: " + r.body());
        assertTrue(r.json().path("code").isIntegralNumber(), () -> "code must be a JSON number: " + r.body());
        assertEquals(status, r.json().get("code").asInt(), () -> "code in " + r.body());
        assertTrue(r.json().path("message").isTextual() && !r.json().get("message").asText().isBlank(),
                () -> "message in " + r.body());
    }
}
