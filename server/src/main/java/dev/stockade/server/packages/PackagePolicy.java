package dev.stockade.server.packages;

import dev.stockade.server.error.StockadeError;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * Which Python packages sandboxes may install: every file in the operator's wheelhouse, and the projects
 * (optionally only some versions and files) on the allow-list. Deny by default; every verdict carries a
 * reason that names the policy and the package, because that sentence is what a user ends up reading in
 * pip's output or the install API's error.
 *
 * <p>Immutable apart from the wheelhouse, which is re-read on each check. Safe for concurrent use.
 */
public final class PackagePolicy {
    /** Rule names recorded in decisions. */
    public static final String RULE_WHEELHOUSE = "wheelhouse";
    public static final String RULE_ALLOWLIST = "allowlist";
    public static final String RULE_NOT_ALLOWED = "not-allowed";
    public static final String RULE_VERSION_NOT_ALLOWED = "version-not-allowed";
    public static final String RULE_HASH_NOT_ALLOWED = "hash-not-allowed";
    public static final String RULE_INVALID_REQUIREMENT = "invalid-requirement";

    private static final Pattern VCS = Pattern.compile("^(git|hg|svn|bzr)\\+", Pattern.CASE_INSENSITIVE);
    private static final Pattern EDITABLE = Pattern.compile("^(-e|--editable)(\\s|=|$)");
    private static final Pattern INDEX_OPTION = Pattern.compile(
            "^(-i|--index-url|--extra-index-url|-f|--find-links|--trusted-host|--no-index)(\\s|=|$)");

    /**
     * A policy verdict.
     *
     * @param allowed whether the package (version, file) may be installed
     * @param rule what decided: {@code wheelhouse}, {@code allowlist}, {@code not-allowed},
     *     {@code version-not-allowed}, {@code hash-not-allowed} or {@code invalid-requirement}
     * @param reason a sentence for people; for refusals it names this server's package policy and the package
     */
    public record Verdict(boolean allowed, String rule, String reason) {
        public Verdict {
            Objects.requireNonNull(rule, "rule");
            Objects.requireNonNull(reason, "reason");
        }

        static Verdict allow(String rule, String reason) {
            return new Verdict(true, rule, reason);
        }

        static Verdict refuse(String rule, String reason) {
            return new Verdict(false, rule, reason);
        }
    }

    private final AllowList allowList;
    private final Wheelhouse wheelhouse;

    PackagePolicy(AllowList allowList, Wheelhouse wheelhouse) {
        this.allowList = Objects.requireNonNull(allowList);
        this.wheelhouse = Objects.requireNonNull(wheelhouse);
    }

    /**
     * Builds the policy: reads the allow-list (errors name its file and line) and checks that the wheelhouse
     * is a directory.
     */
    public static PackagePolicy from(PackageConfig config) {
        if (config.wheelhouse() != null && !Files.isDirectory(config.wheelhouse())) {
            throw StockadeError.invalid("package wheelhouse " + config.wheelhouse() + " is not a directory:"
                    + " create it or point the setting at the directory holding the approved .whl files");
        }
        AllowList list = config.allowlist() == null ? AllowList.empty() : AllowList.load(config.allowlist());
        return new PackagePolicy(list, new Wheelhouse(config.wheelhouse()));
    }

    AllowList allowList() {
        return allowList;
    }

    Wheelhouse wheelhouse() {
        return wheelhouse;
    }

    /** Normalized names of every project with something allowed, sorted. */
    public Set<String> allowedProjects() {
        Set<String> names = new TreeSet<>(wheelhouse.listing().keySet());
        names.addAll(allowList.names());
        return names;
    }

    /**
     * Decides whether a project, one of its versions, or one of its files may be installed.
     *
     * @param project the project name, in any spelling (it is normalized)
     * @param version a version, or null for the project as a whole
     * @param sha256 a file's digest (hex), or null when not asking about one file
     */
    public Verdict check(String project, String version, String sha256) {
        if (!PackageNames.isValid(project)) {
            return Verdict.refuse(RULE_NOT_ALLOWED, "the requested name is not a valid Python project name,"
                    + " so this server's package policy does not allow it");
        }
        String name = PackageNames.normalize(project);
        String versionKey = version == null ? null : versionKey(version);
        List<Wheelhouse.Listed> inWheelhouse = wheelhouse.listing().getOrDefault(name, List.of());
        if (!inWheelhouse.isEmpty()) {
            if (sha256 == null) {
                if (version == null || inWheelhouse.stream().anyMatch(l -> versionKey(l.version()).equals(versionKey))) {
                    return Verdict.allow(RULE_WHEELHOUSE, (version == null ? "" : "version " + version + " of ")
                            + "package '" + name + "' is in the wheelhouse");
                }
            } else {
                for (IndexFile f : wheelhouse.files(name)) {
                    if (f.sha256().equalsIgnoreCase(sha256) && (version == null || versionKey(f.version()).equals(versionKey))) {
                        return Verdict.allow(RULE_WHEELHOUSE, "file " + f.filename() + " of package '" + name + "' is in the wheelhouse");
                    }
                }
            }
        }
        AllowList.Entry entry = allowList.get(name);
        if (entry == null) {
            if (inWheelhouse.isEmpty()) return Verdict.refuse(RULE_NOT_ALLOWED, notAllowed(name));
            boolean versionKnown = version == null
                    || inWheelhouse.stream().anyMatch(l -> versionKey(l.version()).equals(versionKey));
            if (versionKnown) {
                return Verdict.refuse(RULE_HASH_NOT_ALLOWED, "this file of package '" + name + "'"
                        + (version == null ? "" : " (version " + version + ")") + " is not allowed by this server's package"
                        + " policy: it is not the wheelhouse's file and the project is not on the allow-list");
            }
            return Verdict.refuse(RULE_VERSION_NOT_ALLOWED, "version " + version + " of package '" + name
                    + "' is not allowed by this server's package policy: the wheelhouse has only "
                    + wheelhouseVersions(inWheelhouse) + " and the project is not on the allow-list");
        }
        if (version != null && !entry.allowsVersion(version)) {
            return Verdict.refuse(RULE_VERSION_NOT_ALLOWED, "version " + version + " of package '" + name
                    + "' is not allowed by this server's package policy: the allow-list pins "
                    + String.join(", ", entry.pins().values())
                    + (inWheelhouse.isEmpty() ? "" : " and the wheelhouse has " + wheelhouseVersions(inWheelhouse)));
        }
        if (sha256 != null && !entry.allowsHash(sha256)) {
            return Verdict.refuse(RULE_HASH_NOT_ALLOWED, "this file of package '" + name + "'"
                    + (version == null ? "" : " (version " + version + ")")
                    + " is not allowed by this server's package policy: its sha256 is not among the allow-list's hashes"
                    + " for the project (line " + entry.line() + ")");
        }
        return Verdict.allow(RULE_ALLOWLIST, (version == null ? "" : "version " + version + " of ") + "package '" + name
                + "' is on the allow-list (line " + entry.line() + ")");
    }

