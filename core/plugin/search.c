/* search.c: where plugins are looked for, and turning a config's `plugin:` value into a file.
 * Order: $MPSL_PLUGIN_PATH, the experiment's folder, the build tree (only when this libmpsl
 * is the one in the build tree, so an installed mpsl never picks up stale build output), and
 * the installed plugin directory. */
#include <dirent.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
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

/* A plugin file seen while looking for a near name. `typed`: it lies in a D/<kind>/ folder,
 * so its kind is known without opening it. */
typedef struct near_file {
    char *name, *path;
    int typed;
} near_file;

static void near_add_dir(near_file **files, size_t *n, size_t *cap, const char *dir, int typed)
{
    DIR *d = opendir(dir);
    if (!d) {
        return;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len <= 3 || !ends_with(e->d_name, ".so")) {
            continue;
        }
        if (*n == *cap) {
            size_t grown_cap = *cap ? 2 * *cap : 32;
            near_file *grown = realloc(*files, grown_cap * sizeof *grown);
            if (!grown) {
                break; /* out of memory: no suggestion is no loss */
            }
            *files = grown;
            *cap = grown_cap;
        }
        near_file f = {mpsl_strfmt("%.*s", (int)(len - 3), e->d_name),
                       mpsl_strfmt("%s/%s", dir, e->d_name), typed};
        if (!f.name || !f.path) {
            free(f.name);
            free(f.path);
            break;
        }
        (*files)[(*n)++] = f;
    }
    closedir(d);
}

/* The name of the plugin of this kind on the search path closest to `name` (malloc'd), or
 * NULL when none is close. A file directly in a search directory may be of any kind, so it
 * is opened to check before it is offered: only the closest ones are, and only after the
 * lookup has already failed. */
static char *near_plugin(const char *name, mpsl_plugin_kind kind, char **dirs)
{
    near_file *files = NULL;
    size_t n = 0, cap = 0;
    for (char **d = dirs; *d; d++) {
        char *sub = mpsl_strfmt("%s/%s", *d, plugin_kind_name(kind));
        if (sub) {
            near_add_dir(&files, &n, &cap, sub, 1);
        }
        free(sub);
        near_add_dir(&files, &n, &cap, *d, 0);
    }
    const char **names = n ? malloc(n * sizeof *names) : NULL;
    char *found = NULL;
    while (names && !found && n) {
        for (size_t i = 0; i < n; i++) {
            names[i] = files[i].name;
        }
        const char *best = cfg_did_you_mean(name, names, n);
        if (!best) {
            break;
        }
        size_t k = 0;
        while (files[k].name != best) {
            k++;
        }
        loaded_plugin lp;
        mpsl_error ignored = {{0}};
        if (files[k].typed) {
            found = files[k].name;
        } else if (plugin_load(files[k].path, kind, &lp, &ignored) == MPSL_OK) {
            plugin_unload(&lp);
            found = files[k].name;
        } else {
            free(files[k].name); /* not of this kind: drop it and look again */
        }
        free(files[k].path);
        files[k] = files[--n];
    }
    for (size_t i = 0; i < n; i++) {
        free(files[i].name);
        free(files[i].path);
    }
    free(names);
    free(files);
    return found;
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
    if (*path) {
        plugin_path_free(dirs);
        return MPSL_OK;
    }
    char *near = near_plugin(name, kind, dirs);
    plugin_path_free(dirs);
    int rc = mpsl_errs(err, MPSL_ERR_PLUGIN,
                       "no %s plugin named '%s'%s%s%s (searched %s; set MPSL_PLUGIN_PATH or "
                       "give a path ending in .so; `mpsl plugins` lists what is found)",
                       plugin_kind_name(kind), name, near ? "; did you mean '" : "",
                       near ? near : "", near ? "'?" : "", tried);
    free(near);
    return rc;
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
