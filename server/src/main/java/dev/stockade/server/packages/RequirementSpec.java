package dev.stockade.server.packages;

import java.util.ArrayList;
import java.util.List;

/**
 * A pip requirement of the plain kind — {@code name[extras] specifiers ; marker} (PEP 508 without URLs) —
 * parsed strictly: anything else (URLs, paths, options) is an error, never a guess.
 *
 * @param name the project name as written
 * @param extras extras as written
 * @param specifiers version specifiers, in order
 * @param marker the environment marker after {@code ;}, unevaluated, or null
 */
record RequirementSpec(String name, List<String> extras, List<Specifier> specifiers, String marker) {
    static final int MAX_LENGTH = 1000;
    private static final int MAX_PARTS = 32;
    private static final java.util.Set<String> MARKER_WORDS = java.util.Set.of("python_version", "python_full_version",
            "os_name", "sys_platform", "platform_release", "platform_system", "platform_version", "platform_machine",
            "platform_python_implementation", "implementation_name", "implementation_version", "extra", "and", "or", "in",
            "not");
    private static final String[] OPERATORS = {"===", "==", "!=", "~=", "<=", ">=", "<", ">"};

    /** One version specifier, e.g. {@code >=1.0}. */
    record Specifier(String operator, String version) {
        @Override
        public String toString() {
            return operator + version;
        }
    }

    RequirementSpec {
        extras = List.copyOf(extras);
        specifiers = List.copyOf(specifiers);
    }

    String normalizedName() {
        return PackageNames.normalize(name);
    }

    /** The version an {@code ==} (without wildcard) or {@code ===} specifier pins, or null. */
    String pinnedVersion() {
        for (Specifier s : specifiers) {
            if (s.operator().equals("===") || (s.operator().equals("==") && !s.version().endsWith(".*"))) {
                return s.version();
            }
        }
        return null;
    }

    /**
     * Parses {@code text}.
     *
     * @throws IllegalArgumentException with a message saying what is wrong and where
     */
    static RequirementSpec parse(String text) {
        if (text == null) throw new IllegalArgumentException("no requirement given");
        String s = text.strip();
        if (s.isEmpty()) throw new IllegalArgumentException("the requirement is empty");
        if (s.length() > MAX_LENGTH) throw new IllegalArgumentException("the requirement is longer than " + MAX_LENGTH + " characters");
        for (int k = 0; k < s.length(); k++) {
            char c = s.charAt(k);
            if (c < 0x20 || c > 0x7e) throw new IllegalArgumentException("the requirement contains a control or non-ASCII character");
        }
        Cursor c = new Cursor(s);
        String name = c.word();
        if (!PackageNames.isValid(name)) {
            throw new IllegalArgumentException(name.isEmpty() ? "it does not start with a project name" : "'" + name + "' is not a valid project name");
        }
        c.skipSpaces();
        List<String> extras = new ArrayList<>();
        if (c.eat('[')) {
            c.skipSpaces();
            while (!c.eat(']')) {
                String extra = c.word();
                if (!PackageNames.isValid(extra)) throw c.error("expected an extra's name");
                if (extras.size() == MAX_PARTS) throw c.error("too many extras");
                extras.add(extra);
                c.skipSpaces();
                if (c.eat(',')) c.skipSpaces();
                else if (!c.peek(']')) throw c.error("expected ',' or ']'");
            }
            c.skipSpaces();
        }
        List<Specifier> specifiers = new ArrayList<>();
        boolean paren = c.eat('(');
        c.skipSpaces();
        if (c.peekAny("<>=!~")) {
            while (true) {
                String op = c.operator();
                if (op == null) throw c.error("expected a version operator (==, !=, <=, >=, <, >, ~=, ===)");
                c.skipSpaces();
                String version = c.version();
                if (version.isEmpty()) throw c.error("expected a version after '" + op + "'");
                checkVersion(op, version);
                if (specifiers.size() == MAX_PARTS) throw c.error("too many version specifiers");
                specifiers.add(new Specifier(op, version));
                c.skipSpaces();
                if (!c.eat(',')) break;
                c.skipSpaces();
            }
        }
        if (paren && !c.eat(')')) throw c.error("expected ')'");
        c.skipSpaces();
        String marker = null;
        if (c.eat(';')) {
            marker = c.rest().strip();
            if (marker.isEmpty()) throw new IllegalArgumentException("an empty environment marker after ';'");
            checkMarker(marker);
        }
        if (!c.atEnd()) throw c.error("unexpected '" + c.current() + "'");
        return new RequirementSpec(name, extras, specifiers, marker);
    }

