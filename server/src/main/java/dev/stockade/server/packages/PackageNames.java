package dev.stockade.server.packages;

import java.util.Locale;
import java.util.regex.Pattern;

/**
 * Python project names: which ones are valid (PEP 508) and their normalized form (PEP 503), the form in
 * index URLs, allow-list keys and decisions.
 */
public final class PackageNames {
    /** Longer names are refused outright; PyPI's longest are well below this. */
    public static final int MAX_LENGTH = 200;

    private static final Pattern VALID = Pattern.compile("[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?");
    private static final Pattern SEPARATORS = Pattern.compile("[-_.]+");

    private PackageNames() {}

    /** Whether {@code name} is a valid project name (PEP 508), at most {@link #MAX_LENGTH} characters. */
    public static boolean isValid(String name) {
        return name != null && !name.isEmpty() && name.length() <= MAX_LENGTH && VALID.matcher(name).matches();
    }

    /**
     * The PEP 503 normalized name: lower case, runs of {@code -_.} replaced by one {@code -}.
     *
     * @throws IllegalArgumentException if the name is not valid
     */
    public static String normalize(String name) {
        if (!isValid(name)) throw new IllegalArgumentException("not a valid Python project name");
        return SEPARATORS.matcher(name).replaceAll("-").toLowerCase(Locale.ROOT);
    }

    /** Whether {@code name} is valid and already normalized. */
    public static boolean isNormalized(String name) {
        return isValid(name) && normalize(name).equals(name);
    }
}
