package dev.stockade.server.api;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.eclipse.jetty.http.HttpFields;
import dev.stockade.server.error.StockadeError;
import org.junit.jupiter.api.Test;

/**
 * What the router refuses before reading a credential ({@link CredentialHeaders}) and what a create body
 * may carry ({@link CreateBody}), without a server: the integration test {@code StrictInputIT} sends the
 * same over a socket.
 */
class StrictInputTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    private static HttpFields headers(String... nameValue) {
        HttpFields.Mutable h = HttpFields.build();
        for (int i = 0; i < nameValue.length; i += 2) h.add(nameValue[i], nameValue[i + 1]);
        return h;
    }

    private static void ambiguous(HttpFields h) {
        StockadeError e = assertThrows(StockadeError.class, () -> CredentialHeaders.requireUnambiguous(h));
        assertTrue(e.code() == StockadeError.Code.INVALID_ARGUMENT, e::getMessage);
    }

    @Test
    void oneOfEachCredentialIsAcceptedAndAnyAmbiguityRefused() {
        assertDoesNotThrow(() -> CredentialHeaders.requireUnambiguous(headers("X-API-Key", "e2b_1", "Authorization", "Bearer e2b_1")));
        assertDoesNotThrow(() -> CredentialHeaders.requireUnambiguous(headers("E2b-Sandbox-Id", "s", "E2b-Sandbox-Port", "49983",
                "X-Access-Token", "t", "E2B-Traffic-Access-Token", "t", "Authorization", "Basic cm9vdDo=")));
        ambiguous(headers("X-API-Key", "e2b_1", "X-API-KEY", "e2b_2"));
        ambiguous(headers("X-API-Key", "e2b_1", "X-API-Key", "e2b_1"));
        ambiguous(headers("X-API-Key", "e2b_1\u000b"));
        ambiguous(headers("X-API-Key", "e2b_\u007f1"));
        // Not ASCII is not ambiguous: such a key is simply not one (401 from the key lookup).
        assertDoesNotThrow(() -> CredentialHeaders.requireUnambiguous(headers("X-API-Key", "e2b_\u00e91")));
        ambiguous(headers("X-API-Key", "e2b_1", "Authorization", "Bearer e2b_2"));
        ambiguous(headers("Authorization", "Basic a", "Authorization", "Basic b"));
        ambiguous(headers("X-Access-Token", "t", "X-Access-Token", "u"));
        ambiguous(headers("X-Access-Token", "t", "E2B-Traffic-Access-Token", "u"));
        ambiguous(headers("E2b-Sandbox-Id", "a", "E2b-Sandbox-Id", "b"));
        ambiguous(headers("E2b-Sandbox-Port", "49983", "E2b-Sandbox-Port", "49999"));
    }

    private static void createRefused(String body, String named) throws Exception {
        StockadeError e = assertThrows(StockadeError.class, () -> CreateBody.read(JSON.readTree(body)));
        assertTrue(e.getMessage().contains(named), e::getMessage);
    }

    @Test
    void createNamesUnknownAndUnsupportedFieldsAndAcceptsTheSdksDefaults() throws Exception {
        createRefused("{\"templateID\":\"base\",\"volumeMount\":[]}", "'volumeMount'");
        createRefused("{\"templateID\":\"base\",\"volumeMounts\":[{\"name\":\"v\",\"path\":\"/\"}]}", "volumeMounts");
        createRefused("{\"templateID\":\"base\",\"mcp\":\"x\"}", "mcp");
        // The SDKs start the MCP gateway themselves (a command in the sandbox): the field is theirs.
        assertDoesNotThrow(() -> CreateBody.read(JSON.readTree("{\"templateID\":\"base\",\"mcp\":{\"x\":{}}}")));
        createRefused("{\"templateID\":\"base\",\"iam\":{\"tokens\":{\"a\":{\"audience\":\"x\",\"tokenType\":\"y\"}}}}", "iam");
        createRefused("{\"templateID\":\"base\",\"iam\":{\"other\":1}}", "iam");
        createRefused("{\"templateID\":\"base\",\"autoResume\":{\"enabled\":true}}", "autoResume");
        createRefused("{\"templateID\":\"base\",\"autoResume\":true}", "autoResume");
        createRefused("{\"templateID\":\"base\",\"secure\":1}", "secure");
        assertDoesNotThrow(() -> CreateBody.read(JSON.readTree("{\"templateID\":\"base\",\"timeout\":30,\"secure\":true,"
                + "\"allow_internet_access\":true,\"metadata\":{},\"envVars\":{},\"autoPause\":false,\"volumeMounts\":[],"
                + "\"autoResume\":{\"enabled\":false},\"mcp\":null,\"iam\":{\"tokens\":{}}}")));
    }
}
