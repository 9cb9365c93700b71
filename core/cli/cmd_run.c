/* cmd_run.c: `mpsl run EXPERIMENT.yaml [--set KEY=VALUE]... [--db PATH]` and
 * `mpsl run --from-run ID [--db PATH] [--set ...]`: load and validate, then run. */
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
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
            "usage: mpsl run EXPERIMENT.yaml [--set KEY=VALUE]... [--db PATH] [--quiet]\n"
            "       mpsl run --from-run ID [--db PATH] [--set KEY=VALUE]...\n"
            "  --set KEY=VALUE  override any key, e.g. --set train.epochs=2\n"
            "  --db PATH        results database (overrides output.db; with --from-run, the\n"
            "                   database the run is read from and written to)\n"
            "  --from-run ID    repeat a stored run from its resolved configuration\n"
            "  --quiet          no start line (progress and the summary still print)\n"
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

/* Validate, run and report one experiment tree (owned). Returns the exit status; the run's
 * id (0 if it never began) and database go to *done when non-NULL. */
typedef struct run_done {
    int64_t run_id;
    char db[1024];
} run_done;

static int run_one(cfg_node *root, const char *exp_path, const char *exp_dir, const char *db_arg,
                   int from_run, const run_options *opt, run_done *done, mpsl_error *err)
{
    experiment ex;
    int rc = MPSL_OK;
    if (db_arg && !from_run) {
        /* The stored config says where its results went. */
        char *set = mpsl_strfmt("output.db='%s'", db_arg);
        rc = set && !strchr(db_arg, '\'') ? cfg_apply_override(root, set, err)
                                           : mpsl_err(err, "--db: a path without quotes, please");
        free(set);
    }
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
                transport_mpi_abort(status); /* does not return */
            }
            return 0;
        }
        if (res.run_id) {
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

/* One experiment in a child process watched by this one (cli/supervise.c): its peak memory,
 * its signals and any crash are its own, and a run it began always ends with a true status. */
typedef struct one_run {
    cfg_node *root;
    const char *exp_path, *exp_dir, *db_arg;
    int from_run;
    const run_options *opt;
    run_done *done;
    mpsl_error *err;
} one_run;

static int run_one_child(void *ctx, run_progress *progress)
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

static int run_supervised(cfg_node *root, const char *exp_path, const char *exp_dir,
                          const char *db_arg, int from_run, const run_options *opt,
                          run_done *done, mpsl_error *err)
{
    run_progress *progress = supervise_progress_new();
    if (!progress) {
        cfg_free(root);
        return mpsl_err(err, "out of memory"), 1;
    }
    one_run o = {root, exp_path, exp_dir, db_arg, from_run, opt, done, err};
    int status = supervise(run_one_child, &o, progress, err);
    cfg_free(root); /* the child ran on its own copy */
    if (done) {
        done->run_id = progress->run_id;
        snprintf(done->db, sizeof done->db, "%s", progress->db_path);
    }
    if (err->msg[0] && progress->run_id) {
        fprintf(stderr, "mpsl run: %s\n", err->msg);
        err->msg[0] = '\0'; /* said once */
    }
    if (status != 0 && !err->msg[0] && done) { /* a sweep point: the sweep says which */
        mpsl_err(err, "the run exited with status %d", status);
    }
    supervise_progress_free(progress);
    return status;
}

#define MAX_SWEEP_KEYS 8
#define MAX_SWEEP_RUNS 1000

/* `sweep:` maps dotted keys to lists of values; the experiment runs once per combination
 * (the first key varies slowest), each run stored on its own with the sweep resolved, then
 * the runs are compared side by side. */
static int run_sweep(cfg_node *root, const char *exp_path, const char *exp_dir,
                     const char *db_arg, const run_options *opt, mpsl_error *err)
{
    const cfg_node *sweep = cfg_get(root, "sweep");
    int mpi_job = transport_mpi_launched(), rank = transport_launched_rank();
    char w[256];
    size_t n_keys = cfg_node_type(sweep) == CFG_MAP ? cfg_len(sweep) : 0;
    if (n_keys == 0 || n_keys > MAX_SWEEP_KEYS) {
        mpsl_err(err, "%s: sweep must map 1 to %d dotted keys to lists of values "
                 "(e.g. strategy: [{plugin: mpsl}, {plugin: fedavg}])",
                 cfg_where(sweep, w, sizeof w), MAX_SWEEP_KEYS);
        cfg_free(root);
        return 1;
    }
    size_t total = 1, len[MAX_SWEEP_KEYS];
    for (size_t k = 0; k < n_keys; k++) {
        const cfg_node *values = cfg_at(sweep, k);
        len[k] = cfg_node_type(values) == CFG_SEQ ? cfg_len(values) : 0;
        if (len[k] == 0) {
            mpsl_err(err, "%s: sweep.%s must be a non-empty list of values",
                     cfg_where(values, w, sizeof w), cfg_key_at(sweep, k));
            cfg_free(root);
            return 1;
        }
        total *= len[k];
        if (total > MAX_SWEEP_RUNS) {
            mpsl_err(err, "%s: the sweep has more than %d combinations",
                     cfg_where(sweep, w, sizeof w), MAX_SWEEP_RUNS);
            cfg_free(root);
            return 1;
        }
    }
    run_done *done = calloc(total, sizeof *done);
    int status = done ? 0 : 1;
    for (size_t r = 0; r < total && status == 0; r++) {
        cfg_node *point = cfg_clone(root);
        if (!point) {
            status = 1;
            mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
            break;
        }
        cfg_remove(point, "sweep");
        char label[512] = "";
        size_t rest = r, used = 0;
        for (size_t k = n_keys; k-- > 0;) { /* the last key varies fastest */
            size_t i = rest % len[k];
            rest /= len[k];
            if (cfg_set(point, cfg_key_at(sweep, k), cfg_at(cfg_at(sweep, k), i), err) != MPSL_OK) {
                status = 1;
            }
        }
        for (size_t k = 0; k < n_keys; k++) {
            size_t stride = 1;
            for (size_t j = k + 1; j < n_keys; j++) {
                stride *= len[j];
            }
            const cfg_node *v = cfg_at(cfg_at(sweep, k), (r / stride) % len[k]);
            const cfg_node *plugin = cfg_node_type(v) == CFG_MAP ? cfg_get(v, "plugin") : NULL;
            const char *text = cfg_node_type(v) == CFG_SCALAR ? cfg_scalar(v)
                               : plugin && cfg_node_type(plugin) == CFG_SCALAR ? cfg_scalar(plugin)
                                                                               : "...";
            used += (size_t)snprintf(label + used, used < sizeof label ? sizeof label - used : 0,
                                     "%s%s=%s", k ? ", " : "", cfg_key_at(sweep, k), text);
        }
        if (status != 0) {
            cfg_free(point);
            break;
        }
        if (rank == 0) {
            fprintf(stderr, "sweep %zu/%zu: %s\n", r + 1, total, label);
        }
        /* Under an MPI launcher every rank runs the points one after another in its own
         * process (MPI is started once per process, so no child may start it again). */
        status = mpi_job ? run_one(point, exp_path, exp_dir, db_arg, 0, opt, &done[r], err)
                         : run_supervised(point, exp_path, exp_dir, db_arg, 0, opt, &done[r], err);
        if (status != 0) {
            mpsl_err_prefix(err, "sweep point %zu/%zu (%s)", r + 1, total, label);
        }
    }
    cfg_free(root);
    /* Whatever ran is compared, even when the sweep stopped early (by rank 0 alone). */
    size_t ran = 0;
    while (done && ran < total && done[ran].run_id) {
        ran++;
    }
    if (ran > 0 && rank == 0) {
        char **argv = calloc(ran + 4, sizeof *argv);
        char (*ids)[24] = calloc(ran, sizeof *ids);
        if (argv && ids) {
            int argc = 0;
            argv[argc++] = "compare";
            for (size_t i = 0; i < ran; i++) {
                snprintf(ids[i], sizeof ids[i], "%lld", (long long)done[i].run_id);
                argv[argc++] = ids[i];
            }
            argv[argc++] = "--db";
            argv[argc++] = done[0].db;
            fflush(stderr);
            cmd_compare(argc, argv);
        }
        free(argv);
        free(ids);
    }
    free(done);
    return status;
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
    int status = 1;
    if (root) {
        const cfg_node *sweep = cfg_get(root, "sweep");
        if (sweep) {
            status = run_sweep(root, exp_path, exp_dir, db_arg, &opt, &err);
        } else if (transport_mpi_launched()) { /* MPI is started in this process, not a child */
            status = run_one(root, exp_path, exp_dir, db_arg, from_run != NULL, &opt, NULL, &err);
        } else {
            status = run_supervised(root, exp_path, exp_dir, db_arg, from_run != NULL, &opt,
                                    NULL, &err);
        }
    }
    if (status != 0 && err.msg[0]) {
        fprintf(stderr, "mpsl run: %s\n", err.msg);
    }
    free(exp_path);
    free(exp_dir);
    transport_mpi_stop(); /* with the other ranks, when the run went over MPI */
    return status;
}
