package dev.stockade.server.packages;

import dev.stockade.server.error.StockadeError;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * The operator's allow-list of upstream packages, read from a requirements-like file. Each entry allows a
 * project, optionally only some versions ({@code ==} pins) and only some files ({@code --hash=sha256:}).
 * Environment markers and extras are accepted (so pip-compile output works) and ignored: an entry allows
 * the project in every environment. Anything else — ranges, URLs, {@code -r}, {@code --index-url} — is an
 * error naming the file and line, so an operator never runs with a list that means something else.
 */
final class AllowList {
    static final int MAX_BYTES = 4 << 20;
    static final int MAX_ENTRIES = 50_000;
    private static final Pattern COMMENT = Pattern.compile("(^|\\s)#.*$");
    private static final Pattern HEX64 = Pattern.compile("[0-9a-fA-F]{64}");

    /**
     * One project's entry.
     *
     * @param name normalized project name
     * @param pins allowed versions: PEP 440 key → version as written; empty means every version
     * @param sha256 allowed files' sha256 digests, lower-case hex; empty means every file
     * @param line the first line naming the project
     */
    record Entry(String name, Map<String, String> pins, Set<String> sha256, int line) {
        Entry {
            pins = Collections.unmodifiableMap(new LinkedHashMap<>(pins));
            sha256 = Collections.unmodifiableSet(new LinkedHashSet<>(sha256));
        }

        boolean allowsVersion(String version) {
            if (pins.isEmpty()) return true;
            String key = Pep440.key(version);
            return key != null && pins.containsKey(key);
        }

        boolean allowsHash(String sha) {
            return sha256.isEmpty() || (sha != null && sha256.contains(sha.toLowerCase(Locale.ROOT)));
        }
    }

    private final String source;
    private final Map<String, Entry> entries;

    private AllowList(String source, Map<String, Entry> entries) {
        this.source = source;
        this.entries = Collections.unmodifiableMap(entries);
    }

    static AllowList empty() {
        return new AllowList(null, Map.of());
    }

    /** Where the list was read from, or null for none. */
    String source() {
        return source;
    }

    Entry get(String normalizedName) {
        return entries.get(normalizedName);
    }

    Set<String> names() {
        return entries.keySet();
    }

    /** Reads and parses {@code file}; errors name the file and line. */
    static AllowList load(Path file) {
        byte[] bytes;
        try (InputStream in = Files.newInputStream(file)) {
            bytes = in.readNBytes(MAX_BYTES + 1);
        } catch (IOException e) {
            throw StockadeError.invalid("package allow-list " + file + " cannot be read: " + e.getMessage()
                    + ". Check the path and its permissions.");
        }
        if (bytes.length > MAX_BYTES) {
            throw StockadeError.invalid("package allow-list " + file + " is larger than " + (MAX_BYTES >> 20) + " MiB");
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw StockadeError.invalid("package allow-list " + file + " is not UTF-8 text");
        }
        return parse(file.toString(), text);
    }

    /** Parses the text of an allow-list; {@code source} names it in errors. */
    static AllowList parse(String source, String text) {
        Map<String, Builder> builders = new LinkedHashMap<>();
        String[] physical = text.split("\r?\n", -1);
        StringBuilder logical = new StringBuilder();
        int logicalStart = 0;
        for (int n = 0; n < physical.length; n++) {
            String line = physical[n];
            if (logical.isEmpty()) logicalStart = n + 1;
            boolean continued = line.endsWith("\\") && !COMMENT.matcher(line).find();
            if (continued) {
                logical.append(line, 0, line.length() - 1).append(' ');
                if (n < physical.length - 1) continue;
            } else {
                logical.append(line);
            }
            String entry = COMMENT.matcher(logical).replaceFirst("").strip();
            logical.setLength(0);
            if (entry.isEmpty()) continue;
            parseLine(source, logicalStart, entry, builders);
            if (builders.size() > MAX_ENTRIES) throw error(source, logicalStart, "more than " + MAX_ENTRIES + " projects");
        }
        Map<String, Entry> entries = new LinkedHashMap<>();
        builders.forEach((name, b) -> entries.put(name, new Entry(name, b.pins, b.hashes, b.firstLine)));
        return new AllowList(source, entries);
    }

