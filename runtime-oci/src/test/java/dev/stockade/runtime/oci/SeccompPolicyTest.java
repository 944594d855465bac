package dev.stockade.runtime.oci;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * policy/seccomp.json as reviewed data (every entry has a reason, the default refuses, nothing is both
 * allowed and denied, every name is a system call) and its translation into OCI rules (what libseccomp
 * will really evaluate: argument comparisons, errnos). Pure: no root, no runc.
 */
class SeccompPolicyTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final JsonNode POLICY = SeccompPolicy.loadPolicy(JSON);
    static final JsonNode OCI = SeccompPolicy.toOci(JSON, POLICY);

    /** The OCI rules naming {@code syscall}. */
    static List<JsonNode> rulesFor(String syscall) {
        List<JsonNode> out = new ArrayList<>();
        for (JsonNode r : OCI.get("syscalls")) {
            for (JsonNode n : r.get("names")) if (n.asText().equals(syscall)) out.add(r);
        }
        return out;
    }

    static boolean allowedUnconditionally(String syscall) {
        return rulesFor(syscall).stream().anyMatch(r -> r.get("action").asText().equals("SCMP_ACT_ALLOW") && !r.has("args"));
    }

    @Test
    void everyAllowedGroupAndEveryDenialHasAReason() {
        int entries = 0;
        for (String list : List.of("allow", "deny")) {
            for (JsonNode rule : POLICY.get(list)) {
                entries++;
                assertTrue(rule.path("reason").asText("").strip().length() >= 20, "entry without a real reason: " + rule);
                assertFalse(rule.path("syscalls").isEmpty(), rule.toString());
            }
        }
        assertTrue(entries > 20, "the policy has its groups: " + entries);
        for (String field : List.of("about", "defaultReason", "architecturesReason")) {
            assertFalse(POLICY.path(field).asText("").isBlank(), field);
        }
    }

    @Test
    void onlyTheNativeArchitecturesAreListed() {
        // Compatibility ABIs (i386, x32, arm) left out: their calls meet the bad-architecture action (SIGSYS),
        // and listing them cost ~100 ms per sandbox start (docs/BENCHMARKS.md).
        assertEquals("[\"SCMP_ARCH_X86_64\",\"SCMP_ARCH_AARCH64\"]", OCI.get("architectures").toString());
    }

    @Test
    void anEntryWithoutAReasonIsRefused() throws Exception {
        ObjectNode bad = POLICY.deepCopy();
        ((ObjectNode) bad.get("allow").get(0)).remove("reason");
        assertThrows(IllegalStateException.class, () -> SeccompPolicy.toOci(JSON, bad));
        ObjectNode blank = POLICY.deepCopy();
        ((ObjectNode) blank.get("deny").get(0)).put("reason", " ");
        assertThrows(IllegalStateException.class, () -> SeccompPolicy.toOci(JSON, blank));
    }

    @Test
    void theDefaultRefusesWithEnosys() throws Exception {
        assertEquals("SCMP_ACT_ERRNO", OCI.get("defaultAction").asText());
        assertEquals(38, OCI.get("defaultErrnoRet").asInt(), "ENOSYS: libc falls back as on an older kernel");
        ObjectNode allowAll = POLICY.deepCopy();
        allowAll.put("defaultAction", "SCMP_ACT_ALLOW");
        assertThrows(IllegalStateException.class, () -> SeccompPolicy.toOci(JSON, allowAll), "a default that allows is refused");
    }

    @Test
    void noSyscallIsBothAllowedAndDeniedAndContradictionsAreRefused() throws Exception {
        Set<String> allowedAlways = new HashSet<>();
        for (JsonNode rule : POLICY.get("allow")) {
            if (!rule.has("argIn") && !rule.has("argFlagsClear")) rule.get("syscalls").forEach(n -> allowedAlways.add(n.asText()));
        }
        for (JsonNode rule : POLICY.get("deny")) {
            if (rule.has("argIn") || rule.has("argFlagsSet")) continue;
            for (JsonNode n : rule.get("syscalls")) assertFalse(allowedAlways.contains(n.asText()), n + " is allowed and denied");
        }
        ObjectNode both = POLICY.deepCopy();
        ((ArrayNode) both.get("allow").get(0).get("syscalls")).add("mount");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> SeccompPolicy.toOci(JSON, both));
        assertTrue(e.getMessage().contains("mount"), e.getMessage());
        ObjectNode twice = POLICY.deepCopy();
        ((ArrayNode) twice.get("allow").get(0).get("syscalls")).add("read");
        assertThrows(IllegalStateException.class, () -> SeccompPolicy.toOci(JSON, twice), "a name in two groups is refused");
    }

    @Test
    void aNameThatIsNoSystemCallIsRefused() throws Exception {
        ObjectNode typo = POLICY.deepCopy();
        ((ArrayNode) typo.get("allow").get(0).get("syscalls")).add("mmapp");
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> SeccompPolicy.toOci(JSON, typo));
        assertTrue(e.getMessage().contains("mmapp"), e.getMessage());
    }

    @Test
    void everyDenialOfTheFormerDenyListIsKept() {
        // policy/seccomp.json before the allow-list (a deny-list on default-allow): each of these stays an explicit EPERM.
        for (String s : List.of("mount", "umount2", "pivot_root", "chroot", "fsopen", "fsmount", "move_mount", "open_tree", "mount_setattr",
                "unshare", "setns", "ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp", "bpf", "perf_event_open",
                "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl", "add_key", "request_key",
                "init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "open_by_handle_at", "name_to_handle_at",
                "reboot", "swapon", "swapoff", "acct", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "syslog",
                "vhangup", "quotactl", "iopl", "ioperm", "fanotify_init")) {
            List<JsonNode> rules = rulesFor(s);
            assertEquals(1, rules.size(), s + ": " + rules);
            assertEquals("SCMP_ACT_ERRNO", rules.getFirst().get("action").asText(), s);
            assertEquals(1, rules.getFirst().get("errnoRet").asInt(), s + " is refused with EPERM");
            assertFalse(rules.getFirst().has("args"), s);
        }
        List<JsonNode> clone3 = rulesFor("clone3");
        assertEquals(1, clone3.size());
        assertEquals(38, clone3.getFirst().get("errnoRet").asInt(), "clone3: ENOSYS so that glibc falls back to clone");
    }

    @Test
    void cloneIsAllowedOnlyWithoutNamespaceFlags() {
        long namespaces = 0x7E020000L;
        int allows = 0;
        int denials = 0;
        for (JsonNode r : rulesFor("clone")) {
            JsonNode arg = r.at("/args/0");
            assertEquals("SCMP_CMP_MASKED_EQ", arg.get("op").asText(), r.toString());
            assertEquals(0, arg.get("index").asInt());
            if (r.get("action").asText().equals("SCMP_ACT_ALLOW")) {
                allows++;
                assertEquals(namespaces, arg.get("value").asLong(), "mask of every namespace flag");
                assertEquals(0, arg.get("valueTwo").asLong(), "none of them set");
            } else {
                denials++;
                assertEquals(1, r.get("errnoRet").asInt());
                assertEquals(arg.get("value").asLong(), arg.get("valueTwo").asLong());
                assertEquals(1, Long.bitCount(arg.get("value").asLong()));
                assertTrue((arg.get("value").asLong() & namespaces) != 0);
            }
        }
        assertEquals(1, allows);
        assertEquals(7, denials, "one EPERM rule per namespace flag");
    }

    @Test
    void ioctlIsAllowedExceptTerminalInjectionWhateverTheHighBits() {
        List<JsonNode> rules = rulesFor("ioctl");
        assertFalse(allowedUnconditionally("ioctl"),
                "an unconditional allow would override the conditional denials in libseccomp: " + rules);
        Set<Long> denied = new HashSet<>();
        boolean allowed = false;
        for (JsonNode r : rules) {
            JsonNode arg = r.at("/args/0");
            assertEquals(1, arg.get("index").asInt());
            if (r.get("action").asText().equals("SCMP_ACT_ALLOW")) {
                allowed = true;
                assertEquals("SCMP_CMP_GE", arg.get("op").asText());
                assertEquals(0, arg.get("value").asLong(), "always true");
            } else {
                assertEquals("SCMP_CMP_MASKED_EQ", arg.get("op").asText());
                assertEquals(0xFFFF_FFFFL, arg.get("value").asLong(), "the kernel reads the command's low 32 bits");
                denied.add(arg.get("valueTwo").asLong());
            }
        }
        assertTrue(allowed);
        assertEquals(Set.of(0x5412L, 0x541CL), denied, "TIOCSTI and TIOCLINUX");
    }

    @Test
    void socketsOfTheUsualFamiliesOnly() {
        Set<Long> families = new HashSet<>();
        for (JsonNode r : rulesFor("socket")) {
            assertEquals("SCMP_ACT_ALLOW", r.get("action").asText());
            assertEquals("SCMP_CMP_EQ", r.at("/args/0/op").asText());
            families.add(r.at("/args/0/value").asLong());
        }
        assertEquals(Set.of(1L, 2L, 10L, 16L), families, "AF_UNIX, AF_INET, AF_INET6, AF_NETLINK");
        assertTrue(rulesFor("socketcall").isEmpty(), "no multiplexer around the family check");
        List<JsonNode> pairs = rulesFor("socketpair");
        assertEquals(1, pairs.size(), "socketpair is family-checked too: " + pairs);
        assertEquals(1, pairs.getFirst().at("/args/0/value").asLong(), "AF_UNIX pairs only");
    }

    @Test
    void whatTheSandboxRunsIsAllowed() {
        // runc's init between the filter and execve, the agent (threads, selectors, inotify, PTYs,
        // credentials, limits), Python, node, bash and git.
        for (String s : List.of("execve", "futex", "rt_sigprocmask", "rt_sigaction", "mmap", "mprotect", "munmap", "brk", "close",
                "openat", "read", "write", "newfstatat", "statx", "getdents64", "epoll_pwait", "epoll_ctl", "eventfd2",
                "inotify_init1", "inotify_add_watch", "setresuid", "setgroups", "setfsuid", "prlimit64",
                "setrlimit", "prctl", "setsid", "wait4", "waitid", "kill", "pipe2", "dup3", "getrandom", "rseq",
                "set_robust_list", "arch_prctl", "sched_getaffinity", "connect", "sendmsg", "recvmsg", "faccessat2", "close_range")) {
            assertTrue(allowedUnconditionally(s), s + " must be allowed");
        }
        assertFalse(rulesFor("personality").isEmpty());
    }
}
