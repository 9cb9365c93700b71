/* loader.h: finding plugins on the search path, dlopen()ing them with RTLD_NOW | RTLD_LOCAL,
 * checking their descriptor (ABI, kind, tables), and the table of host services they get. */
#ifndef MPSL_LOADER_H
#define MPSL_LOADER_H

#include "mpsl/plugin.h"

typedef struct loaded_plugin {
    void *handle;
    const mpsl_plugin_desc *desc;
    char *path;                  /* the file that was opened (owned) */
} loaded_plugin;

/* Any kind: pass PLUGIN_ANY_KIND as expected_kind. */
#define PLUGIN_ANY_KIND ((mpsl_plugin_kind)-1)

/* Open path and validate it. Refuses, naming the path: missing file, unresolved symbols
 * (dlerror), no entry point, entry point failing, ABI major mismatch or a newer minor (both
 * versions named), a kind other than expected_kind, a table too small for its kind, a
 * malformed parameter table. The library is closed again after any failure. */
int plugin_load(const char *path, mpsl_plugin_kind expected_kind, loaded_plugin *out,
                mpsl_error *err);
void plugin_unload(loaded_plugin *p);

/* The plugin search path, in order: $MPSL_PLUGIN_PATH (colon-separated), the directory of the
 * experiment file and its plugins/ folder (when experiment_dir is non-NULL), the build tree
 * (when this libmpsl runs from it), the installed plugin directory. Each directory D is
 * searched as D/<kind>/<name>.so, then D/<name>.so. Returns a NULL-terminated array of
 * malloc'd strings; free with plugin_path_free. */
char **plugin_search_path(const char *experiment_dir);
void plugin_path_free(char **dirs);

/* Resolve the `plugin:` value of a config slot to a file. A value containing '/' or ending in
 * ".so" is a path (relative to experiment_dir, then to the working directory); otherwise a
 * name searched on the path. On failure err lists the directories searched. */
int plugin_resolve(const char *name, mpsl_plugin_kind kind, const char *experiment_dir,
                   char **path, mpsl_error *err);

/* Resolve and load in one go. */
int plugin_open(const char *name, mpsl_plugin_kind kind, const char *experiment_dir,
                loaded_plugin *out, mpsl_error *err);

const char *plugin_kind_name(mpsl_plugin_kind kind);   /* "dataset", ... */
int plugin_kind_from_name(const char *name, mpsl_plugin_kind *kind);

/* The services table handed to every plugin (session functions included). */
const mpsl_host *host_services(void);

#endif
