package dev.stockade.server.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The route table without a server: which route a request finds on its plane, the audit action it
 * is recorded under, and the table's own checks (a handler on a plane that cannot serve it, two
 * routes for the same requests).
 */
class RoutesTest {
    private final Routes routes = new Routes(null);

    @ParameterizedTest(name = "{0} {1} {2} → {3}")
    @CsvSource(delimiter = '|', textBlock = """
            CONTROL | POST   | /v2/sandboxes                        | sandbox.create
            CONTROL | POST   | /sandboxes                           | sandbox.create
            CONTROL | GET    | /v2/sandboxes                        | sandbox.list
            CONTROL | GET    | /sandboxes/sb1                       | sandbox.read
            CONTROL | DELETE | /sandboxes/sb1                       | sandbox.kill
            CONTROL | POST   | /sandboxes/sb1/timeout               | sandbox.timeout
            CONTROL | POST   | /sandboxes/sb1/refreshes             | sandbox.refresh
            CONTROL | POST   | /sandboxes/sb1/connect               | sandbox.connect
            CONTROL | POST   | /v2/sandboxes/sb1/connect            | sandbox.connect
            CONTROL | POST   | /sandboxes/sb1/pause                 | sandbox.pause
            CONTROL | POST   | /sandboxes/sb1/snapshots             | snapshot.create
            CONTROL | GET    | /snapshots                           | snapshot.list
            CONTROL | DELETE | /templates/snap1                     | template.delete
            CONTROL | DELETE | /templates/tags                      | template.untag
            CONTROL | POST   | /templates/tags                      | template.tag
            CONTROL | GET    | /templates/aliases/tags              | template.alias
            CONTROL | GET    | /templates/tpl1/tags                 | template.tags
            CONTROL | PUT    | /templates/tpl1/files/h1             | template.upload
            CONTROL | GET    | /templates/tpl1/files/h1             | template.files
            CONTROL | POST   | /v2/templates/tpl1/builds/b1         | template.start
            CONTROL | PUT    | /sandboxes/sb1/network               | network.policy
            CONTROL | GET    | /sandboxes/sb1/network               | network.read
            CONTROL | GET    | /sandboxes/sb1/network/log           | network.log
            CONTROL | POST   | /sandboxes/sb1/packages              | packages.install
            CONTROL | POST   | /admin/tenants                       | admin.tenants.create
            CONTROL | PUT    | /admin/tenants/t1/quota              | admin.tenants.update
            CONTROL | POST   | /admin/keys                          | admin.keys.create
            CONTROL | DELETE | /admin/keys/key_0123456789ab         | admin.keys.revoke
            CONTROL | GET    | /admin/audit                         | admin.audit.read
            CONNECT | POST   | /process.Process/Start               | process.Start
            CONNECT | POST   | /process.Process/SendSignal          | process.SendSignal
            CONNECT | POST   | /filesystem.Filesystem/Stat          | filesystem.Stat
            FILES   | GET    | /files                               | file.read
            FILES   | POST   | /files                               | file.write
            CODE    | POST   | /execute                             | code.execute
            CODE    | POST   | /contexts                            | context.create
            CODE    | GET    | /contexts                            | context.list
            CODE    | POST   | /contexts/c1/restart                 | context.restart
            CODE    | DELETE | /contexts/c1                         | context.delete
            """)
    void eachRouteIsFoundOnItsPlaneUnderItsAuditName(Plane plane, String method, String path, String action) {
        Routes.Found found = assertInstanceOf(Routes.Found.class, routes.find(plane, method, path));
        assertEquals(action, found.action());
        // The audit names are those the audit log has always used (AuditIT filters on them).
        for (Plane other : Plane.values()) {
            if (other != plane) {
                assertInstanceOf(Routes.NotFound.class, routes.find(other, method, path), other + " " + path);
            }
        }
    }

    @Test
    void pathParametersAreRawSegments() {
        Routes.Found f = assertInstanceOf(Routes.Found.class, routes.find(Plane.CONTROL, "POST", "/sandboxes/a%2Fb/timeout"));
        assertEquals("a%2Fb", f.params().sandboxId());
        assertEquals(Map.of("tenant", "t1"), assertInstanceOf(Routes.Found.class,
                routes.find(Plane.CONTROL, "GET", "/admin/tenants/t1")).params().values());
        assertNull(assertInstanceOf(Routes.Found.class, routes.find(Plane.CONTROL, "GET", "/runtimes")).params().sandboxId());
        assertThrows(IllegalStateException.class, () -> f.params().get("templateID"), "a parameter the route lacks is a bug");
    }

    @Test
    void theSandboxScopeIsExactlyTheRoutesNamingASandbox() {
        for (Routes.Declared d : Routes.declared()) {
            if (!d.plane().equals("CONTROL")) continue;
            String concrete = d.path().replaceAll("\\{[A-Za-z]+}", "x");
            assertEquals(d.path().contains("{sandboxID}"), Routes.sandboxNamed(concrete) != null, d.path());
        }
        // Unknown sub-routes are in the scope too: their owner is checked before the 404.
        assertEquals("sb1", Routes.sandboxNamed("/sandboxes/sb1/no-such-route"));
        assertEquals("sb1", Routes.sandboxNamed("/v2/sandboxes/sb1"));
        assertEquals("sb1", Routes.sandboxNamed("/sandboxes/sb1/"));
        assertNull(Routes.sandboxNamed("/sandboxes/"));
        assertNull(Routes.sandboxNamed("/sandboxes//timeout"));
        assertNull(Routes.sandboxNamed("/v3/sandboxes/sb1"));
        assertTrue(Routes.inAdminArea("/admin") && Routes.inAdminArea("/admin/no-such-route") && !Routes.inAdminArea("/administrator"));
    }

