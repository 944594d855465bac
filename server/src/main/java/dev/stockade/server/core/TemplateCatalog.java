package dev.stockade.server.core;

import java.util.Map;

/**
 * The templates a tenant built through E2B's Template API (issue 17), as a create needs them: the
 * built-in template a built one runs on, and the defaults its build recorded. Implemented by
 * {@code templates.TemplateStore} (core does not know the store's tables); {@link CreatePolicy}
 * asks it for a template name that is neither built in nor a snapshot. Called from request threads.
 */
public interface TemplateCatalog {
    /** No built templates (a server without a store). */
    TemplateCatalog NONE = (owner, name) -> null;

    /**
     * The owner's ready template named {@code alias}, {@code alias:tag} or by its id (the tag
     * {@code default} when none is given), or null when it has none of that name.
     */
    Resolved resolve(String owner, String name);

    /**
     * A ready build of a template.
     *
     * @param templateId the template's id (what E2B's create answers as templateID)
     * @param alias the template's alias
     * @param base the built-in template it runs on ({@link #isBuiltIn})
     * @param env the environment its build set: the sandbox's default envVars (the create's override them)
     * @param workdir the working directory its build left (recorded; commands do not default to it yet)
     * @param user the user its build left (recorded; commands do not default to it yet)
     */
    record Resolved(String templateId, String alias, String base, Map<String, String> env, String workdir, String user) {
        public Resolved {
            env = Map.copyOf(env);
        }
    }

    /** Whether a name is one of the server's own templates (base, python, code-interpreter-v1, each also -hardened). */
    static boolean isBuiltIn(String name) {
        String n = name.endsWith(Runtimes.HARDENED_SUFFIX)
                ? name.substring(0, name.length() - Runtimes.HARDENED_SUFFIX.length()) : name;
        return CreatePolicy.DEFAULT_TEMPLATE_NAMES.contains(n);
    }
}
