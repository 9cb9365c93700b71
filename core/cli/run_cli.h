/* run_cli.h: the pieces of `mpsl run` shared by single runs (cmd_run.c) and sweeps (sweep.c). */
#ifndef MPSL_RUN_CLI_H
#define MPSL_RUN_CLI_H

#include "config/config.h"
#include "supervise.h"
#include "train/run.h"

/* Where a run went: its id (0 if it never began) and database. */
typedef struct run_done {
    int64_t run_id;
    char db[1024];
} run_done;

/* Set output.db to --db's path (no-op when db_arg is NULL). */
int run_apply_db(cfg_node *root, const char *db_arg, mpsl_error *err);

/* Validate, run and report one experiment tree (owned), in this process. Returns the exit
 * status; *done (when non-NULL) gets the run's id and database. */
int run_one(cfg_node *root, const char *exp_path, const char *exp_dir, const char *db_arg,
            int from_run, const run_options *opt, run_done *done, mpsl_error *err);

/* One experiment in a child process watched by this one (supervise.c): its peak memory, its
 * signals and any crash are its own, and a run it began always ends with a true status. */
typedef struct one_run {
    cfg_node *root;
    const char *exp_path, *exp_dir, *db_arg;
    int from_run;
    const run_options *opt;
    run_done *done;
    mpsl_error *err;
} one_run;
/* The child's body for supervise_start (ctx: a one_run). */
int run_one_child(void *ctx, run_progress *progress);
/* run_one in a supervised child, waited for; root is freed here. */
int run_supervised(cfg_node *root, const char *exp_path, const char *exp_dir,
                   const char *db_arg, int from_run, const run_options *opt, run_done *done,
                   mpsl_error *err);

/* Set key (dotted) to a string, whatever the text looks like (a run's name). */
int run_set_string(cfg_node *root, const char *key, const char *text, mpsl_error *err);

#define SWEEP_MAX_KEYS 8
#define SWEEP_MAX_ONLY 16

/* One combination of a sweep's values. */
typedef struct sweep_point {
    cfg_node *cfg;              /* the experiment with this point's values, no sweep key,
                                 * named "NAME/key=value,..." */
    char label[512];            /* "strategy=mpsl, train.lr=0.001" */
    char short_label[384];      /* "strategy=mpsl,lr=0.001": keys by their last part */
    char *point_json;           /* {"strategy":{"plugin":"mpsl"},"train.lr":0.001} */
    size_t n_keys;
    char keys[SWEEP_MAX_KEYS][128];         /* the sweep's dotted keys */
    char values[SWEEP_MAX_KEYS][256];       /* each key's value as the label shows it */
} sweep_point;

/* Every combination of root's `sweep:` values, the first key varying slowest. */
int sweep_expand(const cfg_node *root, sweep_point **out, size_t *n_out, mpsl_error *err);
void sweep_free_points(sweep_point *pts, size_t n);

typedef struct sweep_options {
    int jobs;                   /* points run at once (1: one after another) */
    int rerun;                  /* 1: run points that already finished again */
    int n_only;                 /* --only KEY=VALUE filters: a point runs when it matches all */
    const char *only[SWEEP_MAX_ONLY];
} sweep_options;

/* `sweep:` maps dotted keys to lists of values; the experiment runs once per combination
 * (the first key varies slowest), each stored on its own with the sweep resolved, then the
 * runs are compared side by side. root is freed here. */
int run_sweep(cfg_node *root, const char *exp_path, const char *exp_dir, const char *db_arg,
              const run_options *opt, const sweep_options *so, mpsl_error *err);

#endif
