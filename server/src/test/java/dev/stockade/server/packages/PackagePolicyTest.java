package dev.stockade.server.packages;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.stockade.server.error.StockadeError;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PackagePolicyTest {
    @TempDir
    Path dir;
    private PackagePolicy policy;
    private String localSha;
    private static final String HASH = "ab".repeat(32);

    @BeforeEach
    void setUp() throws Exception {
        Path wheelhouse = Files.createDirectory(dir.resolve("wheelhouse"));
        localSha = TestWheels.sha256(Files.readAllBytes(TestWheels.write(wheelhouse, "Local_Pkg", "1.0", null)));
        Path allow = dir.resolve("allow.txt");
        Files.writeString(allow, "requests\nnumpy==1.26.4\nsigned==2.0 --hash=sha256:" + HASH + "\n");
        policy = PackagePolicy.from(new PackageConfig(wheelhouse, null, allow, null));
    }

    @Test
    void wheelhouseAndAllowListAllow() {
        assertVerdict(policy.check("local-pkg", null, null), true, "wheelhouse");
        assertVerdict(policy.check("LOCAL.pkg", "1.0.0", null), true, "wheelhouse");
        assertVerdict(policy.check("local_pkg", "1.0", localSha), true, "wheelhouse");
        assertVerdict(policy.check("requests", "2.31.0", "cd".repeat(32)), true, "allowlist");
        assertVerdict(policy.check("NumPy", "1.26.4", null), true, "allowlist");
        assertVerdict(policy.check("signed", "2.0", HASH), true, "allowlist");
        assertTrue(policy.check("numpy", null, null).reason().contains("line 2"));
        assertEquals(java.util.List.of("local-pkg", "numpy", "requests", "signed"), java.util.List.copyOf(policy.allowedProjects()));
    }

    @Test
    void refusalsNameThePolicyAndThePackage() {
        PackagePolicy.Verdict evil = policy.check("Evil", null, null);
        assertVerdict(evil, false, "not-allowed");
        assertEquals("package 'evil' is not allowed by this server's package policy: it is neither in the wheelhouse"
                + " nor on the allow-list", evil.reason());
        PackagePolicy.Verdict version = policy.check("numpy", "2.0", null);
        assertVerdict(version, false, "version-not-allowed");
        assertEquals("version 2.0 of package 'numpy' is not allowed by this server's package policy: the allow-list pins 1.26.4",
                version.reason());
        PackagePolicy.Verdict hash = policy.check("signed", "2.0", "ef".repeat(32));
        assertVerdict(hash, false, "hash-not-allowed");
        assertTrue(hash.reason().contains("'signed'") && hash.reason().contains("policy") && hash.reason().contains("sha256"));
        PackagePolicy.Verdict localVersion = policy.check("local-pkg", "2.0", null);
        assertVerdict(localVersion, false, "version-not-allowed");
        assertTrue(localVersion.reason().contains("the wheelhouse has only 1.0"), localVersion.reason());
        PackagePolicy.Verdict otherFile = policy.check("local-pkg", "1.0", "00".repeat(32));
        assertVerdict(otherFile, false, "hash-not-allowed");
        assertTrue(otherFile.reason().contains("not the wheelhouse's file"), otherFile.reason());
        PackagePolicy.Verdict hostile = policy.check("../etc/passwd", null, null);
        assertVerdict(hostile, false, "not-allowed");
        assertFalse(hostile.reason().contains("passwd"));
    }

    @Test
    void emptyPolicyRefusesEverything() {
        PackagePolicy none = PackagePolicy.from(PackageConfig.none());
        PackagePolicy.Verdict v = none.check("requests", null, null);
        assertVerdict(v, false, "not-allowed");
        assertTrue(v.reason().contains("allows no packages"), v.reason());
        assertTrue(none.allowedProjects().isEmpty());
    }

    @Test
    void configurationErrorsSayWhatToFix() {
        StockadeError e = assertThrows(StockadeError.class,
                () -> PackagePolicy.from(new PackageConfig(dir.resolve("missing"), null, null, null)));
        assertTrue(e.getMessage().contains("is not a directory"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new PackageConfig(null, java.net.URI.create("ftp://x/simple"), null, null));
        assertThrows(IllegalArgumentException.class, () -> new PackageConfig(null, java.net.URI.create("https://u:p@x/simple"), null, null));
        assertEquals("https://mirror.example/simple/",
                new PackageConfig(null, java.net.URI.create("HTTPS://mirror.example/simple"), null, null).upstream().toString());
    }

    @Test
    void requirementsAreParsedConservatively() {
        assertVerdict(policy.checkRequirement("requests"), true, "allowlist");
        assertVerdict(policy.checkRequirement("  requests[socks,security] >=2.0, <3 ; python_version >= '3.8' "), true, "allowlist");
        assertVerdict(policy.checkRequirement("requests (>=2.0)"), true, "allowlist");
        assertVerdict(policy.checkRequirement("numpy==1.26.4"), true, "allowlist");
        assertVerdict(policy.checkRequirement("numpy===1.26.4"), true, "allowlist");
        assertVerdict(policy.checkRequirement("numpy==1.26.*"), true, "allowlist");
        assertVerdict(policy.checkRequirement("local-pkg~=1.0"), true, "wheelhouse");
        assertVerdict(policy.checkRequirement("numpy==1.25.0"), false, "version-not-allowed");
        PackagePolicy.Verdict evil = policy.checkRequirement("evil>=1");
        assertVerdict(evil, false, "not-allowed");
        assertTrue(evil.reason().contains("'evil'") && evil.reason().contains("policy"));
    }

    @Test
    void urlsPathsAndOptionsAreRefusedWithAClearMessage() {
        assertRefused("-e .", "editable installs (-e)");
        assertRefused("--editable=git+https://x/y", "editable installs (-e)");
        assertRefused("--index-url https://evil.example/simple requests", "index options");
        assertRefused("-i https://evil.example/simple", "index options");
        assertRefused("--extra-index-url=https://evil.example/simple", "index options");
        assertRefused("--find-links /tmp", "index options");
        assertRefused("-r requirements.txt", "pip options ('-r')");
        assertRefused("--pre requests", "pip options ('--pre')");
        assertRefused("git+https://github.com/psf/requests", "VCS links");
        assertRefused("hg+http://x/y", "VCS links");
        assertRefused("https://files.example/requests-2.31.0-py3-none-any.whl", "URLs");
        assertRefused("requests @ https://x.example/r.whl", "URLs");
        assertRefused("requests@v2", "direct references");
        assertRefused("./requests", "local paths");
        assertRefused("/tmp/requests", "local paths");
        assertRefused("~/pkgs/x", "local paths");
        assertRefused("..\\x", "local paths");
        assertRefused("requests-2.31.0-py3-none-any.whl", "archive files");
        assertRefused("requests-2.31.0.tar.gz", "archive files");
        assertRefused("", "empty");
        assertRefused("requests\u0000", "control");
        assertRefused("requests\nevil", "control");
        assertRefused("x".repeat(2000), "longer than");
        assertRefused("requests >= ", "expected a version");
        assertRefused("requests >= 1.0 junk", "unexpected 'j'");
        assertRefused("requests[", "expected an extra");
        assertRefused("requests>=1.*", "wildcard");
        assertRefused("requests==not-a-version", "not a valid PEP 440 version");
        assertRefused("requests; import os", "environment marker");
        assertRefused("requests;", "empty environment marker");
        assertRefused("requésts", "non-ASCII");
    }

    private void assertRefused(String spec, String fragment) {
        PackagePolicy.Verdict v = policy.checkRequirement(spec);
        assertFalse(v.allowed(), spec);
        assertTrue(v.reason().contains(fragment), spec + " -> " + v.reason());
    }

    private static void assertVerdict(PackagePolicy.Verdict v, boolean allowed, String rule) {
        assertEquals(allowed, v.allowed(), v.reason());
        assertEquals(rule, v.rule(), v.reason());
        assertFalse(v.reason().isBlank());
    }
}
