package dev.stockade.server.packages;

import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** PEP 440 versions, as far as the policy needs them: validity and a key for equality ({@code 1.0 == 1.0.0}). */
final class Pep440 {
    static final int MAX_LENGTH = 128;

    private static final Pattern VERSION = Pattern.compile(
            "v?(?:(?<epoch>[0-9]+)!)?(?<release>[0-9]+(?:\\.[0-9]+)*)"
                    + "(?:[-_.]?(?<prel>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?<pren>[0-9]+)?)?"
                    + "(?:-(?<postn1>[0-9]+)|[-_.]?(?<postl>post|rev|r)[-_.]?(?<postn2>[0-9]+)?)?"
                    + "(?:[-_.]?(?<devl>dev)[-_.]?(?<devn>[0-9]+)?)?"
                    + "(?:\\+(?<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?",
            Pattern.CASE_INSENSITIVE);

    private Pep440() {}

    static boolean isValid(String v) {
        return v != null && v.length() <= MAX_LENGTH && VERSION.matcher(v.strip()).matches();
    }

    /**
     * A key equal for versions PEP 440 calls equal (trailing zero release segments, spelling of pre/post/dev
     * markers, case); a local label ({@code +cpu}) is part of the key. Null if {@code v} is not a PEP 440 version.
     */
    static String key(String v) {
        if (v == null || v.length() > MAX_LENGTH) return null;
        Matcher m = VERSION.matcher(v.strip());
        if (!m.matches()) return null;
        StringBuilder b = new StringBuilder();
        String epoch = number(m.group("epoch"));
        if (!epoch.equals("0")) b.append(epoch).append('!');
        String[] release = m.group("release").split("\\.");
        int last = release.length - 1;
        while (last > 0 && number(release[last]).equals("0")) last--;
        for (int i = 0; i <= last; i++) b.append(i == 0 ? "" : ".").append(number(release[i]));
        if (m.group("prel") != null) {
            String l = m.group("prel").toLowerCase(Locale.ROOT);
            l = switch (l) {
                case "alpha" -> "a";
                case "beta" -> "b";
                case "c", "pre", "preview" -> "rc";
                default -> l;
            };
            b.append(l).append(number(m.group("pren")));
        }
        if (m.group("postn1") != null) b.append(".post").append(number(m.group("postn1")));
        else if (m.group("postl") != null) b.append(".post").append(number(m.group("postn2")));
        if (m.group("devl") != null) b.append(".dev").append(number(m.group("devn")));
        if (m.group("local") != null) b.append('+').append(m.group("local").toLowerCase(Locale.ROOT).replaceAll("[-_]", "."));
        return b.toString();
    }

    private static String number(String digits) {
        if (digits == null) return "0";
        String s = digits.replaceFirst("^0+", "");
        return s.isEmpty() ? "0" : s;
    }
}
