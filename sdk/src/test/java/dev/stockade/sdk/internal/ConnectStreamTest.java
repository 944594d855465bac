package dev.stockade.sdk.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.sdk.AuthenticationException;
import dev.stockade.sdk.InvalidArgumentException;
import dev.stockade.sdk.NotFoundException;
import dev.stockade.sdk.RateLimitException;
import dev.stockade.sdk.SandboxException;
import dev.stockade.sdk.StockadeException;
import dev.stockade.sdk.TimeoutException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

class ConnectStreamTest {

    private static ConnectStream stream(String... frames) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (String f : frames) {
            int flags = f.startsWith("END") ? 2 : 0;
            String json = flags == 2 ? f.substring(3) : f;
            out.writeBytes(new Envelope(flags, json.getBytes(StandardCharsets.UTF_8)).encode());
        }
        return new ConnectStream(new ByteArrayInputStream(out.toByteArray()), "testing");
    }

    @Test
    void messagesThenCleanEnd() {
        ConnectStream s = stream("{\"event\":{\"start\":{\"pid\":7}}}", "END{}");
        assertEquals(7, s.next().path("event").path("start").path("pid").asInt());
        assertNull(s.next());
    }

    @Test
    void endWithoutBodyIsClean() {
        assertNull(stream("END").next());
    }

    @ParameterizedTest
    @CsvSource({
        "not_found, NotFoundException",
        "invalid_argument, InvalidArgumentException",
        "unauthenticated, AuthenticationException",
        "resource_exhausted, RateLimitException",
        "deadline_exceeded, TimeoutException",
        "unavailable, NotFoundException",
        "canceled, TimeoutException",
        "internal, SandboxException",
        "made_up_code, SandboxException",
    })
    void endOfStreamErrorsBecomeTypedExceptions(String code, String type) {
        ConnectStream s = stream("END{\"error\":{\"code\":\"" + code + "\",\"message\":\"boom\"}}");
        StockadeException e = assertThrows(StockadeException.class, s::next);
        assertEquals(type, e.getClass().getSimpleName());
        assertTrue(e.getMessage().contains("boom"), e.getMessage());
    }

    @Test
    void unavailableAfterTheStartMeansTimeout() {
        ConnectStream s = stream("{\"event\":{\"start\":{\"pid\":7}}}",
                "END{\"error\":{\"code\":\"unavailable\",\"message\":\"gone\"}}");
        s.next();
        assertThrows(TimeoutException.class, s::next);
    }

    @Test
    void garbageJsonInAFrameFails() {
        SandboxException e = assertThrows(SandboxException.class, () -> stream("{not json").next());
        assertTrue(e.getMessage().contains("malformed JSON"), e.getMessage());
    }

    @Test
    void eofWithoutEndOfStreamFails() {
        ConnectStream s = stream("{\"event\":{\"keepalive\":{}}}");
        s.next();
        assertThrows(SandboxException.class, s::next);
    }

    @Test
    void typesAreTheOnesCallersCatch() {
        assertInstanceOf(NotFoundException.class, RpcError.fromBody(404, "{}".getBytes()).toException("x"));
        assertInstanceOf(AuthenticationException.class, RpcError.fromBody(401, null).toException("x"));
        assertInstanceOf(InvalidArgumentException.class, RpcError.fromBody(400, null).toException("x"));
        assertInstanceOf(RateLimitException.class, RpcError.fromBody(429, null).toException("x"));
        assertInstanceOf(TimeoutException.class, RpcError.fromBody(502, null).toException("x"));
    }
}
