// Why this file is long (~1,200 lines): it is one area of the conformance kit, and a runtime runs an
// area by extending its class (RuncIsolationIT, RunscIsolationIT). Each of its 16 escape attempts
// carries its probe (Python run inside the sandbox), a positive control and the host-side view that
// checks what the sandbox cannot show; splitting them across classes would make every runtime extend
// more classes without making any attempt shorter. Split it by wall (filesystem, identity, kernel
// surface) when it grows again.
package dev.stockade.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.stockade.runtime.Capabilities;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.NetworkInterface;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Escape attempts that must fail, run against a real server and real sandboxes of the runtime under test (issue 2,
 * "Isolation and limits"). Every test asserts what was actually observed inside the sandbox — an
 * errno, a file's content, a list of names — never merely "it exited non-zero", and where it helps a
 * positive control shows that the probe itself works (so that a broken probe cannot pass as a wall).
 */
public abstract class IsolationContract extends RuntimeContract {

    /** The capabilities the agent keeps (OciConfigPlanner.AGENT_CAPABILITIES): CHOWN, DAC_OVERRIDE, FOWNER, KILL, SETGID, SETUID. */
    static final long AGENT_CAPS = (1L << 0) | (1L << 1) | (1L << 3) | (1L << 5) | (1L << 6) | (1L << 7);

    @BeforeAll
    void up() {
        startServer();
    }

    // ---------------------------------------------------------------------------------------------
    // helpers