    @Test
    void aKnownPathWithAnotherMethodIsAWrongMethod() {
        Routes.WrongMethod w = assertInstanceOf(Routes.WrongMethod.class, routes.find(Plane.CONTROL, "PUT", "/sandboxes/sb1/timeout"));
        assertEquals("sandbox.timeout", w.action(), "audited under the path's route");
        assertInstanceOf(Routes.WrongMethod.class, routes.find(Plane.CONTROL, "PATCH", "/v2/sandboxes"));
        assertInstanceOf(Routes.WrongMethod.class, routes.find(Plane.FILES, "DELETE", "/files"));
        assertInstanceOf(Routes.WrongMethod.class, routes.find(Plane.CODE, "GET", "/execute"));
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', textBlock = """
            CONTROL | GET  | /sandboxes/sb1/bogus
            CONTROL | GET  | /sandboxes/
            CONTROL | POST | /sandboxes//timeout
            CONTROL | POST | /sandboxes/sb1/timeout/
            CONTROL | GET  | /v2/sandboxes/sb1
            CONTROL | GET  | /v3/anything
            CONTROL | GET  | /admin
            CONTROL | GET  | /
            CONNECT | POST | /process.Process/Bogus
            CONNECT | POST | /process.Bogus/Start
            FILES   | GET  | /files/x
            CODE    | POST | /contexts/c1/bogus
            """)
    void unknownPathsAreNotFound(Plane plane, String method, String path) {
        Routes.Lookup l = routes.find(plane, method, path);
        assertInstanceOf(Routes.NotFound.class, l);
        assertEquals("route.unknown", l.action());
    }

    @Test
    void healthIsAnsweredOnEveryPlaneWithoutAnAuditEntryOrAKey() {
        for (Plane p : List.of(Plane.CONTROL, Plane.FILES, Plane.CODE)) {
            for (String method : List.of("GET", "HEAD")) {
                Route r = assertInstanceOf(Routes.Found.class, routes.find(p, method, "/health")).route();
                assertTrue(r.handler() instanceof Route.Open || r.handler() instanceof Route.Probe, p + " " + r);
            }
        }
    }

    @Test
    void theTableRefusesRoutesItCouldNotServe() {
        Route.Control control = (r, p) -> { };
        Route.Envd envd = (r, c) -> { };
        assertThrows(IllegalArgumentException.class, () -> new Route("POST", "/files", Plane.CONTROL, "file.write", envd),
                "an envd handler on the control plane would run without a sandbox credential");
        assertThrows(IllegalArgumentException.class, () -> new Route("GET", "/x", Plane.CODE, "x.read", control));
        assertThrows(IllegalArgumentException.class, () -> new Route("GET", "/process.Process/List", Plane.CONNECT, "process.List", envd),
                "Connect RPCs are POST");
        assertThrows(IllegalArgumentException.class, () -> new Route("POST", "/files", Plane.CONNECT, "file.write", envd));
        assertThrows(IllegalArgumentException.class, () -> new Route("POST", "/process.Process/List", Plane.FILES, "process.List", envd));
        assertThrows(IllegalArgumentException.class, () -> new Route("POST", "/health", Plane.CONTROL, "server.health",
                (Route.Open) r -> { }), "an unauthenticated route only reads");
        assertThrows(IllegalArgumentException.class, () -> new Route("PATCH", "/x", Plane.CONTROL, "x.update", control));
        assertThrows(IllegalArgumentException.class, () -> new Route("GET", "/x", Plane.CONTROL, "no action", control));
        assertThrows(IllegalArgumentException.class, () -> new Route("GET", "/x/", Plane.CONTROL, "x.read", control));
        assertThrows(IllegalArgumentException.class, () -> new Route("GET", "/x/{a b}", Plane.CONTROL, "x.read", control));
    }

    @Test
    void overlappingTemplatesAreDetected() {
        PathTemplate byId = PathTemplate.of("/sandboxes/{sandboxID}");
        assertTrue(byId.overlaps(PathTemplate.of("/sandboxes/mine")));
        assertTrue(byId.overlaps(PathTemplate.of("/{x}/{y}")));
        assertTrue(!byId.overlaps(PathTemplate.of("/sandboxes/{sandboxID}/timeout")));
        assertTrue(!byId.overlaps(PathTemplate.of("/snapshots/{id}")));
        assertEquals(List.of("a", "", "b", ""), PathTemplate.split("/a//b/"));
    }

    @Test
    void theDeclaredTableListsEveryRouteOnce() {
        List<Routes.Declared> all = Routes.declared();
        assertEquals(all.size(), all.stream().distinct().count());
        assertTrue(all.contains(new Routes.Declared("POST", "/v2/sandboxes", "CONTROL", "sandbox.create")));
        assertTrue(all.contains(new Routes.Declared("POST", "/process.Process/Start", "CONNECT", "process.Start")));
        assertTrue(all.contains(new Routes.Declared("POST", "/execute", "CODE", "code.execute")));
    }
}