    /**
     * Checks a requirement as a user would give it to pip ({@code requests}, {@code requests[socks]>=2,<3},
     * {@code numpy==1.26.4}). Refuses URLs, VCS links, paths, archives, {@code -e} and index options, each with a
     * message saying what to write instead. Version ranges are not evaluated here: the index lists only allowed
     * files, so pip cannot pick anything else; an {@code ==} pin is checked against the policy.
     */
    public Verdict checkRequirement(String requirementSpec) {
        if (requirementSpec == null || requirementSpec.isBlank()) {
            return Verdict.refuse(RULE_INVALID_REQUIREMENT, "the requirement is empty: name a package, e.g. 'requests' or 'requests==2.31.0'");
        }
        String s = requirementSpec.strip();
        if (s.length() > RequirementSpec.MAX_LENGTH) {
            return Verdict.refuse(RULE_INVALID_REQUIREMENT, "the requirement is longer than " + RequirementSpec.MAX_LENGTH + " characters");
        }
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c < 0x20 || c > 0x7e) {
                return Verdict.refuse(RULE_INVALID_REQUIREMENT, "the requirement contains a control or non-ASCII character:"
                        + " name a package, e.g. 'requests==2.31.0'");
            }
        }
        if (EDITABLE.matcher(s).find()) {
            return Verdict.refuse(RULE_INVALID_REQUIREMENT, "editable installs (-e) are not allowed by this server's package"
                    + " policy: name a package from the index, e.g. 'requests==2.31.0'");
        }
        if (INDEX_OPTION.matcher(s).find()) {
            return Verdict.refuse(RULE_INVALID_REQUIREMENT, "pip index options such as --index-url are not allowed by this"
                    + " server's package policy: packages come only from the server's package index");
        }
        if (s.startsWith("-")) {
            String option = s.split("[\\s=]", 2)[0];
            return Verdict.refuse(RULE_INVALID_REQUIREMENT, "pip options ('" + option + "') are not accepted in a requirement:"
                    + " name a package, e.g. 'requests==2.31.0'");
        }
        if (VCS.matcher(s).find() || s.contains("://")) {
            return Verdict.refuse(RULE_INVALID_REQUIREMENT, "URLs and VCS links are not allowed by this server's package"
                    + " policy: name a package from the index instead, e.g. 'requests==2.31.0'");
        }
        if (s.contains("@")) {
            return Verdict.refuse(RULE_INVALID_REQUIREMENT, "direct references ('name @ URL') are not allowed by this"
                    + " server's package policy: name a package from the index instead");
        }
        String lower = s.toLowerCase(Locale.ROOT);
        if (s.startsWith(".") || s.startsWith("~") || s.contains("/") || s.contains("\\")
                || lower.endsWith(".whl") || lower.endsWith(".tar.gz") || lower.endsWith(".zip")) {
            return Verdict.refuse(RULE_INVALID_REQUIREMENT, "local paths and archive files are not allowed by this server's"
                    + " package policy: name a package from the index instead");
        }
        RequirementSpec spec;
        try {
            spec = RequirementSpec.parse(s);
        } catch (IllegalArgumentException e) {
            return Verdict.refuse(RULE_INVALID_REQUIREMENT, "cannot read requirement '" + s + "': " + e.getMessage()
                    + ". Write NAME, NAME[extra] or NAME followed by version specifiers, e.g. 'requests>=2,<3'");
        }
        return check(spec.name(), spec.pinnedVersion(), null);
    }

    private String notAllowed(String name) {
        String prefix = "package '" + name + "' is not allowed by this server's package policy: ";
        boolean wh = wheelhouse.configured();
        boolean al = allowList.source() != null;
        if (wh && al) return prefix + "it is neither in the wheelhouse nor on the allow-list";
        if (wh) return prefix + "it is not in the wheelhouse";
        if (al) return prefix + "it is not on the allow-list";
        return prefix + "the server allows no packages (it has no wheelhouse and no allow-list)";
    }

    private static String wheelhouseVersions(List<Wheelhouse.Listed> listed) {
        List<String> versions = new ArrayList<>();
        for (Wheelhouse.Listed l : listed) if (!versions.contains(l.version())) versions.add(l.version());
        return String.join(", ", versions);
    }

    private static String versionKey(String version) {
        String key = Pep440.key(version);
        return key != null ? key : version.toLowerCase(Locale.ROOT);
    }
}