    String random() {
        byte[] b = new byte[12];
        new java.security.SecureRandom().nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    RawClient.Box box() {
        return c.create(Map.of("templateID", "base", "timeout", 120));
    }

    void kill(RawClient.Box b) {
        if (b != null) c.kill(b);
    }

    /** A bash command as "user" (the default); asserts the stream ended with an end event. */
    RawClient.Run sh(RawClient.Box b, String cmd) {
        return ended(c.run(b, cmd), cmd);
    }

    RawClient.Run shAs(RawClient.Box b, String user, String cmd) {
        return ended(c.run(b, cmd, user), cmd);
    }

    /** python3 -c code (no shell in between), as {@code user}. */
    RawClient.Run py(RawClient.Box b, String user, String code) {
        return ended(c.start(b, Map.of("process", Map.of("cmd", "/usr/bin/python3", "args", List.of("-c", code))), user), code);
    }

    /** Runs a python probe that prints one JSON document, and parses it. */
    JsonNode pyJson(RawClient.Box b, String user, String code) {
        RawClient.Run r = py(b, user, code);
        assertEquals(0, r.exitCode(), "probe failed: stdout=" + r.stdout() + " stderr=" + r.stderr());
        try {
            return RawClient.JSON.readTree(r.stdout());
        } catch (IOException e) {
            throw new AssertionError("probe printed no JSON: " + r.stdout() + " / " + r.stderr(), e);
        }
    }

    RawClient.Run ended(RawClient.Run r, String what) {
        assertTrue(r.end() != null, "no end event for `" + what + "`: error=" + r.error() + " stdout=" + r.stdout()
                + " stderr=" + r.stderr());
        return r;
    }

    /** Records an observation in the test's output (surefire keeps it in the report). */
    void note(String what, Object value) {
        System.out.println("[" + getClass().getSimpleName() + "] " + what + ": " + value);
    }

    String describe(RawClient.Run r) {
        return "exit=" + r.exitCode() + " outcome=" + r.outcome() + " stdout=[" + r.stdout() + "] stderr=[" + r.stderr() + "]";
    }

    /** A file under the host's /tmp with a random secret in it; deleted by the caller. */
    Path hostCanary(String secret) {
        try {
            Path p = Path.of("/tmp/stockade-canary-" + random());
            Files.writeString(p, "host canary " + secret + "\n");
            return p;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    void deleteQuietly(Path p) {
        try {
            Files.deleteIfExists(p);
        } catch (IOException ignored) {
            // best effort
        }
    }

    /** Parses `key=value` lines (env output, /proc/self/status-like "Key:\tvalue") into a map. */
    Map<String, String> keyValues(String text, String sep) {
        Map<String, String> m = new TreeMap<>();
        for (String line : text.split("\n")) {
            int i = line.indexOf(sep);
            if (i > 0) m.put(line.substring(0, i), line.substring(i + sep.length()).strip());
        }
        return m;
    }

    // ---------------------------------------------------------------------------------------------
    // host files

    @Test
    void hostCanaryFileIsInvisible() {
        String secret = "SECRET" + random();
        String control = "CONTROL" + random();
        Path canary = hostCanary(secret);
        RawClient.Box b = box();
        try {
            // The path itself does not exist in the sandbox, neither directly nor through the agent's root.
            RawClient.Run exists = sh(b, "if test -e " + canary + "; then echo present; else echo absent; fi");
            assertEquals("absent\n", exists.stdout(), describe(exists));

            // The agent is not dumpable (its spawning threads change credentials), so even the
            // sandbox's root cannot enter /proc/1/root; where it could, the path would not exist.
            RawClient.Run cat = shAs(b, "root", "cat /proc/1/root" + canary);
            assertNotEquals(0, cat.exitCode(), describe(cat));
            assertTrue(cat.stderr().contains("No such file or directory") || cat.stderr().contains("Permission denied"),
                    describe(cat));
            assertFalse(cat.stdout().contains(secret), describe(cat));

            // grep for the secret everywhere it could surface (as sandbox root, who can read the most),
            // with a control string planted inside the sandbox to prove the grep really searched.
            String grep = "printf '%s' " + control + " > /tmp/control-file; "
                    + "grep -rIsl --exclude-dir=proc --exclude-dir=sys --exclude-dir=usr --exclude-dir=dev -e " + secret
                    + " -e " + control + " /tmp /root /home /proc/1/root; echo grep-exit=$?";
            RawClient.Run found = shAs(b, "root", grep);
            note("grep for the host secret and the in-sandbox control", found.stdout());
            assertFalse(found.stdout().contains(canary.getFileName().toString()), describe(found));
            List<String> hits = found.stdout().lines().filter(l -> l.startsWith("/")).sorted().toList();
            assertTrue(hits.contains("/tmp/control-file") && Set.of("/proc/1/root/tmp/control-file", "/tmp/control-file")
                            .containsAll(hits), "only the in-sandbox control file may match; " + describe(found));

            // The files API resolves inside the sandbox too: 404, never the host file.
            HttpResponse<byte[]> dl = c.download(b, canary.toString());
            assertEquals(404, dl.statusCode(), new String(dl.body(), StandardCharsets.UTF_8));
            assertFalse(new String(dl.body(), StandardCharsets.UTF_8).contains(secret));
        } finally {
            kill(b);
            deleteQuietly(canary);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // host environment

    /** What the agent adds for the egress path (docs/network.md): the relay and the CA bundle, both inside. */
    static final Map<String, String> EGRESS_VARIABLES = Map.ofEntries(
            Map.entry("HTTP_PROXY", "http://127.0.0.1:49990"), Map.entry("HTTPS_PROXY", "http://127.0.0.1:49990"),
            Map.entry("http_proxy", "http://127.0.0.1:49990"), Map.entry("https_proxy", "http://127.0.0.1:49990"),
            Map.entry("NO_PROXY", "localhost,127.0.0.1,::1"), Map.entry("no_proxy", "localhost,127.0.0.1,::1"),
            Map.entry("SSL_CERT_FILE", "/opt/stockade/ca-bundle.pem"),
            Map.entry("REQUESTS_CA_BUNDLE", "/opt/stockade/ca-bundle.pem"),
            Map.entry("CURL_CA_BUNDLE", "/opt/stockade/ca-bundle.pem"), Map.entry("PIP_CERT", "/opt/stockade/ca-bundle.pem"),
            Map.entry("NODE_EXTRA_CA_CERTS", "/opt/stockade/ca-bundle.pem"));

    @Test
    void hostEnvironmentDoesNotLeak() throws IOException {
        RawClient.Box b = c.create(Map.of("templateID", "base", "timeout", 120,
                "envVars", Map.of("STOCKADE_IT_CREATE", "from-create")));
        try {
            Map<String, String> host = System.getenv();
            assertTrue(host.containsKey("PATH"), "the test JVM should have a PATH");

            // The process environment exactly as the agent builds it: no shell in between.
            RawClient.Run direct = ended(c.start(b, Map.of("process", Map.of("cmd", "/usr/bin/env",
                    "envs", Map.of("STOCKADE_IT_CMD", "from-command"))), null), "env");
            assertEquals(0, direct.exitCode(), describe(direct));
            Map<String, String> env = keyValues(direct.stdout(), "=");
            note("env of a command", env);
            TreeSet<String> expected = new TreeSet<>(Set.of("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "PWD",
                    "STOCKADE_IT_CREATE", "STOCKADE_IT_CMD"));
            expected.addAll(EGRESS_VARIABLES.keySet());
            assertEquals(expected, new TreeSet<>(env.keySet()), direct.stdout());
            // The egress variables name only things inside the sandbox: its relay and the agent's CA bundle.
            EGRESS_VARIABLES.forEach((k, v) -> assertEquals(v, env.get(k), k));
            assertEquals("from-create", env.get("STOCKADE_IT_CREATE"));
            assertEquals("from-command", env.get("STOCKADE_IT_CMD"));
            assertEquals("/home/user", env.get("HOME"));
            assertEquals("user", env.get("USER"));
            assertEquals("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", env.get("PATH"));

            // Through a login bash (what the E2B SDKs run): only what bash itself adds on top.
            RawClient.Run login = ended(c.start(b, Map.of("process", Map.of("cmd", "/bin/bash", "args", List.of("-l", "-c", "env"),
                    "envs", Map.of("STOCKADE_IT_CMD", "c2"))), null), "env");
            Map<String, String> env2 = keyValues(login.stdout(), "=");
            note("env in a login bash", env2);
            Set<String> allowed = new java.util.HashSet<>(Set.of("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG",
                    "PWD", "SHLVL", "_", "OLDPWD", "STOCKADE_IT_CREATE", "STOCKADE_IT_CMD"));
            allowed.addAll(EGRESS_VARIABLES.keySet());
            TreeSet<String> extra = new TreeSet<>(env2.keySet());
            extra.removeAll(allowed);
            assertEquals(Set.of(), extra, "unexpected variables in a sandbox command: " + login.stdout());
            assertEquals("c2", env2.get("STOCKADE_IT_CMD"));
            assertEquals("from-create", env2.get("STOCKADE_IT_CREATE"));

            for (RawClient.Run r : List.of(direct, login)) {
                Map<String, String> e = keyValues(r.stdout(), "=");
                for (String k : List.of("JAVA_HOME", "MAVEN_HOME", "MAVEN_OPTS", "SSH_AUTH_SOCK", "STOCKADE_API_KEY",
                        "E2B_API_KEY", "LD_PRELOAD", "TERM", "HOSTNAME")) {
                    assertFalse(e.containsKey(k), k + " reached the sandbox: " + r.stdout());
                }
                assertFalse(e.get("PATH").contains("jvm") || e.get("PATH").contains("temurin")
                        || e.get("PATH").contains("maven"), "host PATH reached the sandbox: " + e.get("PATH"));
                assertNotEquals("/root", e.get("HOME"));
                // No value of the test JVM's distinctive variables appears anywhere in the sandbox's env.
                for (var hv : host.entrySet()) {
                    if (hv.getValue().length() < 12 || allowed.contains(hv.getKey())) continue;
                    assertFalse(r.stdout().contains(hv.getValue()), "the host's " + hv.getKey() + " value reached the sandbox");
                }
                assertFalse(r.stdout().contains(TestServer.KEY), "the server's API key reached the sandbox");
            }

            // The agent's own environment: inside, not even the sandbox's root may read it (the agent
            // is not dumpable). Its content, read on the host: agentsEnvironmentHoldsNothingOfTheServers.
            RawClient.Run agentEnv = shAs(b, "root", "tr '\\0' '\\n' < /proc/1/environ");
            if (checksWithout(Capabilities.USERSPACE_KERNEL, "gVisor lets the sandbox's root read the (non-dumpable)"
                    + " agent's /proc/1/environ; it must then hold only PATH, LANG and HOME")) {
                assertTrue(agentEnv.exitCode() != 0 && agentEnv.stderr().contains("Permission denied"), describe(agentEnv));
            } else {
                // Issue 15, finding 7: under gVisor user code reads it too, so it holds nothing but
                // these three (the agent is started with no other; the server's stay on the host).
                for (String who : List.of("root", "user")) {
                    RawClient.Run agentEnvAs = shAs(b, who, "tr '\\0' '\\n' < /proc/1/environ");
                    note("the agent's /proc/1/environ read as " + who, describe(agentEnvAs));
                    if (agentEnvAs.exitCode() == 0) {
                        assertEquals(Set.of("HOME", "LANG", "PATH"), keyValues(agentEnvAs.stdout(), "=").keySet(), describe(agentEnvAs));
                        assertFalse(agentEnvAs.stdout().contains(TestServer.KEY) || agentEnvAs.stdout().contains(ts.dataDir.toString()),
                                describe(agentEnvAs));
                    }
                }
            }
        } finally {
            kill(b);
        }
    }

    @Test
    void agentsEnvironmentHoldsNothingOfTheServers() throws Exception {
        requiresAbsent(Capabilities.USERSPACE_KERNEL, "it reads the agent's environment from its host process, "
                + "and under a kernel of the runtime's own the agent is not a host process");
        RawClient.Box b = box();
        try {
            // The agent's own environment: PATH and LANG from the OCI config, plus what the runtime
            // itself sets (HOME); nothing of the server's. Read on the host.
            long agentPid = hostAgentPid(b);
            String hostView = Files.readString(Path.of("/proc", Long.toString(agentPid), "environ")).replace('\0', '\n');
            Map<String, String> ae = keyValues(hostView, "=");
            note("the agent's environment", ae);
            TreeSet<String> agentExtra = new TreeSet<>(ae.keySet());
            agentExtra.removeAll(Set.of("PATH", "LANG", "HOME"));
            assertEquals(Set.of(), agentExtra, "the agent's environment: " + hostView);
            assertEquals("C.UTF-8", ae.get("LANG"));
        } finally {
            kill(b);
        }
    }

    /**
     * The host pid of sandbox {@code b}'s agent, found without any runtime's state files: the host
     * process running as the sandbox root's host uid (from its uid_map) that is pid 1 of its own pid
     * namespace and runs the agent.
     */
    long hostAgentPid(RawClient.Box b) throws IOException {
        RawClient.Run map = shAs(b, "root", "cat /proc/self/uid_map");
        long hostRoot = Long.parseLong(map.stdout().trim().split("\\s+")[1]);
        List<Long> found = new ArrayList<>();
        try (Stream<Path> s = Files.list(Path.of("/proc"))) {
            for (Path p : s.filter(d -> d.getFileName().toString().matches("\\d+")).toList()) {
                try {
                    String cmd = new String(Files.readAllBytes(p.resolve("cmdline")), StandardCharsets.UTF_8);
                    if (!cmd.contains("/opt/stockade/agent")) continue;
                    long uid = -1;
                    String nspid = "";
                    for (String line : Files.readAllLines(p.resolve("status"))) {
                        if (line.startsWith("Uid:")) uid = Long.parseLong(line.split("\\s+")[1]);
                        if (line.startsWith("NSpid:")) nspid = line.substring(6).strip();
                    }
                    String[] ns = nspid.split("\\s+");
                    if (uid == hostRoot && ns.length > 1 && ns[ns.length - 1].equals("1")) found.add(Long.parseLong(p.getFileName().toString()));
                } catch (IOException | RuntimeException gone) {
                    // ended meanwhile
                }
            }
        }
        assertEquals(1, found.size(), "exactly one agent (pid 1 of its namespace, host uid " + hostRoot + ") on the host: " + found);
        return found.getFirst();
    }

    // ---------------------------------------------------------------------------------------------
    // network

    /** Python that tries each target and prints {target: {"result": errno-name|"connected"|..., "seconds": s}}. */
    static final String CONNECT_PROBE = """
            import errno, json, socket, sys, time
            out = {}
            def tcp(name, family, addr):
                s = socket.socket(family, socket.SOCK_STREAM)
                s.settimeout(5)
                t = time.monotonic()
                try:
                    s.connect(addr)
                    r = "connected"
                except socket.timeout:
                    r = "timeout"
                except OSError as e:
                    r = errno.errorcode.get(e.errno, str(e.errno))
                finally:
                    s.close()
                out[name] = {"result": r, "seconds": time.monotonic() - t}
            for spec in sys.argv[1:]:
                host, port = spec.rsplit(":", 1)
                fam = socket.AF_INET6 if ":" in host else socket.AF_INET
                tcp(spec, fam, (host.strip("[]"), int(port)))
            print(json.dumps(out))
            """;

    JsonNode connect(RawClient.Box b, String user, List<String> targets) {
        List<String> args = new ArrayList<>(List.of("-c", CONNECT_PROBE));
        args.addAll(targets);
        RawClient.Run r = ended(c.start(b, Map.of("process", Map.of("cmd", "/usr/bin/python3", "args", args)), user), "connect");
        assertEquals(0, r.exitCode(), describe(r));
        try {
            return RawClient.JSON.readTree(r.stdout());
        } catch (IOException e) {
            throw new AssertionError(describe(r), e);
        }
    }

    @Test
    void hostLoopbackListenersAreUnreachable() throws Exception {
        AtomicInteger accepted = new AtomicInteger();
        try (ServerSocket loop = new ServerSocket(); ServerSocket any = new ServerSocket()) {
            loop.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
            any.bind(new InetSocketAddress(0));
            for (ServerSocket ss : List.of(loop, any)) {
                Thread.ofVirtual().start(() -> {
                    while (!ss.isClosed()) {
                        try (Socket s = ss.accept()) {
                            accepted.incrementAndGet();
                        } catch (IOException e) {
                            return;
                        }
                    }
                });
            }
            // Control: the listeners do accept connections from the host itself.
            try (Socket s = new Socket(InetAddress.getLoopbackAddress(), loop.getLocalPort())) {
                assertTrue(s.isConnected());
            }
            for (int i = 0; i < 50 && accepted.get() < 1; i++) Thread.sleep(20);
            assertEquals(1, accepted.get(), "the control connection was not accepted");

            int serverPort = ts.server.url().getPort();
            List<String> loopTargets = List.of("127.0.0.1:" + loop.getLocalPort(), "127.0.0.1:" + any.getLocalPort(),
                    "127.0.0.1:" + serverPort);
            List<String> hostAddrs = new ArrayList<>();
            for (NetworkInterface ni : NetworkInterface.networkInterfaces().toList()) {
                if (ni.isLoopback() || !ni.isUp()) continue;
                ni.inetAddresses().filter(a -> a instanceof Inet4Address)
                        .forEach(a -> hostAddrs.add(a.getHostAddress() + ":" + any.getLocalPort()));
            }
            List<String> all = new ArrayList<>(loopTargets);
            all.addAll(hostAddrs);
            for (String user : List.of("user", "root")) {
                RawClient.Box b = box();
                try {
                    JsonNode res = connect(b, user, all);
                    note("connections from the sandbox as " + user, res);
                    for (String t : loopTargets) {
                        assertEquals("ECONNREFUSED", res.path(t).path("result").asText(),
                                "the sandbox's loopback must be its own (" + user + "): " + res);
                    }
                    for (String t : hostAddrs) {
                        assertTrue(answers("ENETUNREACH", "EHOSTUNREACH").contains(res.path(t).path("result").asText()),
                                "the host's own addresses must be unreachable (" + user + "): " + res);
                        assertTrue(res.path(t).path("seconds").asDouble() < 1.0, res.toString());
                    }
                } finally {
                    kill(b);
                }
            }
            assertEquals(1, accepted.get(), "a sandbox connected to a host listener");
        }
    }

    @Test
    void onlyLoopbackAndNoRouteOut() {
        RawClient.Box b = box();
        try {
            RawClient.Run ifs = sh(b, "ls /sys/class/net");
            assertEquals("lo\n", ifs.stdout(), describe(ifs));

            JsonNode names = pyJson(b, "user", "import json, socket; print(json.dumps([n for _, n in socket.if_nameindex()]))");
            assertEquals("[\"lo\"]", names.toString());

            RawClient.Run route = sh(b, "cat /proc/net/route | tail -n +2 | wc -l");
            assertEquals("0", route.stdout().strip(), "no IPv4 routes at all: " + describe(route));

            JsonNode res = connect(b, "user", List.of("1.1.1.1:53", "8.8.8.8:443", "10.0.0.1:80", "192.168.1.1:80",
                    "[2606:4700:4700::1111]:53"));
            note("connections out", res);
            for (var it = res.fields(); it.hasNext(); ) {
                var e = it.next();
                String r = e.getValue().path("result").asText();
                if (e.getKey().startsWith("[")) {
                    // IPv6: unreachable, or no IPv6 stack at all in the namespace.
                    Set<String> v6 = new java.util.HashSet<>(Set.of("ENETUNREACH", "EADDRNOTAVAIL", "EAFNOSUPPORT"));
                    v6.addAll(answers("ENETUNREACH", "EHOSTUNREACH"));
                    assertTrue(v6.contains(r), res.toString());
                } else {
                    // No route: Linux says ENETUNREACH, gVisor's netstack EHOSTUNREACH.
                    assertTrue(answers("ENETUNREACH", "EHOSTUNREACH").contains(r), e.getKey() + ": " + res);
                }
                assertTrue(e.getValue().path("seconds").asDouble() < 1.0, "must fail at once, never hang: " + res);
            }

            // UDP and name resolution fail at once too (no hang on DNS).
            JsonNode udp = pyJson(b, "user", """
                    import errno, json, socket, time
                    out = {}
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    try:
                        s.sendto(b"x", ("1.1.1.1", 53)); out["udp"] = "sent"
                    except OSError as e:
                        out["udp"] = errno.errorcode.get(e.errno, str(e.errno))
                    t = time.monotonic()
                    try:
                        socket.getaddrinfo("example.com", 80); out["dns"] = "resolved"
                    except socket.gaierror as e:
                        out["dns"] = "gaierror"
                    out["dnsSeconds"] = time.monotonic() - t
                    print(json.dumps(out))
                    """);
            note("udp and dns", udp);
            assertTrue(answers("ENETUNREACH", "EHOSTUNREACH").contains(udp.path("udp").asText()), udp.toString());
            assertEquals("gaierror", udp.path("dns").asText(), udp.toString());
            assertTrue(udp.path("dnsSeconds").asDouble() < 5.0, "DNS must not hang: " + udp);

            // Even sandbox root cannot add an interface or an address.
            RawClient.Run ip = shAs(b, "root", "ip link add dummy0 type dummy; ip addr add 10.9.9.9/24 dev lo; ls /sys/class/net");
            assertEquals("lo\n", ip.stdout(), describe(ip));
            assertTrue(answers("Operation not permitted", "Permission denied").stream().anyMatch(ip.stderr()::contains), describe(ip));
        } finally {
            kill(b);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // processes

    @Test
    void hostProcessesAreInvisible() throws Exception {
        RawClient.Box b = box();
        try {
            long jvm = ProcessHandle.current().pid();
            JsonNode procs = pyJson(b, "root", """
                    import json, os
                    out = {}
                    for p in os.listdir("/proc"):
                        if p.isdigit():
                            try:
                                with open("/proc/%s/cmdline" % p, "rb") as f:
                                    out[p] = f.read().replace(b"\\0", b" ").decode("utf-8", "replace").strip()
                            except OSError as e:
                                out[p] = "?" + str(e.errno)
                    print(json.dumps(out))
                    """);
            note("processes in the sandbox", procs);
            assertTrue(procs.size() <= 4, "a fresh sandbox runs the agent and this probe only: " + procs);
            assertTrue(procs.path("1").asText().contains("/opt/stockade/agent"), "pid 1 is the agent: " + procs);
            for (var it = procs.fields(); it.hasNext(); ) {
                var e = it.next();
                String cmd = e.getValue().asText();
                for (String host : List.of("java", "surefire", "maven", "runc", "systemd", "sshd", "containerd")) {
                    assertFalse(cmd.contains(host), "a host process is visible: " + e);
                }
            }
            if (jvm > 100) assertFalse(procs.has(Long.toString(jvm)), "the test JVM's pid is visible: " + procs);

            if (jvm > 100) {
                RawClient.Run signalJvm = sh(b, "kill -0 " + jvm);
                assertNotEquals(0, signalJvm.exitCode(), describe(signalJvm));
                assertTrue(signalJvm.stderr().contains("No such process"), describe(signalJvm));
            }

            // The agent cannot be killed by user code.
            RawClient.Run killInit = sh(b, "kill -9 1");
            assertEquals(1, killInit.exitCode(), describe(killInit));
            assertTrue(killInit.stderr().contains("Operation not permitted"), describe(killInit));
            RawClient.Run after = sh(b, "echo still-alive");
            assertEquals("still-alive\n", after.stdout(), describe(after));

            // The sandbox is a new session with no controlling terminal.
            JsonNode sess = pyJson(b, "user", """
                    import json, os
                    r = {"sid": os.getsid(0), "pid": os.getpid(), "tty": open("/proc/self/stat").read().rsplit(")", 1)[1].split()[4]}
                    try:
                        open("/dev/tty"); r["devtty"] = "opened"
                    except OSError as e:
                        r["devtty"] = e.errno
                    print(json.dumps(r))
                    """);
            note("session", sess);
            assertEquals(sess.path("pid").asInt(), sess.path("sid").asInt(), "a command leads its own session: " + sess);
            assertEquals("0", sess.path("tty").asText(), "no controlling terminal: " + sess);
            // No controlling terminal: Linux answers ENXIO, gVisor EIO; never opened.
            assertTrue(answers(6, 5).contains(sess.path("devtty").asInt()), "opening /dev/tty fails (ENXIO; EIO under gVisor): " + sess);
        } finally {
            kill(b);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // privileges

    /** Prints the process's credentials and the errno of each forbidden syscall (0 = it succeeded). */
    static final String PRIV_PROBE = """
            import ctypes, errno, fcntl, json, os, signal, time
            libc = ctypes.CDLL(None, use_errno=True)
            out = {"uid": os.getuid(), "euid": os.geteuid(), "gid": os.getgid(), "groups": os.getgroups()}
            for line in open("/proc/self/status"):
                k, _, v = line.partition(":")
                if k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"):
                    out[k] = v.strip()
            out["nnp"] = libc.prctl(39, 0, 0, 0, 0)  # PR_GET_NO_NEW_PRIVS
            out["ambient"] = [c for c in range(64) if libc.prctl(47, 1, c, 0, 0) == 1]  # PR_CAP_AMBIENT_IS_SET
            def call(name, fn):
                ctypes.set_errno(0)
                try:
                    r = fn()
                    out[name] = ctypes.get_errno() if r == -1 else 0
                except OSError as e:
                    out[name] = e.errno
            def in_child(fn):
                # a syscall that would change this process is tried in a throw-away child
                pid = os.fork()
                if pid == 0:
                    ctypes.set_errno(0)
                    r = fn()
                    os._exit(ctypes.get_errno() if r == -1 else 0)
                return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            os.makedirs("/tmp/mnt-probe", exist_ok=True)
            out["unshare_user"] = in_child(lambda: libc.unshare(0x10000000))
            out["unshare_mount"] = in_child(lambda: libc.unshare(0x00020000))
            out["unshare_net"] = in_child(lambda: libc.unshare(0x40000000))
            out["mount_tmpfs"] = in_child(lambda: libc.mount(b"x", b"/tmp/mnt-probe", b"tmpfs", 0, None))
            out["chroot"] = in_child(lambda: libc.chroot(b"/"))
            out["setuid0"] = in_child(lambda: libc.setuid(0)) if os.getuid() != 0 else None
            victim = os.fork()
            if victim == 0:
                time.sleep(30)
                os._exit(0)
            call("ptrace_attach", lambda: libc.ptrace(16, victim, None, None))
            call("ptrace_attach_agent", lambda: libc.ptrace(16, 1, None, None))
            call("process_vm_readv", lambda: libc.process_vm_readv(victim, None, 0, None, 0, 0))
            os.kill(victim, signal.SIGKILL)
            os.waitpid(victim, 0)
            call("tiocsti", lambda: fcntl.ioctl(0, 0x5412, b"x"))
            call("keyctl", lambda: libc.syscall(250, 0, 0, 0, 0, 0))
            call("bpf", lambda: libc.syscall(321, 0, 0, 0))
            call("setns", lambda: libc.setns(os.open("/proc/1/ns/mnt", os.O_RDONLY) if os.getuid() == 0 else -1, 0))
            # Calls on no allow-list (refused by omission, not by a rule of their own), each harmless when it runs.
            import platform
            L = ctypes.c_long
            nr = {"x86_64": {"io_setup": 206, "ioctl": 16, "clone3": 435},
                  "aarch64": {"io_setup": 0, "ioctl": 29, "clone3": 435}}.get(platform.machine(), {})
            def sock(family, kind=1):
                def f():
                    fd = libc.socket(family, kind, 0)
                    if fd >= 0:
                        os.close(fd)
                        return 0
                    return -1
                return f
            call("socket_vsock", sock(40))
            call("socket_alg", sock(38))
            call("socket_packet", sock(17, 3))
            def tipc_pair():
                fds = (ctypes.c_int * 2)()
                r = libc.socketpair(30, 5, 0, fds)  # AF_TIPC, SOCK_SEQPACKET
                if r == 0:
                    os.close(fds[0])
                    os.close(fds[1])
                return r
            call("socketpair_tipc", tipc_pair)
            out["personality_norandom"] = in_child(lambda: libc.personality(0x0040000))
            if nr:
                call("io_setup", lambda: libc.syscall(L(nr["io_setup"]), L(0), None))
                # TIOCSTI with high bits set: the kernel reads the command's low 32 bits, so must the filter
                call("tiocsti_high", lambda: libc.syscall(L(nr["ioctl"]), L(0), ctypes.c_ulong(0x100005412), ctypes.c_char_p(b"x")))
                call("clone3", lambda: libc.syscall(L(nr["clone3"]), None, L(0)))
            call("socket_inet", sock(2))
            call("socket_unix", sock(1))
            if platform.machine() == "x86_64":
                # i386's getpid through int 0x80, from executable memory, in a child: a compatibility ABI
                # call (exit 0 when served, the negated errno when refused, -31 when SIGSYS kills it)
                def int80():
                    import mmap
                    code = b"\\xb8\\x14\\x00\\x00\\x00\\xcd\\x80\\xc3"  # mov eax, 20; int 0x80; ret
                    m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
                    m.write(code)
                    r = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))()
                    return 0 if r > 0 else r
                pid = os.fork()
                if pid == 0:
                    os._exit(min(255, -int80()))
                out["int80"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
            print(json.dumps(out))
            """;

    @Test
    void userHasNoPrivileges() {
        RawClient.Box b = box();
        try {
            JsonNode p = pyJson(b, "user", PRIV_PROBE);
            note("privileges of user", p);
            assertEquals(1000, p.path("uid").asInt(), p.toString());
            assertEquals(1000, p.path("euid").asInt(), p.toString());
            assertEquals(1000, p.path("gid").asInt(), p.toString());
            assertTrue(Set.of("[]", "[1000]").contains(p.path("groups").toString()), "no supplementary groups: " + p);
            assertEquals("0000000000000000", p.path("CapEff").asText(), p.toString());
            assertEquals("0000000000000000", p.path("CapPrm").asText(), p.toString());
            assertEquals("0000000000000000", p.path("CapInh").asText(), p.toString());
            assertEquals("[]", p.path("ambient").toString(), "no ambient capabilities: " + p);
            assertEquals(AGENT_CAPS, Long.parseLong(p.path("CapBnd").asText(), 16), p.toString());
            assertEquals(1, p.path("nnp").asInt(), "no_new_privs: " + p);
            // Refused by the kernel user code talks to, whatever it is: no capability, another user's process.
            int eperm = 1;
            for (String k : List.of("unshare_net", "mount_tmpfs", "chroot", "setuid0", "ptrace_attach_agent")) {
                assertEquals(eperm, p.path(k).asInt(), k + " must fail with EPERM: " + p);
            }
            // The host kernel's attack surface (user namespaces, ptrace, cross-memory reads, terminal
            // injection): refused by the seccomp policy. A user-space kernel serves these itself, inside.
            if (checksWithout(Capabilities.USERSPACE_KERNEL, "unshare(CLONE_NEWUSER), ptrace of one's own child,"
                    + " process_vm_readv and TIOCSTI are served by the runtime's own kernel, never the host's")) {
                for (String k : List.of("unshare_user", "unshare_mount", "ptrace_attach", "process_vm_readv", "tiocsti")) {
                    assertEquals(eperm, p.path(k).asInt(), k + " must fail with EPERM: " + p);
                }
                RawClient.Run unshare = sh(b, "unshare -Ur true");
                assertNotEquals(0, unshare.exitCode(), describe(unshare));
                assertTrue(unshare.stderr().contains("Operation not permitted"), describe(unshare));
            }
            RawClient.Run mount = sh(b, "mkdir -p /tmp/m && mount -t tmpfs x /tmp/m; echo rc=$?; grep -c ' /tmp/m ' /proc/self/mountinfo");
            assertTrue(mount.stdout().startsWith("rc=") && !mount.stdout().startsWith("rc=0"), describe(mount));
            assertTrue(mount.stdout().endsWith("\n0\n"), "nothing was mounted: " + describe(mount));
            RawClient.Run chroot = sh(b, "chroot / true");
            assertNotEquals(0, chroot.exitCode(), describe(chroot));
            assertTrue(chroot.stderr().contains("Operation not permitted"), describe(chroot));

            // The agent's socket (which runs anything as sandbox root) is out of user code's reach.
            RawClient.Run sock = sh(b, "ls /run/stockade");
            assertNotEquals(0, sock.exitCode(), describe(sock));
            assertTrue(sock.stderr().contains("Permission denied"), describe(sock));
        } finally {
            kill(b);
        }
    }

    @Test
    void theSeccompAllowListHoldsForUserAndRoot() {
        requires(Capabilities.SECCOMP, "it asserts the marks of the OCI seccomp allow-list (policy/seccomp.json) on the host "
                + "kernel: a filter in mode 2, keyctl and bpf refused with EPERM, calls on no list with ENOSYS");
        RawClient.Box b = box();
        try {
            for (String user : List.of("user", "root")) {
                JsonNode p = pyJson(b, user, PRIV_PROBE);
                note("seccomp marks of " + user, p);
                assertEquals("2", p.path("Seccomp").asText(), user + ": " + p);
                for (String k : List.of("keyctl", "bpf", "tiocsti_high")) {
                    assertEquals(1, p.path(k).asInt(), k + " must fail with EPERM for " + user + ": " + p);
                }
                // Refused because no allow-list names them: ENOSYS, so that C libraries fall back.
                for (String k : List.of("socket_vsock", "socket_alg", "socket_packet", "socketpair_tipc", "personality_norandom",
                        "io_setup", "clone3")) {
                    assertEquals(38, p.path(k).asInt(), k + " must fail with ENOSYS for " + user + ": " + p);
                }
                for (String k : List.of("socket_inet", "socket_unix")) {
                    assertEquals(0, p.path(k).asInt(), k + " stays allowed for " + user + ": " + p);
                }
                // Compatibility ABIs are not on the filter's architectures: their calls kill the caller.
                if (p.has("int80")) assertEquals(-31, p.path("int80").asInt(), "i386 int 0x80 ends in SIGSYS for " + user + ": " + p);
            }
        } finally {
            kill(b);
        }
    }

    @Test
    void sandboxRootIsNotHostRoot() throws Exception {
        RawClient.Box b = box();
        try {
            JsonNode p = pyJson(b, "root", PRIV_PROBE);
            note("privileges of sandbox root", p);
            assertEquals(0, p.path("uid").asInt(), p.toString());
            long eff = Long.parseLong(p.path("CapEff").asText(), 16);
            assertEquals(0, eff & ~AGENT_CAPS, "sandbox root holds no capability beyond the agent's: " + p);
            assertEquals(AGENT_CAPS, Long.parseLong(p.path("CapBnd").asText(), 16), p.toString());
            assertEquals(1, p.path("nnp").asInt(), "no_new_privs: " + p);
            assertEquals("[]", p.path("ambient").toString(), "no ambient capabilities: " + p);
            for (String k : List.of("unshare_net", "mount_tmpfs", "chroot", "ptrace_attach_agent")) {
                assertEquals(1, p.path(k).asInt(), k + " must fail with EPERM for sandbox root too: " + p);
            }
            assertNotEquals(0, p.path("setns").asInt(), "setns into the agent's namespaces must fail: " + p);
            boolean hostKernel = checksWithout(Capabilities.USERSPACE_KERNEL, "unshare(CLONE_NEWUSER), ptrace,"
                    + " process_vm_readv, TIOCSTI and setns are served by the runtime's own kernel, never the host's");
            if (hostKernel) {
                for (String k : List.of("unshare_user", "unshare_mount", "ptrace_attach", "process_vm_readv", "tiocsti", "setns")) {
                    assertEquals(1, p.path(k).asInt(), k + " must fail with EPERM for sandbox root too: " + p);
                }
            }

            RawClient.Run mount = shAs(b, "root", "mkdir -p /tmp/m && mount -t tmpfs x /tmp/m; echo rc=$?; grep -c ' /tmp/m ' /proc/self/mountinfo");
            assertTrue(mount.stdout().startsWith("rc=") && !mount.stdout().startsWith("rc=0"), describe(mount));
            assertTrue(mount.stdout().endsWith("\n0\n"), "nothing was mounted: " + describe(mount));
            assertTrue(mount.stderr().toLowerCase().contains("permission denied")
                    || mount.stderr().contains("Operation not permitted"), describe(mount));
            if (hostKernel) {
                RawClient.Run unshare = shAs(b, "root", "unshare -Ur true");
                assertNotEquals(0, unshare.exitCode(), describe(unshare));
                assertTrue(unshare.stderr().contains("Operation not permitted"), describe(unshare));
            }
            RawClient.Run touch = shAs(b, "root", "touch /usr/x");
            assertNotEquals(0, touch.exitCode(), describe(touch));
            assertTrue(touch.stderr().contains("Read-only file system"), describe(touch));

            // Seen from the host, whatever the sandbox's kernel: what sandbox root creates is owned by an
            // unprivileged host uid of the sandbox's range.
            RawClient.Run made = shAs(b, "root", "touch /tmp/root-made && echo ok");
            assertEquals("ok\n", made.stdout(), describe(made));
            long owner = TestServer.hostOwnerOf(ts.dataDir, b.id(), "tmp/root-made");
            assertTrue(owner >= TestServer.FIRST_SANDBOX_UID, "sandbox root's file is owned by host uid " + owner);
            if (!checksWithout(Capabilities.USERSPACE_KERNEL, "the sandbox's processes are the runtime kernel's tasks,"
                    + " not host processes, and its /proc/self/uid_map is that kernel's own")) {
                return;
            }

            // The user namespace maps sandbox root to an unprivileged host uid.
            RawClient.Run maps = shAs(b, "root", "cat /proc/self/uid_map /proc/self/gid_map");
            note("uid_map, gid_map", maps.stdout());
            List<String[]> rows = maps.stdout().lines().map(l -> l.trim().split("\\s+")).toList();
            assertEquals(2, rows.size(), describe(maps));
            for (String[] row : rows) {
                assertEquals("0", row[0], describe(maps));
                long hostBase = Long.parseLong(row[1]);
                assertTrue(hostBase >= 2_097_152, "sandbox root maps to host uid " + hostBase + ": " + describe(maps));
                assertEquals(65536, Long.parseLong(row[2]), describe(maps));
            }

            // Seen from the host: the agent and a process started as sandbox root run as unprivileged uids.
            String marker = "31." + (1000 + new java.util.Random().nextInt(8999));
            RawClient.Run bg = shAs(b, "root", "nohup sleep " + marker + " > /dev/null 2>&1 & echo started");
            assertEquals("started\n", bg.stdout(), describe(bg));
            Map<String, String> hostUids = new LinkedHashMap<>();
            for (int i = 0; i < 50; i++) {
                hostUids = hostUidsOf(List.of("/opt/stockade/agent", "sleep\0" + marker));
                if (hostUids.keySet().stream().anyMatch(k -> k.contains(marker))) break;
                Thread.sleep(50);
            }
            assertTrue(hostUids.keySet().stream().anyMatch(k -> k.contains(marker)), "the sleep was not found on the host: " + hostUids);
            assertTrue(hostUids.keySet().stream().anyMatch(k -> k.contains("/opt/stockade/agent")), "no agent found on the host: " + hostUids);
            note("host uids of sandbox processes", hostUids);
            for (var e : hostUids.entrySet()) {
                for (String uid : e.getValue().split("\\s+")) {
                    assertTrue(Long.parseLong(uid) >= TestServer.FIRST_SANDBOX_UID,
                            "host process " + e.getKey() + " runs as host uid " + uid);
                }
            }
        } finally {
            kill(b);
        }
    }

    /** Host processes whose command line contains one of the needles: "pid cmdline" -> "real eff saved fs" uids. */
    Map<String, String> hostUidsOf(List<String> needles) throws IOException {
        Map<String, String> found = new LinkedHashMap<>();
        try (Stream<Path> s = Files.list(Path.of("/proc"))) {
            for (Path p : s.filter(d -> d.getFileName().toString().matches("\\d+")).toList()) {
                try {
                    String cmd = new String(Files.readAllBytes(p.resolve("cmdline")), StandardCharsets.UTF_8);
                    if (needles.stream().noneMatch(cmd::contains)) continue;
                    for (String line : Files.readAllLines(p.resolve("status"))) {
                        if (line.startsWith("Uid:")) found.put(p.getFileName() + " " + cmd.replace('\0', ' '), line.substring(4).strip());
                    }
                } catch (IOException | RuntimeException gone) {
                    // ended meanwhile
                }
            }
        }
        return found;
    }

    @Test
    void setuidGivesNothing() {
        RawClient.Box b = box();
        try {
            // su/sudo: absent or refusing; never uid 0.
            RawClient.Run su = sh(b, "su -c 'id -u' root < /dev/null; echo rc=$?; sudo -n id -u < /dev/null; echo rc=$?");
            note("su and sudo", describe(su));
            assertFalse(su.stdout().lines().anyMatch(l -> l.equals("0")), describe(su));
            assertFalse(su.stdout().contains("rc=0"), describe(su));

            // A setuid-root copy made by sandbox root does not elevate user code (no_new_privs, nosuid).
            RawClient.Run mk = shAs(b, "root", "cp /usr/bin/python3 /tmp/suid-python && chmod 4755 /tmp/suid-python && stat -c '%a %u' /tmp/suid-python");
            assertEquals("4755 0\n", mk.stdout(), describe(mk));
            RawClient.Run run = sh(b, "/tmp/suid-python -c 'import os; print(os.getuid(), os.geteuid())'");
            assertEquals("1000 1000\n", run.stdout(), describe(run));
            // The host's setuid binaries under the read-only /usr bind lose their bit too.
            RawClient.Run hostSuid = sh(b, "for f in /usr/bin/su /usr/bin/passwd /usr/bin/mount /usr/bin/newgrp; do "
                    + "test -u $f && echo \"$f $(grep -c nosuid <<< \"$(findmnt -no OPTIONS -T $f)\")\"; done");
            note("setuid copy run by user", run.stdout());
            note("host setuid binaries and their nosuid mounts", hostSuid.stdout());
            if (checksWithout(Capabilities.USERSPACE_KERNEL, "its mount table shows no nosuid flags; the setuid copy"
                    + " above proves that a setuid bit gives user code nothing (no_new_privs)")) {
                for (String line : hostSuid.stdout().lines().toList()) {
                    assertTrue(line.endsWith(" 1"), "setuid binary on a mount without nosuid: " + describe(hostSuid));
                }
            }
        } finally {
            kill(b);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // filesystems

    @Test
    void filesystemsAreReadOnlyWhereTheyMustBe() throws Exception {
        RawClient.Box b = box();
        try {
            RawClient.Run usr = sh(b, "touch /usr/x");
            assertNotEquals(0, usr.exitCode(), describe(usr));
            assertTrue(usr.stderr().contains("Read-only file system") || usr.stderr().contains("Permission denied"), describe(usr));

            JsonNode w = pyJson(b, "root", """
                    import errno, glob, json
                    out = {}
                    def write(path, data=b"1"):
                        try:
                            with open(path, "wb") as f:
                                f.write(data)
                            return "written"
                        except OSError as e:
                            return errno.errorcode.get(e.errno, str(e.errno))
                    out["usr"] = write("/usr/stockade-x")
                    out["usr_bin"] = write("/usr/bin/python3")
                    out["proc_sys_hostname"] = write("/proc/sys/kernel/hostname", b"evil")
                    out["proc_sys_vm"] = write("/proc/sys/vm/drop_caches", b"3")
                    out["sys_new"] = write("/sys/stockade-x")
                    out["sys_uevent"] = write("/sys/kernel/uevent_helper", b"/tmp/x")
                    mem = glob.glob("/sys/fs/cgroup/memory/memory.limit_in_bytes") + glob.glob("/sys/fs/cgroup/memory.max")
                    out["cgroup_memory"] = write(mem[0], b"-1") if mem else "absent"
                    pids = glob.glob("/sys/fs/cgroup/pids/pids.max") + glob.glob("/sys/fs/cgroup/pids.max")
                    out["cgroup_pids"] = write(pids[0], b"max") if pids else "absent"
                    out["agent"] = write("/opt/stockade/agent", b"evil")
                    print(json.dumps(out))
                    """);
            note("writes by sandbox root", w);
            for (String k : List.of("usr", "usr_bin", "sys_new", "agent")) {
                assertEquals("EROFS", w.path(k).asText(), k + " must be read-only even for sandbox root: " + w);
            }
            // /proc/sys refuses writes (gVisor's procfs with EIO or EPERM); the cgroup view is read-only
            // or, under a runtime with a kernel of its own, not there at all.
            for (String k : List.of("proc_sys_hostname", "proc_sys_vm")) {
                assertTrue(answers("EROFS", "EIO", "EPERM").contains(w.path(k).asText()), k + " must be read-only even for sandbox root: " + w);
            }
            for (String k : List.of("cgroup_memory", "cgroup_pids")) {
                assertTrue(answers("EROFS", "absent").contains(w.path(k).asText()), k + " must be read-only even for sandbox root: " + w);
            }
            assertTrue(Set.of("EROFS", "ENOENT", "EACCES").contains(w.path("sys_uevent").asText()), w.toString());

            // The mount table says so too.
            RawClient.Run mi = sh(b, "cat /proc/self/mountinfo");
            Map<String, String> opts = new LinkedHashMap<>();
            Map<String, String> types = new LinkedHashMap<>();
            for (String line : mi.stdout().lines().toList()) {
                String[] f = line.split(" ");
                opts.put(f[4], f[5]);
                types.put(f[4], line.substring(line.indexOf(" - ") + 3).split(" ")[0]);
            }
            note("mounts", types.keySet().stream().map(k -> k + " " + types.get(k) + " " + opts.get(k)).toList());
            // (/proc/sys is a read-only bind under runc; gVisor's procfs makes it read-only itself, as the
            // writes above proved, without a mount of its own.)
            List<String> readOnlyMounts = checksWithout(Capabilities.USERSPACE_KERNEL, "its procfs refuses writes to"
                    + " /proc/sys by itself (proved above) rather than through a read-only bind mount")
                    ? List.of("/usr", "/proc/sys", "/sys", "/opt/stockade") : List.of("/usr", "/sys", "/opt/stockade");
            for (String mp : readOnlyMounts) {
                assertTrue(opts.containsKey(mp), mp + " is not a mount point: " + opts);
                assertTrue(opts.get(mp).startsWith("ro"), mp + " mounted " + opts.get(mp));
            }
            // Every cgroup hierarchy is read-only (the tmpfs runc puts at /sys/fs/cgroup on cgroup v1 only
            // holds the mount points and is the container's own).
            long cgroupMounts = 0;
            for (String mp : opts.keySet()) {
                if (types.get(mp).startsWith("cgroup")) {
                    cgroupMounts++;
                    assertTrue(opts.get(mp).startsWith("ro"), mp + " mounted " + opts.get(mp));
                }
            }
            // (A runtime with a kernel of its own mounts no cgroup view at all: nothing to write to.)
            if (readOnlyMounts.contains("/proc/sys")) assertTrue(cgroupMounts > 0, "no cgroup mount seen: " + types);

            // Stockade's own /etc, not the host's.
            RawClient.Run passwd = sh(b, "cut -d: -f1 /etc/passwd");
            assertEquals(List.of("root", "user", "nobody"), passwd.stdout().lines().toList(), describe(passwd));
            RawClient.Run secrets = sh(b, "for f in /etc/shadow /etc/gshadow /etc/ssh /etc/machine-id /root/.ssh; do "
                    + "test -e $f && echo present $f; done; echo checked");
            assertEquals("checked\n", secrets.stdout(), describe(secrets));

            String hostName = Files.readString(Path.of("/etc/hostname")).strip();
            RawClient.Run hn = sh(b, "hostname; cat /etc/hostname; cat /proc/sys/kernel/hostname");
            assertEquals(List.of("sandbox", "sandbox", "sandbox"), hn.stdout().lines().toList(), describe(hn));
            assertNotEquals(hostName, "sandbox", "the host is itself called 'sandbox': this check proves nothing here");

            // The writable places are writable, and owned right.
            RawClient.Run rw = sh(b, "echo one > /home/user/f && echo two > /tmp/f && cat /home/user/f /tmp/f && stat -c %U /home/user/f");
            assertEquals("one\ntwo\nuser\n", rw.stdout(), describe(rw));

            // A minimal /dev: no block devices, no memory or kernel-log devices.
            RawClient.Run dev = sh(b, "find /dev -xdev -type b | wc -l; for d in mem kmem port kmsg sda vda nvme0 loop0; do "
                    + "test -e /dev/$d && echo has-$d; done; ls /dev");
            List<String> devLines = dev.stdout().lines().toList();
            note("/dev", devLines);
            assertEquals("0", devLines.get(0), describe(dev));
            assertTrue(devLines.stream().noneMatch(l -> l.startsWith("has-")), describe(dev));
            Set<String> allowedDev = new java.util.HashSet<>(Set.of("null", "zero", "full", "random", "urandom", "tty", "console",
                    "pts", "ptmx", "shm", "mqueue", "fd", "stdin", "stdout", "stderr", "core"));
            if (!checksWithout(Capabilities.USERSPACE_KERNEL, "its /dev also holds fuse and net/tun, devices of its own"
                    + " kernel (no host device behind them; the interface changes above are refused)")) {
                allowedDev.addAll(Set.of("fuse", "net"));
            }
            for (String d : devLines.subList(1, devLines.size())) {
                assertTrue(allowedDev.contains(d), "/dev/" + d + " should not be there: " + describe(dev));
            }
        } finally {
            kill(b);
        }
    }

    @Test
    void sensitiveProcFilesAreMasked() {
        RawClient.Box b = box();
        try {
            JsonNode m = pyJson(b, "root", """
                    import errno, json, os
                    out = {}
                    for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats",
                              "/proc/timer_stats", "/proc/sysrq-trigger"):
                        try:
                            with open(p, "rb") as f:
                                out[p] = len(f.read(65536))
                        except OSError as e:
                            out[p] = errno.errorcode.get(e.errno, str(e.errno))
                    for d in ("/proc/acpi", "/proc/scsi", "/sys/firmware"):
                        try:
                            out[d] = len(os.listdir(d))
                        except OSError as e:
                            out[d] = errno.errorcode.get(e.errno, str(e.errno))
                    # control: an unmasked proc file of the same kind has content
                    out["control"] = len(open("/proc/uptime", "rb").read())
                    print(json.dumps(out))
                    """);
            note("masked paths", m);
            assertTrue(m.path("control").asInt() > 0, m.toString());
            for (var it = m.fields(); it.hasNext(); ) {
                var e = it.next();
                if (e.getKey().equals("control")) continue;
                JsonNode v = e.getValue();
                assertTrue(v.isTextual() || v.asInt() == 0, e.getKey() + " must be empty or unreadable: " + m);
            }
            // timer_list exists on this kernel and is world-readable when unmasked: it must read as empty.
            // (or does not exist, as in gVisor's procfs)
            for (String f : List.of("/proc/timer_list", "/proc/keys")) {
                JsonNode v = m.path(f);
                assertTrue(v.isTextual() ? capabilities().contains(Capabilities.USERSPACE_KERNEL) && v.asText().equals("ENOENT")
                        : v.asInt(-1) == 0, f + ": " + m);
            }
        } finally {
            kill(b);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // sandboxes against each other

    @Test
    void sandboxesCannotSeeEachOther() {
        RawClient.Box a = box();
        RawClient.Box b = box();
        try {
            String marker = "marker-" + random();
            String sleep = "37." + (1000 + new java.util.Random().nextInt(8999));
            RawClient.Run setup = sh(a, "echo " + marker + " > /tmp/" + marker + " && echo " + marker + " > /home/user/" + marker
                    + " && (nohup sleep " + sleep + " > /dev/null 2>&1 &) && "
                    + "(nohup python3 -c 'import socket,time; s=socket.socket(); s.bind((\"127.0.0.1\", 47123)); s.listen(); time.sleep(30)' > /dev/null 2>&1 &) && "
                    + "sleep 0.5; ls /tmp /home/user | grep -c " + marker);
            assertEquals("2\n", setup.stdout(), "the control in A: " + describe(setup));
            String listProcs = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done";
            RawClient.Run procsA = shAs(a, "root", listProcs);
            assertTrue(procsA.stdout().lines().anyMatch(l -> l.startsWith("sleep " + sleep)), "the control in A: " + describe(procsA));

            RawClient.Run look = shAs(b, "root", "ls /tmp /home/user /proc/1/root/tmp | grep -c " + marker
                    + "; grep -rsl " + marker + " /tmp /home /root | wc -l");
            assertEquals("0\n0\n", look.stdout(), "A's files are visible in B: " + describe(look));
            RawClient.Run procsB = shAs(b, "root", listProcs);
            assertFalse(procsB.stdout().lines().anyMatch(l -> l.startsWith("sleep " + sleep)), "A's process is visible in B: " + describe(procsB));
            assertTrue(procsB.stdout().lines().filter(l -> !l.isBlank()).count() <= 4, "B sees only its own few processes: " + describe(procsB));

            // B's loopback is not A's: A's listener is refused in B, reachable in A.
            JsonNode fromB = connect(b, "user", List.of("127.0.0.1:47123"));
            assertEquals("ECONNREFUSED", fromB.path("127.0.0.1:47123").path("result").asText(), fromB.toString());
            JsonNode fromA = connect(a, "user", List.of("127.0.0.1:47123"));
            assertEquals("connected", fromA.path("127.0.0.1:47123").path("result").asText(), fromA.toString());

            // Different sandboxes get different host uid ranges (seen from the host: files of each root).
            assertEquals("", shAs(a, "root", "touch /tmp/range-probe").stdout());
            assertEquals("", shAs(b, "root", "touch /tmp/range-probe").stdout());
            long ua = TestServer.hostOwnerOf(ts.dataDir, a.id(), "tmp/range-probe");
            long ub = TestServer.hostOwnerOf(ts.dataDir, b.id(), "tmp/range-probe");
            assertNotEquals(ua, ub, "two sandboxes' roots are the same host uid");
            assertTrue(Math.abs(ua - ub) >= 65536, "overlapping uid ranges: " + ua + " / " + ub);

            // B's access token does not open A.
            RawClient.Response cross = c.call("POST", "/process.Process/List", Map.of(),
                    Map.of("E2b-Sandbox-Id", a.id(), "E2b-Sandbox-Port", "49983", "X-Access-Token", b.token(),
                            "Content-Type", "application/json"));
            note("B's token on A", cross.status() + " " + cross.body() + " / files: " + crossFile(a, b, marker));
            assertTrue(cross.status() == 401 || cross.status() == 403 || cross.status() == 404,
                    "B's token on A: " + cross.status() + " " + cross.body());
            HttpResponse<byte[]> crossFile = filesWithToken(a.id(), b.token(), "/tmp/" + marker);
            assertNotEquals(200, crossFile.statusCode(), new String(crossFile.body(), StandardCharsets.UTF_8));
            assertFalse(new String(crossFile.body(), StandardCharsets.UTF_8).contains(marker));
        } finally {
            kill(a);
            kill(b);
        }
    }

    @Test
    void sandboxRootCannotRedirectTheServerIntoAnotherSandbox() {
        RawClient.Box a = box();
        RawClient.Box b = box();
        try {
            String secret = "B-ONLY-" + random();
            RawClient.Run plantB = sh(b, "echo " + secret + " > /home/user/b-secret && echo ok");
            assertEquals("ok\n", plantB.stdout(), describe(plantB));

            // A's root (any API client may run commands as "root") swaps its agent socket for a link
            // to B's. Its own mount table no longer shows host paths for /run/stockade (a tmpfs
            // subdirectory), so the attacker must guess the data directory; the test knows it, and
            // the defence (the server checks the peer's uid on every connection) must hold anyway.
            RawClient.Run mi = shAs(a, "root", "awk '$5 == \"/run/stockade\" {print $4}' /proc/self/mountinfo");
            note("what /proc/self/mountinfo shows of /run/stockade", mi.stdout().strip());
            assertFalse(mi.stdout().contains(a.id()), "the sandbox's id and host path are not visible: " + describe(mi));
            String bSocket = hostAgentSocket(b.id()).toString();
            RawClient.Run swap = shAs(a, "root", "mv /run/stockade/agent.sock /run/stockade/real.sock && ln -s " + bSocket
                    + " /run/stockade/agent.sock && echo swapped");
            assertEquals("swapped\n", swap.stdout(), describe(swap));

            // Whatever the server answers for A, it must not be B's.
            RawClient.Run cmd = c.run(a, "cat /home/user/b-secret; cat /etc/hostname");
            note("a command sent to A after the swap", describe(cmd));
            assertFalse(cmd.stdout().contains(secret), "a command sent to sandbox A ran in sandbox B: " + describe(cmd));
            HttpResponse<byte[]> file = c.download(a, "/home/user/b-secret");
            String body = new String(file.body(), StandardCharsets.UTF_8);
            assertFalse(body.contains(secret), "sandbox A's files API read sandbox B's file: " + file.statusCode() + " " + body);
            RawClient.Response up = c.upload(a, "/home/user/from-a", "x".getBytes(StandardCharsets.UTF_8));
            RawClient.Run inB = sh(b, "test -e /home/user/from-a && echo present || echo absent");
            assertEquals("absent\n", inB.stdout(), "an upload to A landed in B (" + up.status() + ")");
        } finally {
            kill(a);
            kill(b);
        }
    }

    /**
     * The host path of sandbox {@code id}'s agent socket, wherever the runtime under test keeps it
     * under the data directory (a file named agent.sock on a path that names the sandbox).
     */
    Path hostAgentSocket(String id) {
        try (Stream<Path> s = Files.walk(ts.dataDir.resolve("runtime"), 8)) {
            List<Path> found = s.filter(p -> p.getFileName().toString().equals("agent.sock") && p.toString().contains(id)).toList();
            assertEquals(1, found.size(), "sandbox " + id + "'s agent socket under " + ts.dataDir + ": " + found);
            return found.getFirst();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    String crossFile(RawClient.Box a, RawClient.Box b, String marker) {
        HttpResponse<byte[]> r = filesWithToken(a.id(), b.token(), "/tmp/" + marker);
        return r.statusCode() + " " + new String(r.body(), StandardCharsets.UTF_8);
    }

    HttpResponse<byte[]> filesWithToken(String id, String token, String path) {
        try {
            var rb = java.net.http.HttpRequest.newBuilder(c.base.resolve("/files?path="
                            + java.net.URLEncoder.encode(path, StandardCharsets.UTF_8)))
                    .timeout(java.time.Duration.ofSeconds(30)).GET()
                    .header("E2b-Sandbox-Id", id).header("E2b-Sandbox-Port", "49983").header("X-Access-Token", token);
            return c.http.send(rb.build(), HttpResponse.BodyHandlers.ofByteArray());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    // ---------------------------------------------------------------------------------------------
    // the files API against planted symlinks and traversal

    @Test
    void plantedSymlinksResolveInsideTheSandbox() throws Exception {
        String secret = "SECRET" + random();
        Path canary = hostCanary(secret);
        Path hostVictim = Path.of("/tmp/stockade-victim-" + random());
        String hostName = Files.readString(Path.of("/etc/hostname"));
        RawClient.Box b = box();
        try {
            RawClient.Run plant = sh(b, "ln -s /etc/hostname /home/user/l-hostname && ln -s " + canary + " /home/user/l-canary"
                    + " && ln -s ../../../../../../../.." + canary + " /home/user/l-relative"
                    + " && ln -s /proc/1/root" + canary + " /home/user/l-proc"
                    + " && ln -s " + hostVictim + " /home/user/l-victim && ln -s /tmp /home/user/l-dir && echo planted");
            assertEquals("planted\n", plant.stdout(), describe(plant));

            HttpResponse<byte[]> h = c.download(b, "/home/user/l-hostname");
            String body = new String(h.body(), StandardCharsets.UTF_8);
            note("link to /etc/hostname through /files", h.statusCode() + " " + body.strip());
            assertTrue(h.statusCode() == 404 || (h.statusCode() == 200 && body.equals("sandbox\n")),
                    "a link to /etc/hostname gives the sandbox's file: " + h.statusCode() + " " + body);
            assertNotEquals(hostName, body);
            for (String link : List.of("/home/user/l-canary", "/home/user/l-relative", "/home/user/l-proc", "l-canary",
                    "/home/user/l-dir/../../.." + canary)) {
                HttpResponse<byte[]> r = c.download(b, link);
                String text = new String(r.body(), StandardCharsets.UTF_8);
                assertEquals(404, r.statusCode(), link + ": " + text);
                assertFalse(text.contains(secret), link + " leaked the host canary");
            }

            // Writing through a link to a host path creates the file inside the sandbox only.
            RawClient.Response up = c.upload(b, "/home/user/l-victim", "through-the-link".getBytes(StandardCharsets.UTF_8));
            assertEquals(200, up.status(), up.body());
            assertFalse(Files.exists(hostVictim), "a write through a planted link reached the host: " + hostVictim);
            RawClient.Run inside = sh(b, "cat " + hostVictim);
            assertEquals("through-the-link", inside.stdout(), describe(inside));
            // ... and through a link to the host canary: the host file is untouched.
            RawClient.Response up2 = c.upload(b, "/home/user/l-canary", "overwritten".getBytes(StandardCharsets.UTF_8));
            assertEquals(200, up2.status(), up2.body());
            assertEquals("host canary " + secret + "\n", Files.readString(canary));
        } finally {
            kill(b);
            deleteQuietly(canary);
            deleteQuietly(hostVictim);
        }
    }

    @Test
    void traversalThroughTheFilesApiStaysInside() throws Exception {
        String name = "stockade-trav-" + random();
        Path hostFile = Path.of("/tmp", name);
        Path hostCanary = Path.of("/tmp", name + "-canary");
        Files.writeString(hostCanary, "HOST\n");
        Path inData = ts.dataDir.resolve(name);
        RawClient.Box b = box();
        try {
            Map<String, String> writes = new LinkedHashMap<>();
            writes.put("../../../../tmp/" + name, "/tmp/" + name);
            writes.put("/etc/../tmp/" + hostCanary.getFileName(), "/tmp/" + hostCanary.getFileName());
            writes.put("/../../../../../../tmp/" + name + "-abs", "/tmp/" + name + "-abs");
            writes.put(inData.toString(), inData.toString());
            writes.put("~/../../tmp/" + name + "-tilde", "/tmp/" + name + "-tilde");
            int i = 0;
            for (var e : writes.entrySet()) {
                String content = "sandbox-" + (i++);
                RawClient.Response r = c.upload(b, e.getKey(), content.getBytes(StandardCharsets.UTF_8));
                assertEquals(200, r.status(), e.getKey() + ": " + r.body());
                RawClient.Run check = sh(b, "cat " + e.getValue());
                assertEquals(content, check.stdout(), e.getKey() + " should land at " + e.getValue() + " inside: " + describe(check));
            }
            assertFalse(Files.exists(hostFile), "a traversal write reached the host: " + hostFile);
            assertFalse(Files.exists(Path.of("/tmp", name + "-abs")));
            assertFalse(Files.exists(Path.of("/tmp", name + "-tilde")));
            assertFalse(Files.exists(inData), "an absolute host path was written on the host: " + inData);
            assertEquals("HOST\n", Files.readString(hostCanary), "the host canary was overwritten");

            // Reads by traversal get the sandbox's files, never the host's.
            HttpResponse<byte[]> hn = c.download(b, "../../../../../etc/hostname");
            assertEquals(200, hn.statusCode());
            assertEquals("sandbox\n", new String(hn.body(), StandardCharsets.UTF_8));
            HttpResponse<byte[]> dd = c.download(b, ts.dataDir.resolve("api-key").toString());
            assertEquals(404, dd.statusCode(), new String(dd.body(), StandardCharsets.UTF_8));
        } finally {
            kill(b);
            deleteQuietly(hostFile);
            deleteQuietly(hostCanary);
            deleteQuietly(Path.of("/tmp", name + "-abs"));
            deleteQuietly(Path.of("/tmp", name + "-tilde"));
        }
    }
}
