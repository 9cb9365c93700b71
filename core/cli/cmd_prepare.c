/* cmd_prepare.c: `mpsl prepare EXPERIMENT.yaml [--set KEY=VALUE]...`: run the dataset
 * plugin's one-time preparation (e.g. synthesising audio, converting raw downloads) for the
 * dataset the experiment names (every point's, for a sweep file), so that runs start without
 * that cost. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "run_cli.h"
#include "train/experiment.h"
#include "util/util.h"

/* Prepare the dataset of one experiment tree (owned). */
static int prepare_one(cfg_node *root, const char *file, const char *dir, mpsl_error *err)
{
    int status = 1;
    experiment ex;
    if (experiment_build(root, file, dir, &ex, err) == MPSL_OK) {
        const mpsl_plugin_desc *d = ex.dataset.plugin.desc;
        const mpsl_dataset_api *api = d->api;
        int has_prepare = api->size >= offsetof(mpsl_dataset_api, prepare) + sizeof(void *) &&
                          api->prepare;
        if (!has_prepare) {
            printf("dataset '%s' needs no preparation\n", d->name);
            status = 0;
        } else {
            double t0 = mpsl_now();
            int rc = api->prepare(host_services(), ex.dataset.params, ex.dataset.where, err);
            if (rc == MPSL_OK) {
                printf("dataset '%s' prepared in %.1f s\n", d->name, mpsl_now() - t0);
                status = 0;
            } else if (!err->msg[0]) {
                mpsl_err(err, "dataset '%s': preparation failed", d->name);
            }
        }
    }
    experiment_free(&ex);
    return status;
}

/* A sweep file: the dataset of every point, each distinct `data` block once (a sweep over
 * strategies shares one dataset; one over data.dataset.train_limit prepares each). */
static int prepare_sweep(cfg_node *root, const char *file, const char *dir, mpsl_error *err)
{
    sweep_point *pts = NULL;
    size_t total = 0;
    int status = sweep_expand(root, &pts, &total, err) == MPSL_OK ? 0 : 1;
    for (size_t r = 0; r < total && status == 0; r++) {
        const cfg_node *data = cfg_get(pts[r].cfg, "data");
        int seen = 0;
        for (size_t q = 0; q < r && !seen; q++) {
            seen = cfg_equal(cfg_get(pts[q].cfg, "data"), data);
        }
        if (seen) {
            continue;
        }
        cfg_node *cfg = cfg_clone(pts[r].cfg);
        status = cfg ? prepare_one(cfg, file, dir, err) : 1;
        if (status != 0) {
            mpsl_err_prefix(err, "sweep point %zu/%zu (%s)", r + 1, total, pts[r].label);
        }
    }
    sweep_free_points(pts, total);
    cfg_free(root);
    return status;
}

int cmd_prepare(int argc, char **argv)
{
    const char *file = NULL;
    const char *overrides[64];
    int n_over = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: mpsl prepare EXPERIMENT.yaml [--set KEY=VALUE]...\n"
                   "Prepares the experiment's dataset once (a no-op for datasets that need no "
                   "preparation);\nfor a sweep file, the dataset of every point (each "
                   "distinct data block once).\n");
            return 0;
        } else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc && n_over < 64) {
            overrides[n_over++] = argv[++i];
        } else if (argv[i][0] == '-' || file) {
            fprintf(stderr, "mpsl prepare: unexpected argument '%s'\n", argv[i]);
            return 2;
        } else {
            file = argv[i];
        }
    }
    if (!file) {
        fprintf(stderr, "usage: mpsl prepare EXPERIMENT.yaml [--set KEY=VALUE]...\n");
        return 2;
    }
    mpsl_error err = {{0}};
    char *dir = NULL;
    cfg_node *root = cli_load_experiment(file, &dir, &err);
    for (int i = 0; root && i < n_over; i++) {
        if (cfg_apply_override(root, overrides[i], &err) != MPSL_OK) {
            cfg_free(root);
            root = NULL;
        }
    }
    int status = 1;
    if (root) {
        status = cfg_get(root, "sweep") ? prepare_sweep(root, file, dir, &err)
                                        : prepare_one(root, file, dir, &err);
    }
    if (status != 0) {
        fprintf(stderr, "mpsl prepare: %s\n", err.msg);
    }
    free(dir);
    return status;
}
