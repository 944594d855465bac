package dev.stockade.sdk.internal;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.sdk.AuthenticationException;
import dev.stockade.sdk.InvalidArgumentException;
import dev.stockade.sdk.NotFoundException;
import dev.stockade.sdk.RateLimitException;
import dev.stockade.sdk.SandboxException;
import dev.stockade.sdk.StockadeException;
import dev.stockade.sdk.TimeoutException;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class RpcErrorTest {

    private static StockadeException map(int status, String body) {
        return RpcError.fromBody(status, body == null ? null : body.getBytes(StandardCharsets.UTF_8)).toException("doing it");
    }

    @Test
    void controlPlaneBodiesMapByStatus() {
        StockadeException e = map(404, "{\"code\":404,\"message\":\"sandbox abc not found\"}");
        assertInstanceOf(NotFoundException.class, e);
        assertEquals(404, e.statusCode());
        assertEquals("doing it: sandbox abc not found (HTTP 404)", e.getMessage());

        assertInstanceOf(AuthenticationException.class, map(401, "{\"code\":401,\"message\":\"invalid API key\"}"));
        assertInstanceOf(InvalidArgumentException.class, map(400, "{\"code\":400,\"message\":\"bad timeout\"}"));
        assertInstanceOf(InvalidArgumentException.class, map(413, "{\"code\":413,\"message\":\"too large\"}"));
        assertInstanceOf(RateLimitException.class, map(429, "{\"code\":429,\"message\":\"slow down\"}"));
        assertInstanceOf(TimeoutException.class, map(504, "{\"code\":504,\"message\":\"late\"}"));
        assertInstanceOf(SandboxException.class, map(500, "{\"code\":500,\"message\":\"oops\"}"));
        assertInstanceOf(SandboxException.class, map(409, "{\"code\":409,\"message\":\"conflict\"}"));
    }

    @Test
    void connectBodiesMapByCodeNotStatus() {
        assertInstanceOf(NotFoundException.class, map(400, "{\"code\":\"not_found\",\"message\":\"no such file\"}"));
        assertInstanceOf(InvalidArgumentException.class, map(500, "{\"code\":\"invalid_argument\",\"message\":\"x\"}"));
        RpcError exists = RpcError.fromBody(409, "{\"code\":\"already_exists\",\"message\":\"x\"}".getBytes());
        assertTrue(exists.is("already_exists"));
    }

    @Test
    void nonJsonBodiesBecomeTheMessage() {
        StockadeException e = map(502, "<html>Bad Gateway</html>");
        assertInstanceOf(TimeoutException.class, e);
        assertTrue(e.getMessage().contains("<html>Bad Gateway</html>"), e.getMessage());
        assertTrue(map(503, "").getMessage().contains("HTTP 503"));
        assertInstanceOf(SandboxException.class, map(500, "{truncated"));
    }

    @Test
    void hugeMessagesAreClipped() {
        StockadeException e = map(500, "x".repeat(100_000));
        assertTrue(e.getMessage().length() < 3000, "length " + e.getMessage().length());
    }

    @Test
    void statusWithoutConnectCodeIsStillMatchable() {
        RpcError e = RpcError.fromBody(404, "{\"code\":404,\"message\":\"gone\"}".getBytes());
        assertNull(e.connectCode());
        assertTrue(e.is("not_found"));
    }
}
