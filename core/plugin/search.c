/* search.c: where plugins are looked for, and turning a config's `plugin:` value into a file.
 * Order: $MPSL_PLUGIN_PATH, the experiment's folder, the build tree (only when this libmpsl
 * is the one in the build tree, so an installed mpsl never picks up stale build output), and
 * the installed plugin directory. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loader.h"
#include "mpsl_build_config.h"
#include "util/util.h"

#define MAX_DIRS 64

static int push(char **dirs, int *n, char *dir)
{
    if (!dir) {
        return MPSL_ERR_NOMEM;
    }
    for (int i = 0; i < *n; i++) {
        if (strcmp(dirs[i], dir) == 0) {
            free(dir);
            return MPSL_OK;
        }
    }
    if (*n >= MAX_DIRS - 1) {
        free(dir);
        return MPSL_OK;
    }
    dirs[(*n)++] = dir;
    return MPSL_OK;
}

/* True when the libmpsl holding this code lives under the build root. */
static const char library_anchor; /* any object inside libmpsl, for dladdr */

static int running_from_build_tree(void)
{
    Dl_info info;
    if (!dladdr(&library_anchor, &info) || !info.dli_fname) {
        return 0;
    }
    char *real = realpath(info.dli_fname, NULL);
    char *root = realpath(MPSL_BUILD_ROOT, NULL);
    int inside = real && root && strncmp(real, root, strlen(root)) == 0 &&
                 real[strlen(root)] == '/';
    free(real);
    free(root);
    return inside;
}

char **plugin_search_path(const char *experiment_dir)
{
    char **dirs = calloc(MAX_DIRS, sizeof *dirs);
    if (!dirs) {
        return NULL;
    }
    int n = 0;
    const char *env = getenv("MPSL_PLUGIN_PATH");
    if (env && *env) {
        char *copy = mpsl_strdup(env);
        char *save = NULL;
        for (char *tok = copy ? strtok_r(copy, ":", &save) : NULL; tok;
             tok = strtok_r(NULL, ":", &save)) {
            push(dirs, &n, mpsl_strdup(tok));
        }
        free(copy);
    }
    if (experiment_dir) {
        push(dirs, &n, mpsl_strdup(experiment_dir));
        push(dirs, &n, mpsl_strfmt("%s/plugins", experiment_dir));
    }
    if (running_from_build_tree()) {
        push(dirs, &n, mpsl_strfmt("%s/plugins", MPSL_BUILD_ROOT));
    }
    push(dirs, &n, mpsl_strdup(MPSL_PLUGIN_INSTALL_DIR));
    return dirs;
}

void plugin_path_free(char **dirs)
{
    if (!dirs) {
        return;
    }
    for (char **d = dirs; *d; d++) {
        free(*d);
    }
    free(dirs);
}

static int is_file(const char *path) { return access(path, R_OK) == 0; }

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int plugin_resolve(const char *name, mpsl_plugin_kind kind, const char *experiment_dir,
                   char **path, mpsl_error *err)
{
    *path = NULL;
    if (!name || !*name) {
        return mpsl_err(err, "empty plugin name");
    }
    if (strchr(name, '/') || ends_with(name, ".so")) {
        /* An explicit path: relative to the experiment file, then to the working directory. */
        if (name[0] != '/' && experiment_dir) {
            char *candidate = mpsl_strfmt("%s/%s", experiment_dir, name);
            if (candidate && is_file(candidate)) {
                *path = candidate;
                return MPSL_OK;
            }
            free(candidate);
        }
        if (is_file(name)) {
            *path = mpsl_strdup(name);
            return *path ? MPSL_OK : MPSL_ERR_NOMEM;
        }
        return mpsl_errs(err, MPSL_ERR_PLUGIN, "cannot open plugin %s: no such file%s%s%s", name,
                         experiment_dir ? " (also tried relative to " : "",
                         experiment_dir ? experiment_dir : "", experiment_dir ? ")" : "");
    }
    char **dirs = plugin_search_path(experiment_dir);
    if (!dirs) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    char tried[700] = "";
    for (char **d = dirs; *d; d++) {
        char *candidates[2] = {mpsl_strfmt("%s/%s/%s.so", *d, plugin_kind_name(kind), name),
                               mpsl_strfmt("%s/%s.so", *d, name)};
        for (int i = 0; i < 2; i++) {
            if (!*path && candidates[i] && is_file(candidates[i])) {
                *path = candidates[i];
                candidates[i] = NULL;
            }
            free(candidates[i]);
        }
        if (*path) {
            break;
        }
        size_t used = strlen(tried);
        snprintf(tried + used, sizeof tried - used, "%s%s", used ? ", " : "", *d);
    }
    plugin_path_free(dirs);
    if (*path) {
        return MPSL_OK;
    }
    return mpsl_errs(err, MPSL_ERR_PLUGIN,
                     "no %s plugin named '%s' (searched %s; set MPSL_PLUGIN_PATH or give a "
                     "path ending in .so; `mpsl plugins` lists what is found)",
                     plugin_kind_name(kind), name, tried);
}

int plugin_open(const char *name, mpsl_plugin_kind kind, const char *experiment_dir,
                loaded_plugin *out, mpsl_error *err)
{
    char *path = NULL;
    int rc = plugin_resolve(name, kind, experiment_dir, &path, err);
    if (rc != MPSL_OK) {
        return rc;
    }
    rc = plugin_load(path, kind, out, err);
    /* Found by name: the file must be the plugin it is named after, so that what the run
     * records is what the experiment asked for. */
    if (rc == MPSL_OK && !strchr(name, '/') && !ends_with(name, ".so") &&
        strcmp(out->desc->name, name) != 0) {
        rc = mpsl_errs(err, MPSL_ERR_PLUGIN,
                       "plugin %s declares the name '%s', but was found for '%s' (rename the "
                       "file to %s.so or set the name in its descriptor)",
                       path, out->desc->name, name, out->desc->name);
        plugin_unload(out);
    }
    free(path);
    return rc;
}
