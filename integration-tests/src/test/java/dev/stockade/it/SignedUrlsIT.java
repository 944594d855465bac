package dev.stockade.it;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.conformance.RawClient;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * E2B's signed file URLs (downloadUrl/uploadUrl of a secure sandbox) over raw HTTP, with the
 * signature computed here as the SDK does: {@code v1_} + unpadded base64 of
 * sha256("path:operation:user:token[:expiration]"). Fetched with no header, as the SDK's users do:
 * the server finds the sandbox from the signature, and refuses every other use of it.
 */
class SignedUrlsIT extends OneServerPerClass {

    static String sign(String path, String op, String user, String token, Long expiration) throws Exception {
        String raw = path + ":" + op + ":" + user + ":" + token + (expiration == null ? "" : ":" + expiration);
        byte[] hash = MessageDigest.getInstance("SHA-256").digest(raw.getBytes(StandardCharsets.UTF_8));
        return "v1_" + Base64.getEncoder().withoutPadding().encodeToString(hash);
    }

    static String url(String path, String user, String signature, Long expiration) {
        StringBuilder b = new StringBuilder("/files?path=").append(enc(path));
        if (user != null) b.append("&username=").append(enc(user));
        b.append("&signature=").append(enc(signature));
        if (expiration != null) b.append("&signature_expiration=").append(expiration);
        return b.toString();
    }

    static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    static long now() {
        return System.currentTimeMillis() / 1000;
    }

    static RawClient.Response get(String url) {
        return c.call("GET", url, null, Map.of());
    }

    static RawClient.Response post(String url, String content) {
        return c.call("POST", url, content.getBytes(StandardCharsets.UTF_8), Map.of("Content-Type", "application/octet-stream"));
    }

    static void assertUnauthenticated(RawClient.Response r) {
        assertEquals(401, r.status(), r.body());
        assertEquals(401, r.json().get("code").asInt(), r.body());
        assertFalse(r.body().contains("expired"), r.body());
    }

    /** The default user may not read root's 0600 file: a 4xx without its content. */
    static void assertRefusedToTheUser(RawClient.Response r) {
        assertTrue(r.status() >= 400 && r.status() < 500 && r.status() != 401, r.status() + " " + r.body());
        assertFalse(r.body().contains("root-only"), r.body());
    }

    @Test
    void aSignedUrlReadsAndWritesWithoutAnyHeaderForItsOperationPathAndUserOnly() throws Exception {
        RawClient.Box a = c.create(Map.of("templateID", "base", "timeout", 120, "secure", true));
        RawClient.Box b = c.create(Map.of("templateID", "base", "timeout", 120, "secure", true));
        try {
            assertEquals(200, c.upload(a, "hello.txt", "from a".getBytes(StandardCharsets.UTF_8)).status());
            assertEquals(200, c.upload(b, "hello.txt", "from b".getBytes(StandardCharsets.UTF_8)).status());
            assertEquals(200, c.upload(a, "/home/user/other.txt", "other".getBytes(StandardCharsets.UTF_8)).status());

            // Valid: read without expiration, read and write with a future one, as root.
            RawClient.Response r = get(url("hello.txt", null, sign("hello.txt", "read", "", a.token(), null), null));
            assertEquals(200, r.status(), r.body());
            assertEquals("from a", r.body());
            long later = now() + 60;
            assertEquals("from a", get(url("hello.txt", null, sign("hello.txt", "read", "", a.token(), later), later)).body());
            r = post(url("up.txt", null, sign("up.txt", "write", "", a.token(), later), later), "uploaded");
            assertEquals(200, r.status(), r.body());
            assertEquals("/home/user/up.txt", r.json().get(0).get("path").asText());
            assertEquals("uploaded", new String(c.download(a, "/home/user/up.txt").body(), StandardCharsets.UTF_8));
            r = post(url("r.txt", "root", sign("r.txt", "write", "root", a.token(), null), null), "root's");
            assertEquals("/root/r.txt", r.json().get(0).get("path").asText(), r.body());

            // The other sandbox's token signs for the other sandbox: its own file, never a's.
            assertEquals("from b", get(url("hello.txt", null, sign("hello.txt", "read", "", b.token(), null), null)).body());
            // ... and with a's id named in the header, b's signature is refused.
            r = c.call("GET", url("hello.txt", null, sign("hello.txt", "read", "", b.token(), null), null), null,
                    Map.of("E2b-Sandbox-Id", a.id()));
            assertUnauthenticated(r);

            // Expired: E2B's exact body, for a read and for a write.
            long past = now() - 10;
            r = get(url("hello.txt", null, sign("hello.txt", "read", "", a.token(), past), past));
            assertEquals(401, r.status());
            assertEquals(RawClient.JSON.readTree("{\"code\":401,\"message\":\"signature is already expired\"}"), r.json());
            r = post(url("hello.txt", null, sign("hello.txt", "write", "", a.token(), past), past), "late");
            assertEquals(RawClient.JSON.readTree("{\"code\":401,\"message\":\"signature is already expired\"}"), r.json());
            // An expiration moved into the future invalidates the signature (it is part of the hash).
            assertUnauthenticated(get(url("hello.txt", null, sign("hello.txt", "read", "", a.token(), past), later)));

            String readSig = sign("hello.txt", "read", "", a.token(), null);
            // Wrong operation: a read signature used to write, a write signature used to read.
            assertUnauthenticated(post(url("hello.txt", null, readSig, null), "overwritten"));
            assertUnauthenticated(get(url("hello.txt", null, sign("hello.txt", "write", "", a.token(), null), null)));
            // Wrong path, wrong user, tampered signature, no signature value, a made-up token.
            assertUnauthenticated(get(url("other.txt", null, readSig, null)));
            assertUnauthenticated(get(url("hello.txt", "root", readSig, null)));
            assertUnauthenticated(get(url("hello.txt", null, readSig.substring(0, readSig.length() - 2) + "AA", null)));
            assertUnauthenticated(get("/files?path=hello.txt&signature="));
            assertUnauthenticated(get(url("hello.txt", null, sign("hello.txt", "read", "", "not-a-token", null), null)));
            assertEquals("from a", new String(c.download(a, "/home/user/hello.txt").body(), StandardCharsets.UTF_8));
            // The user is the signed one: an Authorization header for root does not make a default-user URL root's.
            assertEquals("ok\n", c.run(a, "echo root-only > /root/secret && chmod 600 /root/secret && echo ok", "root").stdout());
            String secretUrl = url("/root/secret", null, sign("/root/secret", "read", "", a.token(), null), null);
            assertRefusedToTheUser(get(secretUrl));
            assertRefusedToTheUser(c.call("GET", secretUrl, null,
                    Map.of("Authorization", "Basic " + Base64.getEncoder().encodeToString("root:".getBytes(StandardCharsets.UTF_8)))));

            // An ended sandbox's URLs stop working with it.
            c.kill(a);
            assertUnauthenticated(get(url("hello.txt", null, readSig, null)));
        } finally {
            c.kill(a);
            c.kill(b);
        }
    }
}
