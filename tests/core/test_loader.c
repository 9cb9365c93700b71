/* test_loader.c: every refusal of the plugin loader on a real broken shared object: each
 * names the path and the reason, and the library is closed again afterwards; a plugin of an
 * older minor ABI is accepted. Also the search path and name resolution.
 * argv[1]: folder of the bad_*.so, argv[2]: build plugins. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "plugin/loader.h"

static const char *bad_dir;

static char *bad(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/bad_%s.so", bad_dir, name);
    return path;
}

/* Load must fail with every needle in the message, and leave the library unloaded. */
static void refuse(const char *name, mpsl_plugin_kind kind, const char *needle1,
                   const char *needle2)
{
    loaded_plugin lp;
    mpsl_error err = {{0}};
    const char *path = bad(name);
    int rc = plugin_load(path, kind, &lp, &err);
    CHECK(rc != MPSL_OK);
    CHECK_CONTAINS(err.msg, path);
    CHECK_CONTAINS(err.msg, needle1);
    if (needle2) {
        CHECK_CONTAINS(err.msg, needle2);
    }
    CHECK(lp.handle == NULL);
    /* RTLD_NOLOAD finds the library only if something still holds it open. */
    void *still = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    CHECK(still == NULL);
    if (still) {
        dlclose(still);
    }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_loader BAD_DIR PLUGIN_DIR\n");
        return 2;
    }
    bad_dir = argv[1];
    const char *plugin_dir = argv[2];

    /* The good twin loads, with its descriptor intact. */
    loaded_plugin lp;
    mpsl_error err = {{0}};
    CHECK(plugin_load(bad("ok"), MPSL_KIND_AGGREGATION, &lp, &err) == MPSL_OK);
    CHECK(lp.desc && strcmp(lp.desc->name, "broken") == 0);
    plugin_unload(&lp);

    /* An older minor loads: a plugin built against 2.0 runs on this 2.x host (its dataset
     * info simply lacks class_names, which the host zeroed). */
    CHECK(MPSL_ABI_MINOR >= 1);
    CHECK(plugin_load(bad("abi_minor0"), MPSL_KIND_AGGREGATION, &lp, &err) == MPSL_OK);
    CHECK(lp.desc && lp.desc->abi_major == MPSL_ABI_MAJOR && lp.desc->abi_minor == 0);
    plugin_unload(&lp);

    refuse("does_not_exist", PLUGIN_ANY_KIND, "cannot open plugin", "No such file");
    refuse("no_entry", PLUGIN_ANY_KIND, "no entry point", "mpsl_plugin_entry");
    char this_mpsl[64];
    snprintf(this_mpsl, sizeof this_mpsl, "this mpsl is %d.%d", MPSL_ABI_MAJOR, MPSL_ABI_MINOR);
    refuse("abi_major", PLUGIN_ANY_KIND, "built for ABI 99.", this_mpsl);
    refuse("abi_minor", PLUGIN_ANY_KIND, "built for ABI 2.99", "needs a newer mpsl");
    /* a plugin built against ABI 1.x is told to rebuild against 2.x */
    refuse("abi_1", PLUGIN_ANY_KIND, "built for ABI 1.2", "rebuild the plugin against "
           "mpsl/plugin.h of ABI 2.x");
    refuse("unresolved", PLUGIN_ANY_KIND, "cannot load plugin", "mpsl_symbol_that_does_not_exist");
    refuse("entry_fails", PLUGIN_ANY_KIND, "failed to start", "licence file is missing");
    refuse("null_function", PLUGIN_ANY_KIND, "strategy has no server role", "broken");
    refuse("ok", MPSL_KIND_ENCODER, "is of kind 'aggregation'", "needs kind 'encoder'");

    /* A file that is not a shared object at all. */
    char text[4096];
    snprintf(text, sizeof text, "%s/not_a_library.so", bad_dir);
    FILE *f = fopen(text, "w");
    CHECK(f != NULL);
    if (f) {
        fputs("this is not ELF\n", f);
        fclose(f);
    }
    loaded_plugin junk;
    CHECK(plugin_load(text, PLUGIN_ANY_KIND, &junk, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "cannot load plugin");
    CHECK_CONTAINS(err.msg, text);

    /* Resolution: by name on MPSL_PLUGIN_PATH (kind subfolder), by path, and a miss that
     * lists where it looked. */
    setenv("MPSL_PLUGIN_PATH", plugin_dir, 1);
    char *path = NULL;
    CHECK(plugin_resolve("fedavg", MPSL_KIND_AGGREGATION, NULL, &path, &err) == MPSL_OK);
    CHECK_CONTAINS(path, "aggregation/fedavg.so");
    free(path);
    CHECK(plugin_resolve("fedvag", MPSL_KIND_AGGREGATION, NULL, &path, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "no aggregation plugin named 'fedvag'");
    CHECK_CONTAINS(err.msg, plugin_dir);
    CHECK(plugin_resolve("bad_ok.so", MPSL_KIND_AGGREGATION, bad_dir, &path, &err) == MPSL_OK);
    free(path);
    CHECK(plugin_resolve("nowhere/x.so", MPSL_KIND_AGGREGATION, bad_dir, &path, &err) != MPSL_OK);
    CHECK_CONTAINS(err.msg, "nowhere/x.so");

    char **dirs = plugin_search_path("/some/experiments");
    CHECK(dirs && dirs[0] && strcmp(dirs[0], plugin_dir) == 0);
    int saw_exp = 0;
    for (char **d = dirs; d && *d; d++) {
        saw_exp |= strcmp(*d, "/some/experiments/plugins") == 0;
    }
    CHECK(saw_exp);
    plugin_path_free(dirs);

    CHECK(strcmp(plugin_kind_name(MPSL_KIND_HEAD), "head") == 0);
    return check_exit();
}
