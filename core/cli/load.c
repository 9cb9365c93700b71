/* load.c: reading an experiment file for the verbs that take one: includes are searched
 * next to the file, in $MPSL_CONFIG_PATH, ../configs beside the experiment, ./configs, the
 * source tree's configs/ and the installed configs/. */
#include <libgen.h>
#include <stdlib.h>

#include "cli.h"
#include "mpsl_build_config.h"
#include "util/util.h"

/* Directory of a file path (malloc'd). */
char *cli_dir_of(const char *path)
{
    char *copy = mpsl_strdup(path);
    char *dir = copy ? mpsl_strdup(dirname(copy)) : NULL;
    free(copy);
    return dir;
}

/* configs/ directories searched for included fragments. */
static void config_search_dirs(const char *exp_dir, char **dirs, int max)
{
    int n = 0;
    const char *env = getenv("MPSL_CONFIG_PATH");
    if (env && *env && n < max - 1) {
        dirs[n++] = mpsl_strdup(env);
    }
    if (exp_dir && n < max - 1) {
        dirs[n++] = mpsl_strfmt("%s/../configs", exp_dir);
    }
    if (n < max - 1) {
        dirs[n++] = mpsl_strdup("configs");
    }
    if (n < max - 1) {
        dirs[n++] = mpsl_strdup(MPSL_SOURCE_ROOT "/configs");
    }
    if (n < max - 1) {
        dirs[n++] = mpsl_strdup(MPSL_CONFIGS_INSTALL_DIR);
    }
    dirs[n] = NULL;
}

cfg_node *cli_load_experiment(const char *file, char **exp_dir, mpsl_error *err)
{
    *exp_dir = cli_dir_of(file);
    char *dirs[8];
    config_search_dirs(*exp_dir, dirs, 8);
    cfg_node *root = cfg_load_file(file, (const char *const *)dirs, err);
    for (char **d = dirs; *d; d++) {
        free(*d);
    }
    return root;
}
