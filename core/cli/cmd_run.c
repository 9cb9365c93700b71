/* cmd_run.c: `mpsl run EXPERIMENT.yaml [--set KEY=VALUE]... [--db PATH]` and
 * `mpsl run --from-run ID [--db PATH] [--set ...]`: load and validate, then run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "run_cli.h"
#include "supervise.h"
#include "config/config.h"
#include "mpsl_build_config.h"
#include "results/store.h"
#include "train/run.h"
#include "transport/transport.h"
#include "util/util.h"

#define MAX_OVERRIDES 64

static void run_usage(FILE *out)
{
    fprintf(out,
            "usage: mpsl run EXPERIMENT.yaml [--set KEY=VALUE]... [--db PATH] [--name NAME]\n"
            "                [--quiet] [--jobs N] [--rerun] [--only KEY=VALUE]... [--no-sweep]\n"
            "       mpsl run --from-run ID [--db PATH] [--set KEY=VALUE]... [--name NAME]\n"
            "  --set KEY=VALUE  override any key, e.g. --set train.epochs=2\n"
            "  --db PATH        results database (overrides MPSL_DB and output.db; with\n"
            "                   --from-run, the database the run is read from and written to)\n"
            "  --name NAME      the run's name (default: the experiment's name; a sweep's\n"
            "                   points add their swept values, NAME/strategy=fedavg,seed=2)\n"
            "  --from-run ID    repeat a stored run from its resolved configuration\n"
            "  --quiet, -q      nothing on stderr but warnings and errors\n"
            "  --jobs N, -j N   a sweep runs N points at once (default 1)\n"
            "  --rerun          a sweep runs again the points that finished before (by\n"
            "                   default a point whose resolved config finished is skipped)\n"
            "  --only KEY=VALUE run only the sweep's points with this value of a swept key\n"
            "                   (repeatable; KEY whole or by its last part: --only seed=2)\n"
            "  --no-sweep       ignore the file's sweep: run the experiment as written\n"
            "exit status: 0 finished, 1 refused or failed, 2 usage, 130 interrupted\n");
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

int run_apply_db(cfg_node *root, const char *db_arg, mpsl_error *err)
{
    if (!db_arg) {
        return MPSL_OK;
    }
    /* The stored config says where its results went. */
    char *set = mpsl_strfmt("output.db='%s'", db_arg);
    int rc = set && !strchr(db_arg, '\'') ? cfg_apply_override(root, set, err)
                                          : mpsl_err(err, "--db: a path without quotes, please");
    free(set);
    return rc;
}

int run_one(cfg_node *root, const char *exp_path, const char *exp_dir, const char *db_arg,
            int from_run, const run_options *opt, run_done *done, mpsl_error *err)
{
    experiment ex;
    int rc = from_run ? MPSL_OK : run_apply_db(root, db_arg, err);
    if (rc == MPSL_OK) {
        rc = experiment_build(root, exp_path, exp_dir, &ex, err);
    } else {
        cfg_free(root);
        memset(&ex, 0, sizeof ex);
    }
    int status = 1;
    if (rc == MPSL_OK) {
        const char *db_path = db_arg ? db_arg : from_run ? "results.db" : ex.db_path;
        run_result res;
        rc = run_experiment(&ex, db_path, opt, &res, err);
        if (res.mpi && res.rank != 0) {
            /* a client rank: rank 0 prints and records; a failure ends the whole job */
            status = rc == MPSL_OK ? 0 : rc == MPSL_ERR_INTERRUPTED ? 130 : 1;
            experiment_free(&ex);
            if (status != 0) {
                /* rank 0 records why and ends the job; if it cannot, this rank ends it */
                transport_client_rank_linger_and_abort(30.0, status); /* does not return */
            }
            return 0;
        }
        if (res.run_id && (!opt->quiet || rc != MPSL_OK)) {
            fprintf(stderr, "run %lld %s after %lld epoch(s) in %.1f s (results in %s; "
                    "see: mpsl show %lld --db %s)\n",
                    (long long)res.run_id, res.status, (long long)res.epochs_done,
                    res.wall_seconds, db_path, (long long)res.run_id, db_path);
        }
        if (done) {
            done->run_id = res.run_id;
            snprintf(done->db, sizeof done->db, "%s", db_path);
        }
        status = rc == MPSL_OK ? 0 : rc == MPSL_ERR_INTERRUPTED ? 130 : 1;
        if (res.mpi && status != 0) {
            /* rank 0 recorded the outcome: a failed job is ended for every rank (some may
             * still wait for messages); a finished one goes on (a sweep's next point) and
             * shuts MPI down with the others when the command ends */
            experiment_free(&ex);
            if (err->msg[0]) {
                fprintf(stderr, "mpsl run: %s\n", err->msg);
            }
            transport_mpi_abort(status); /* does not return */
        }
    }
    experiment_free(&ex);
    return status;
}

