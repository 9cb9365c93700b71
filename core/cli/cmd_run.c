/* cmd_run.c: `mpsl run EXPERIMENT.yaml [--set KEY=VALUE]... [--db PATH]` and
 * `mpsl run --from-run ID [--db PATH] [--set ...]`: load and validate, then run. */
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config/config.h"
#include "mpsl_build_config.h"
#include "results/store.h"
#include "train/run.h"
#include "util/util.h"

#define MAX_OVERRIDES 64

static void run_usage(FILE *out)
{
    fprintf(out,
            "usage: mpsl run EXPERIMENT.yaml [--set KEY=VALUE]... [--db PATH] [--quiet]\n"
            "       mpsl run --from-run ID [--db PATH] [--set KEY=VALUE]...\n"
            "  --set KEY=VALUE  override any key, e.g. --set train.epochs=2\n"
            "  --db PATH        results database (overrides output.db; with --from-run, the\n"
            "                   database the run is read from and written to)\n"
            "  --from-run ID    repeat a stored run from its resolved configuration\n"
            "  --quiet          no start line (progress and the summary still print)\n"
            "exit status: 0 finished, 1 refused or failed, 2 usage, 130 interrupted\n");
}

/* Directory of a file path (malloc'd). */
static char *dir_of(const char *path)
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

static cfg_node *load_from_run(const char *db_path, const char *id_text, char **exp_path,
                               mpsl_error *err)
{
    char *end;
    long long id = strtoll(id_text, &end, 10);
    if (*id_text == '\0' || *end != '\0' || id < 1) {
        mpsl_err(err, "--from-run: '%s' is not a run id (a positive integer)", id_text);
        return NULL;
    }
    store *db = NULL;
    if (store_open(db_path, STORE_READ_ONLY, &db, err) != MPSL_OK) {
        return NULL;
    }
    char *yaml = NULL;
    int rc = store_run_config(db, id, &yaml, exp_path, err);
    store_close(db);
    if (rc != MPSL_OK) {
        return NULL;
    }
    char name[64];
    snprintf(name, sizeof name, "run %lld", id);
    cfg_node *root = cfg_parse_string(yaml, name, err);
    free(yaml);
    return root;
}

int cmd_run(int argc, char **argv)
{
    const char *file = NULL, *db_arg = NULL, *from_run = NULL;
    const char *overrides[MAX_OVERRIDES];
    int n_over = 0;
    run_options opt = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_value = i + 1 < argc;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            run_usage(stdout);
            return 0;
        } else if (strcmp(a, "--set") == 0 && has_value) {
            if (n_over == MAX_OVERRIDES) {
                fprintf(stderr, "mpsl run: at most %d --set options\n", MAX_OVERRIDES);
                return 2;
            }
            overrides[n_over++] = argv[++i];
        } else if (strncmp(a, "--set=", 6) == 0) {
            if (n_over == MAX_OVERRIDES) {
                fprintf(stderr, "mpsl run: at most %d --set options\n", MAX_OVERRIDES);
                return 2;
            }
            overrides[n_over++] = a + 6;
        } else if (strcmp(a, "--db") == 0 && has_value) {
            db_arg = argv[++i];
        } else if (strcmp(a, "--from-run") == 0 && has_value) {
            from_run = argv[++i];
        } else if (strcmp(a, "--quiet") == 0) {
            opt.quiet = 1;
        } else if (a[0] == '-') {
            fprintf(stderr, "mpsl run: unknown option or missing value: %s\n", a);
            run_usage(stderr);
            return 2;
        } else if (!file) {
            file = a;
        } else {
            fprintf(stderr, "mpsl run: one experiment file at a time (got '%s' and '%s')\n", file, a);
            return 2;
        }
    }
    if (!file == !from_run) {
        fprintf(stderr, "mpsl run: give an experiment file or --from-run ID (one of them)\n");
        run_usage(stderr);
        return 2;
    }
    mpsl_error err = {{0}};
    char *exp_path = NULL, *exp_dir = NULL;
    cfg_node *root;
    if (from_run) {
        root = load_from_run(db_arg ? db_arg : "results.db", from_run, &exp_path, &err);
        exp_dir = exp_path ? dir_of(exp_path) : mpsl_strdup(".");
    } else {
        exp_path = mpsl_strdup(file);
        exp_dir = dir_of(file);
        char *dirs[8];
        config_search_dirs(exp_dir, dirs, 8);
        root = cfg_load_file(file, (const char *const *)dirs, &err);
        for (char **d = dirs; *d; d++) {
            free(*d);
        }
    }
    for (int i = 0; root && i < n_over; i++) {
        if (cfg_apply_override(root, overrides[i], &err) != MPSL_OK) {
            cfg_free(root);
            root = NULL;
        }
    }
    int status = 1;
    if (root) {
        experiment ex;
        int rc = MPSL_OK;
        if (db_arg && !from_run) {
            /* The stored config says where its results went. */
            char *set = mpsl_strfmt("output.db='%s'", db_arg);
            rc = set && !strchr(db_arg, '\'') ? cfg_apply_override(root, set, &err)
                                               : mpsl_err(&err, "--db: a path without quotes, please");
            free(set);
        }
        if (rc == MPSL_OK) {
            rc = experiment_build(root, exp_path, exp_dir, &ex, &err);
        } else {
            cfg_free(root);
            memset(&ex, 0, sizeof ex);
        }
        if (rc == MPSL_OK) {
            const char *db_path = db_arg ? db_arg : from_run ? "results.db" : ex.db_path;
            run_result res;
            rc = run_experiment(&ex, db_path, &opt, &res, &err);
            if (res.run_id) {
                fprintf(stderr, "run %lld %s after %lld epoch(s) in %.1f s (results in %s; "
                        "see: mpsl show %lld --db %s)\n",
                        (long long)res.run_id, res.status, (long long)res.epochs_done,
                        res.wall_seconds, db_path, (long long)res.run_id, db_path);
            }
            status = rc == MPSL_OK ? 0 : rc == MPSL_ERR_INTERRUPTED ? 130 : 1;
        }
        experiment_free(&ex);
    }
    if (status != 0 && err.msg[0]) {
        fprintf(stderr, "mpsl run: %s\n", err.msg);
    }
    free(exp_path);
    free(exp_dir);
    return status;
}