    private static void parseLine(String source, int line, String text, Map<String, Builder> builders) {
        for (int k = 0; k < text.length(); k++) {
            char c = text.charAt(k);
            if (c < 0x20 && c != '\t') throw error(source, line, "contains a control character");
        }
        String[] tokens = text.split("[ \t]+");
        int firstOption = 0;
        while (firstOption < tokens.length && !tokens[firstOption].startsWith("-")) firstOption++;
        if (firstOption == 0) {
            throw error(source, line, "'" + tokens[0] + "' is not allowed here: the allow-list takes lines like 'name',"
                    + " 'name==1.2.3' and 'name==1.2.3 --hash=sha256:HEX', no pip options other than --hash");
        }
        String requirement = String.join(" ", java.util.Arrays.copyOfRange(tokens, 0, firstOption));
        if (requirement.contains("://") || requirement.contains("@") || requirement.contains("/")) {
            throw error(source, line, "URLs and paths are not allowed: name a project from the upstream index");
        }
        RequirementSpec spec;
        try {
            spec = RequirementSpec.parse(requirement);
        } catch (IllegalArgumentException e) {
            throw error(source, line, "cannot read '" + requirement + "': " + e.getMessage());
        }
        if (spec.specifiers().size() > 1) {
            throw error(source, line, "more than one version specifier: write one 'name==VERSION' line per allowed version");
        }
        String pin = null;
        if (spec.specifiers().size() == 1) {
            RequirementSpec.Specifier s = spec.specifiers().get(0);
            if (!s.operator().equals("==") || s.version().endsWith(".*")) {
                throw error(source, line, "'" + s + "' is not an exact pin: the allow-list takes 'name' (every version)"
                        + " or 'name==VERSION' (repeat the line for more versions)");
            }
            pin = s.version();
        }
        List<String> hashes = new ArrayList<>();
        for (int k = firstOption; k < tokens.length; k++) {
            String t = tokens[k];
            String value;
            if (t.equals("--hash")) {
                if (k + 1 >= tokens.length) throw error(source, line, "--hash without a value: write --hash=sha256:HEX");
                value = tokens[++k];
            } else if (t.startsWith("--hash=")) {
                value = t.substring("--hash=".length());
            } else {
                throw error(source, line, "option '" + t + "' is not allowed: only --hash=sha256:HEX may follow a name");
            }
            int colon = value.indexOf(':');
            String algorithm = colon < 0 ? "" : value.substring(0, colon).toLowerCase(Locale.ROOT);
            String hex = colon < 0 ? "" : value.substring(colon + 1);
            if (!algorithm.equals("sha256")) {
                throw error(source, line, "only sha256 hashes are supported, got '" + (algorithm.isEmpty() ? value : algorithm)
                        + "': write --hash=sha256:HEX");
            }
            if (!HEX64.matcher(hex).matches()) throw error(source, line, "'" + hex + "' is not a sha256 digest (64 hex digits)");
            hashes.add(hex.toLowerCase(Locale.ROOT));
        }
        String name = spec.normalizedName();
        Builder b = builders.get(name);
        if (b == null) {
            b = new Builder(line);
            builders.put(name, b);
        } else {
            if ((pin == null) != b.pins.isEmpty()) {
                throw error(source, line, pin == null
                        ? "'" + name + "' is allowed in every version here but pinned on line " + b.firstLine + ": remove one of them"
                        : "'" + name + "' is pinned here but line " + b.firstLine + " allows every version: remove one of them");
            }
            if (hashes.isEmpty() != b.hashes.isEmpty()) {
                throw error(source, line, "'" + name + "' has --hash options on some lines and none on others (see line "
                        + b.firstLine + "): give hashes on every line for it or on none");
            }
        }
        if (pin != null) {
            String key = Pep440.key(pin);
            if (key == null) throw error(source, line, "'" + pin + "' is not a PEP 440 version");
            b.pins.putIfAbsent(key, pin);
        }
        b.hashes.addAll(hashes);
    }

    private static StockadeError error(String source, int line, String message) {
        return StockadeError.invalid("package allow-list " + source + " line " + line + ": " + message);
    }

    private static final class Builder {
        final int firstLine;
        final Map<String, String> pins = new LinkedHashMap<>();
        final Set<String> hashes = new LinkedHashSet<>();

        Builder(int firstLine) {
            this.firstLine = firstLine;
        }
    }
}