int run_one_child(void *ctx, run_progress *progress)
{
    one_run *o = ctx;
    run_options opt = *o->opt;
    opt.progress = progress;
    mpsl_error child_err = {{0}};
    int status = run_one(o->root, o->exp_path, o->exp_dir, o->db_arg, o->from_run, &opt,
                         o->done, &child_err);
    if (status != 0 && child_err.msg[0]) {
        fprintf(stderr, "mpsl run: %s\n", child_err.msg);
    }
    return status;
}

int run_supervised(cfg_node *root, const char *exp_path, const char *exp_dir,
                   const char *db_arg, int from_run, const run_options *opt, run_done *done,
                   mpsl_error *err)
{
    run_progress *progress = supervise_progress_new();
    if (!progress) {
        cfg_free(root);
        return mpsl_err(err, "out of memory"), 1;
    }
    one_run o = {root, exp_path, exp_dir, db_arg, from_run, opt, done, err};
    supervised child = {.progress = progress};
    int status = supervise_start(run_one_child, &o, &child, err), which;
    if (status == 0) {
        status = supervise_wait_any(&child, 1, &which, err);
        if (progress->run_id && err->msg[0]) {
            err->msg[0] = '\0'; /* the run's fate was printed as it was marked */
        }
    }
    cfg_free(root); /* the child ran on its own copy */
    if (done) {
        done->run_id = progress->run_id;
        snprintf(done->db, sizeof done->db, "%s", progress->db_path);
    }
    supervise_progress_free(progress);
    return status;
}

int cmd_run(int argc, char **argv)
{
    const char *file = NULL, *db_arg = NULL, *from_run = NULL, *name = NULL;
    int no_sweep = 0;
    const char *overrides[MAX_OVERRIDES];
    int n_over = 0;
    run_options opt = {0};
    sweep_options so = {.jobs = 1};
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
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            opt.quiet = 1;
        } else if (strcmp(a, "--name") == 0 && has_value) {
            name = argv[++i];
            if (!name[0]) {
                fprintf(stderr, "mpsl run: --name wants a non-empty name\n");
                return 2;
            }
        } else if (strcmp(a, "--no-sweep") == 0) {
            no_sweep = 1;
        } else if (strcmp(a, "--only") == 0 && has_value) {
            if (so.n_only == SWEEP_MAX_ONLY) {
                fprintf(stderr, "mpsl run: at most %d --only options\n", SWEEP_MAX_ONLY);
                return 2;
            }
            so.only[so.n_only++] = argv[++i];
        } else if (strcmp(a, "--rerun") == 0) {
            so.rerun = 1;
        } else if ((strcmp(a, "--jobs") == 0 || strcmp(a, "-j") == 0) && has_value) {
            char *end;
            long j = strtol(argv[++i], &end, 10);
            if (*end || j < 1 || j > SUPERVISE_MAX_CHILDREN) {
                fprintf(stderr, "mpsl run: --jobs wants a number from 1 to %d, not '%s'\n",
                        SUPERVISE_MAX_CHILDREN, argv[i]);
                return 2;
            }
            so.jobs = (int)j;
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
    if (!db_arg && getenv("MPSL_DB") && getenv("MPSL_DB")[0]) {
        db_arg = getenv("MPSL_DB"); /* the command line's --db, then MPSL_DB, then output.db */
    }
    if (no_sweep && so.n_only) {
        fprintf(stderr, "mpsl run: --no-sweep and --only contradict each other (choose one)\n");
        return 2;
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
        exp_dir = exp_path ? cli_dir_of(exp_path) : mpsl_strdup(".");
    } else {
        exp_path = mpsl_strdup(file);
        root = cli_load_experiment(file, &exp_dir, &err);
    }
    for (int i = 0; root && i < n_over; i++) {
        if (cfg_apply_override(root, overrides[i], &err) != MPSL_OK) {
            cfg_free(root);
            root = NULL;
        }
    }
    if (root && name && run_set_string(root, "name", name, &err) != MPSL_OK) {
        cfg_free(root);
        root = NULL;
    }
    if (root && no_sweep) {
        cfg_remove(root, "sweep");
    }
    int status = 1;
    if (root) {
        const cfg_node *sweep = cfg_get(root, "sweep");
        if (!sweep && so.n_only) {
            cfg_free(root);
            root = NULL;
            mpsl_err(&err, "--only: %s has no sweep to choose points from", file ? file : "the run");
        } else if (sweep) {
            status = run_sweep(root, exp_path, exp_dir, db_arg, &opt, &so, &err);
        } else if (transport_mpi_launched()) { /* MPI is started in this process, not a child */
            status = run_one(root, exp_path, exp_dir, db_arg, from_run != NULL, &opt, NULL, &err);
        } else {
            status = run_supervised(root, exp_path, exp_dir, db_arg, from_run != NULL, &opt,
                                    NULL, &err);
        }
    }
    if (status != 0 && !root && !err.msg[0]) {
        mpsl_err(&err, "nothing was run");
    }
    if (status != 0 && err.msg[0]) {
        fprintf(stderr, "mpsl run: %s\n", err.msg);
    }
    free(exp_path);
    free(exp_dir);
    transport_mpi_stop(); /* with the other ranks, when the run went over MPI */
    return status;
}
