package dev.stockade.server.templates;

import dev.stockade.server.core.TemplateCatalog;
import dev.stockade.server.error.StockadeError;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * Template names as E2B's API reads them: {@code [namespace/]alias[:tag]}, trimmed and lower-cased,
 * alias {@code ^[a-z0-9-_]+$}, tag {@code ^[a-z0-9-_.]+$} and not a UUID, no tag meaning
 * {@code default}; a namespace must be the caller's tenant. Used by {@code api.TemplatesApi} on
 * request threads; pure functions.
 */
public final class TemplateNames {
    /** What an alias without a tag names. */
    public static final String DEFAULT_TAG = "default";
    private static final Pattern ALIAS = Pattern.compile("[a-z0-9-_]+");
    private static final Pattern TAG = Pattern.compile("[a-z0-9-_.]+");
    private static final Pattern UUID = Pattern.compile("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");
    private static final int MAX = 128;

    private TemplateNames() {}

    /** A parsed name: the alias and its tag ({@link #DEFAULT_TAG} when none was given), and whether one was given. */
    public record Name(String alias, String tag, boolean tagGiven) {
        public String text() {
            return tagGiven ? alias + ":" + tag : alias;
        }
    }

    /** {@code [namespace/]alias[:tag]} of the tenant; INVALID_ARGUMENT saying what is wrong. */
    public static Name parse(String raw, String tenant) {
        if (raw == null || raw.isBlank()) throw StockadeError.invalid("a template name is required (alias or alias:tag)");
        String s = raw.trim().toLowerCase(Locale.ROOT);
        if (s.length() > MAX) throw StockadeError.invalid("a template name is at most " + MAX + " characters");
        int slash = s.indexOf('/');
        if (slash >= 0) {
            String namespace = s.substring(0, slash);
            if (!namespace.equals(tenant.toLowerCase(Locale.ROOT))) {
                throw StockadeError.invalid("template name '" + raw + "': the namespace '" + namespace
                        + "' is not your tenant's (" + tenant + "); leave it out");
            }
            s = s.substring(slash + 1);
        }
        int colon = s.indexOf(':');
        String alias = colon < 0 ? s : s.substring(0, colon);
        checkAlias(alias, raw);
        if (colon < 0) return new Name(alias, DEFAULT_TAG, false);
        return new Name(alias, tag(s.substring(colon + 1)), true);
    }

    /** A tag, trimmed and lower-cased; INVALID_ARGUMENT unless it matches E2B's rule. */
    public static String tag(String raw) {
        String t = raw == null ? "" : raw.trim().toLowerCase(Locale.ROOT);
        if (!TAG.matcher(t).matches() || t.length() > MAX) {
            throw StockadeError.invalid("tag '" + raw + "' is invalid: a tag is 1 to " + MAX + " of a-z, 0-9, '-', '_' and '.'");
        }
        if (UUID.matcher(t).matches()) throw StockadeError.invalid("tag '" + raw + "' is invalid: a tag may not be a UUID");
        return t;
    }

    /** Tags of a request, each checked, duplicates dropped, in order. */
    public static List<String> tags(List<String> raw) {
        List<String> out = new ArrayList<>();
        for (String t : raw) {
            String v = tag(t);
            if (!out.contains(v)) out.add(v);
        }
        return out;
    }

    private static void checkAlias(String alias, String raw) {
        if (!ALIAS.matcher(alias).matches()) {
            throw StockadeError.invalid("template name '" + raw + "' is invalid: an alias is 1 to " + MAX
                    + " of a-z, 0-9, '-' and '_' (optionally followed by :tag)");
        }
        if (TemplateCatalog.isBuiltIn(alias)) {
            throw new StockadeError(StockadeError.Code.CONFLICT, "'" + alias + "' is one of the server's built-in templates:"
                    + " it cannot be built, tagged or deleted; build from it with fromTemplate('" + alias + "') under another name");
        }
    }
}
