package dev.stockade.conformance;

import java.net.URI;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Every error text a test saw from a server — each non-2xx body and each Connect end-of-stream
 * error {@link RawClient} read — and the check that none of them names a host detail (issue 15, item
 * 4): the server's data directory, the test's temporary root, a runtime's state directory, a host
 * cgroup, a host uid, raw runc/runsc output, or a Java class name. {@link TestServer#close} runs the
 * check over everything its server answered, so every suite that provokes errors through the raw
 * client greps them. Texts are kept per server (by base URI): test classes run one after another in
 * one JVM, each with its own server. Thread-safe: streams are read on several threads at once.
 *
 * <p>The patterns name host-side things only, never what a sandbox shows its user: {@code /home/user},
 * {@code /tmp/x} inside a sandbox or a sandbox uid (0..65535) are the user's own and pass.
 */
public final class ErrorTexts {
    private static final Map<URI, Queue<String>> SEEN = new ConcurrentHashMap<>();

    /** Uids of sandboxes on the host start here ({@link TestServer#FIRST_SANDBOX_UID}); a sandbox's own are below 65536. */
    private static final long FIRST_HOST_UID = TestServer.FIRST_SANDBOX_UID;

    private static final List<Map.Entry<String, Pattern>> HOST_DETAILS = List.of(
            Map.entry("the tests' temporary root", Pattern.compile("/tmp/stockade-it")),
            Map.entry("a runtime's state directory", Pattern.compile("/runtime/(runc|runsc|[a-z]+/sandboxes)")),
            Map.entry("a sandbox's host directory", Pattern.compile("/sandboxes/[^/\\s]+/(disk|bundle|rootfs|upper|work)")),
            Map.entry("a host cgroup", Pattern.compile("/sys/fs/cgroup|stockade-[a-z0-9]+/")),
            Map.entry("raw runc/runsc output", Pattern.compile("level=(error|warning|fatal|info)|msg=\"|\\bnsexec|libcontainer")),
            Map.entry("a Java class name", Pattern.compile("\\b(java|javax|jdk|sun|com\\.fasterxml|dev\\.stockade)\\.[a-z]")),
            Map.entry("a Java exception", Pattern.compile("\\b\\w*Exception\\b")));
    private static final Pattern UID = Pattern.compile("(?i)\\b(uid|user|owner)\\b\\D{0,16}?(\\d{6,10})\\b");

    private ErrorTexts() {}

    /** Records {@code text}, which the server at {@code base} sent as an error ({@code where}: the call). */
    static void seen(URI base, String where, String text) {
        if (text == null || text.isEmpty()) return;
        SEEN.computeIfAbsent(base, b -> new ConcurrentLinkedQueue<>()).add(where + ": " + text);
    }

    /** Every error text recorded for the server at {@code base}, and forgets them. */
    static List<String> drain(URI base) {
        Queue<String> q = SEEN.remove(base);
        return q == null ? List.of() : new ArrayList<>(q);
    }

    /**
     * The host details {@code text} names, each as "what: the text" (empty when it names none):
     * {@code dataDir} literally, then the patterns above, then any number after "uid"/"user"/"owner"
     * at or above the first host uid of a sandbox.
     */
    public static List<String> hostDetails(String text, Path dataDir) {
        List<String> found = new ArrayList<>();
        if (dataDir != null && text.contains(dataDir.toString())) found.add("the server's data directory: " + text);
        for (var d : HOST_DETAILS) {
            if (d.getValue().matcher(text).find()) found.add(d.getKey() + ": " + text);
        }
        Matcher m = UID.matcher(text);
        while (m.find()) {
            if (Long.parseLong(m.group(2)) >= FIRST_HOST_UID) {
                found.add("a host uid (" + m.group(2) + "): " + text);
                break;
            }
        }
        return found;
    }

    /** The host details named by every error the server at {@code base} sent, recorded texts forgotten. */
    static List<String> leaks(URI base, Path dataDir) {
        List<String> out = new ArrayList<>();
        List<String> texts = drain(base);
        for (String t : texts) out.addAll(hostDetails(t, dataDir));
        if (System.getenv("STOCKADE_PRINT_ERRORS") != null) texts.forEach(t -> System.out.println("[error-texts] " + t));
        System.out.println("[error-texts] " + texts.size() + " error answers of " + base + " checked for host details, "
                + out.size() + " found");
        return out;
    }
}