    /**
     * Checks that a marker is made only of PEP 508 marker variables, quoted strings, comparison operators,
     * {@code and}/{@code or}/{@code in}/{@code not} and parentheses. It is not evaluated.
     */
    private static void checkMarker(String marker) {
        int i = 0;
        while (i < marker.length()) {
            char m = marker.charAt(i);
            if (m == ' ' || m == '\t' || m == '(' || m == ')') {
                i++;
            } else if (m == '\'' || m == '"') {
                int end = marker.indexOf(m, i + 1);
                if (end < 0) throw new IllegalArgumentException("the environment marker has an unterminated string");
                i = end + 1;
            } else if ("<>=!~".indexOf(m) >= 0) {
                i++;
            } else if (Character.isLetter(m)) {
                int start = i;
                while (i < marker.length() && (Character.isLetterOrDigit(marker.charAt(i)) || marker.charAt(i) == '_')) i++;
                String word = marker.substring(start, i);
                if (!MARKER_WORDS.contains(word)) {
                    throw new IllegalArgumentException("the environment marker uses '" + word + "', which is not a PEP 508 marker variable");
                }
            } else {
                throw new IllegalArgumentException("the environment marker contains '" + m + "'");
            }
        }
    }

    private static void checkVersion(String op, String version) {
        if (op.equals("===")) return;
        boolean wildcard = version.endsWith(".*");
        if (wildcard) {
            if (!(op.equals("==") || op.equals("!="))) {
                throw new IllegalArgumentException("a wildcard version ('" + version + "') only goes with == or !=");
            }
            String prefix = version.substring(0, version.length() - 2);
            if (!Pep440.isValid(prefix) || prefix.contains("+")) {
                throw new IllegalArgumentException("'" + version + "' is not a valid version");
            }
            return;
        }
        if (!Pep440.isValid(version)) throw new IllegalArgumentException("'" + version + "' is not a valid PEP 440 version");
    }

    private static final class Cursor {
        private final String s;
        private int i;

        Cursor(String s) {
            this.s = s;
        }

        boolean atEnd() {
            return i >= s.length();
        }

        char current() {
            return s.charAt(i);
        }

        boolean peek(char ch) {
            return !atEnd() && s.charAt(i) == ch;
        }

        boolean peekAny(String chars) {
            return !atEnd() && chars.indexOf(s.charAt(i)) >= 0;
        }

        boolean eat(char ch) {
            if (!peek(ch)) return false;
            i++;
            return true;
        }

        void skipSpaces() {
            while (!atEnd() && (s.charAt(i) == ' ' || s.charAt(i) == '\t')) i++;
        }

        String word() {
            int start = i;
            while (!atEnd() && (Character.isLetterOrDigit(s.charAt(i)) || "._-".indexOf(s.charAt(i)) >= 0)) i++;
            return s.substring(start, i);
        }

        String version() {
            int start = i;
            while (!atEnd() && (Character.isLetterOrDigit(s.charAt(i)) || "._*+!-".indexOf(s.charAt(i)) >= 0)) i++;
            return s.substring(start, i);
        }

        String operator() {
            for (String op : OPERATORS) {
                if (s.startsWith(op, i)) {
                    i += op.length();
                    return op;
                }
            }
            return null;
        }

        String rest() {
            String r = s.substring(i);
            i = s.length();
            return r;
        }

        IllegalArgumentException error(String what) {
            return new IllegalArgumentException(what + " at character " + (i + 1));
        }
    }
}
