/* sweep.c: `sweep:` in an experiment file. Each combination of values is a point, run as its
 * own supervised process (supervise.c), --jobs at a time; a point whose resolved config
 * already finished in the database is skipped (unless --rerun), so an interrupted sweep
 * picks up where it stopped. The first failure or a stop signal ends the sweep: no further
 * point starts, the running ones end (interrupted, when the signal reached them), and the
 * command exits with the first non-zero status. Whatever ran is then compared. Under an MPI
 * launcher every rank runs the points one after another in its own process (MPI is started
 * once per process, so no child may start it again). */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "results/store.h"
#include "run_cli.h"
#include "train/experiment.h"
#include "transport/transport.h"
#include "util/util.h"

#define MAX_SWEEP_KEYS 8
#define MAX_SWEEP_RUNS 1000

typedef struct sweep_point {
    cfg_node *cfg;              /* the experiment with this point's values, no sweep key */
    char label[512];            /* "strategy=mpsl, train.lr=0.001" */
} sweep_point;

/* Every combination of the sweep's values, the last key varying fastest. */
static int expand(const cfg_node *root, sweep_point **out, size_t *n_out, mpsl_error *err)
{
    const cfg_node *sweep = cfg_get(root, "sweep");
    char w[256];
    size_t n_keys = cfg_node_type(sweep) == CFG_MAP ? cfg_len(sweep) : 0;
    if (n_keys == 0 || n_keys > MAX_SWEEP_KEYS) {
        return mpsl_err(err, "%s: sweep must map 1 to %d dotted keys to lists of values "
                        "(e.g. strategy: [{plugin: mpsl}, {plugin: fedavg}])",
                        cfg_where(sweep, w, sizeof w), MAX_SWEEP_KEYS);
    }
    size_t total = 1, len[MAX_SWEEP_KEYS];
    for (size_t k = 0; k < n_keys; k++) {
        const cfg_node *values = cfg_at(sweep, k);
        len[k] = cfg_node_type(values) == CFG_SEQ ? cfg_len(values) : 0;
        if (len[k] == 0) {
            return mpsl_err(err, "%s: sweep.%s must be a non-empty list of values",
                            cfg_where(values, w, sizeof w), cfg_key_at(sweep, k));
        }
        total *= len[k];
        if (total > MAX_SWEEP_RUNS) {
            return mpsl_err(err, "%s: the sweep has more than %d combinations",
                            cfg_where(sweep, w, sizeof w), MAX_SWEEP_RUNS);
        }
    }
    sweep_point *pts = calloc(total, sizeof *pts);
    if (!pts) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    int rc = MPSL_OK;
    for (size_t r = 0; r < total && rc == MPSL_OK; r++) {
        pts[r].cfg = cfg_clone(root);
        if (!pts[r].cfg) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
            break;
        }
        cfg_remove(pts[r].cfg, "sweep");
        size_t used = 0;
        for (size_t k = 0; k < n_keys && rc == MPSL_OK; k++) {
            size_t stride = 1;
            for (size_t j = k + 1; j < n_keys; j++) {
                stride *= len[j];
            }
            const cfg_node *v = cfg_at(cfg_at(sweep, k), (r / stride) % len[k]);
            rc = cfg_set(pts[r].cfg, cfg_key_at(sweep, k), v, err);
            const cfg_node *plugin = cfg_node_type(v) == CFG_MAP ? cfg_get(v, "plugin") : NULL;
            const char *text = cfg_node_type(v) == CFG_SCALAR ? cfg_scalar(v)
                               : plugin && cfg_node_type(plugin) == CFG_SCALAR ? cfg_scalar(plugin)
                                                                               : "...";
            size_t room = used < sizeof pts[r].label ? sizeof pts[r].label - used : 0;
            used += (size_t)snprintf(pts[r].label + used, room, "%s%s=%s", k ? ", " : "",
                                     cfg_key_at(sweep, k), text);
        }
    }
    *out = pts;
    *n_out = total;
    return rc;
}

static void free_points(sweep_point *pts, size_t n)
{
    for (size_t i = 0; pts && i < n; i++) {
        cfg_free(pts[i].cfg);
    }
    free(pts);
}

/* The newest finished run whose resolved configuration is this point's, or 0. A point that
 * does not validate is never "finished": running it reports why. */
static int64_t finished_before(const sweep_point *pt, const char *exp_path, const char *exp_dir,
                               const char *db_arg, run_done *done)
{
    mpsl_error e = {{0}};
    cfg_node *c = cfg_clone(pt->cfg);
    if (!c || run_apply_db(c, db_arg, &e) != MPSL_OK) {
        cfg_free(c);
        return 0;
    }
    experiment ex;
    if (experiment_build(c, exp_path, exp_dir, &ex, &e) != MPSL_OK) {
        experiment_free(&ex);
        return 0;
    }
    char *yaml = cfg_to_yaml(ex.root);
    store *db = NULL;
    int64_t id = 0;
    if (yaml && store_open(ex.db_path, STORE_READ_ONLY, &db, &e) == MPSL_OK) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(store_db(db),
                               "SELECT id FROM runs WHERE status = 'finished' AND "
                               "config_yaml = ?1 ORDER BY id DESC LIMIT 1",
                               -1, &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, yaml, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW) {
                id = sqlite3_column_int64(st, 0);
            }
        }
        sqlite3_finalize(st);
        store_close(db);
        done->run_id = id;
        snprintf(done->db, sizeof done->db, "%s", ex.db_path);
    }
    free(yaml);
    experiment_free(&ex);
    return id;
}

/* Put the runs side by side (rank 0 only under MPI). */
static void compare_runs(const run_done *done, size_t total)
{
    size_t ran = 0;
    for (size_t i = 0; i < total; i++) {
        ran += done[i].run_id > 0;
    }
    if (ran == 0) {
        return;
    }
    char **argv = calloc(ran + 4, sizeof *argv);
    char (*ids)[24] = calloc(ran, sizeof *ids);
    if (argv && ids) {
        int argc = 0;
        const char *db = NULL;
        argv[argc++] = "compare";
        for (size_t i = 0, j = 0; i < total; i++) {
            if (done[i].run_id > 0) {
                snprintf(ids[j], sizeof ids[j], "%lld", (long long)done[i].run_id);
                argv[argc++] = ids[j++];
                db = db ? db : done[i].db;
            }
        }
        argv[argc++] = "--db";
        argv[argc++] = (char *)db;
        fflush(stderr);
        cmd_compare(argc, argv);
    }
    free(argv);
    free(ids);
}

/* Under MPI: every rank runs every point in turn. */
static int sweep_in_process(sweep_point *pts, size_t total, const char *exp_path,
                            const char *exp_dir, const char *db_arg, const run_options *opt,
                            run_done *done, mpsl_error *err)
{
    int rank = transport_launched_rank(), status = 0;
    for (size_t r = 0; r < total && status == 0; r++) {
        if (rank == 0) {
            fprintf(stderr, "sweep %zu/%zu: %s\n", r + 1, total, pts[r].label);
        }
        status = run_one(pts[r].cfg, exp_path, exp_dir, db_arg, 0, opt, &done[r], err);
        pts[r].cfg = NULL; /* run_one owns it */
        if (status != 0) {
            mpsl_err_prefix(err, "sweep point %zu/%zu (%s)", r + 1, total, pts[r].label);
        }
    }
    return status;
}

/* Supervised children, up to `jobs` at once. */
static int sweep_supervised(sweep_point *pts, size_t total, const char *exp_path,
                            const char *exp_dir, const char *db_arg, const run_options *opt,
                            const sweep_options *so, run_done *done, mpsl_error *err)
{
    int jobs = so->jobs < 1 ? 1 : so->jobs;
    supervised kids[SUPERVISE_MAX_CHILDREN] = {{0}};
    size_t point_of[SUPERVISE_MAX_CHILDREN] = {0};
    for (int i = 0; i < jobs; i++) {
        kids[i].progress = supervise_progress_new();
        if (!kids[i].progress) {
            for (int j = 0; j < i; j++) {
                supervise_progress_free(kids[j].progress);
            }
            return mpsl_err(err, "out of memory"), 1;
        }
    }
    int status = 0, running = 0, stop = 0;
    size_t next = 0;
    while (next < total || running > 0) {
        while (!stop && running < jobs && next < total) {
            size_t r = next++;
            if (!so->rerun && finished_before(&pts[r], exp_path, exp_dir, db_arg, &done[r])) {
                fprintf(stderr, "sweep %zu/%zu: %s: finished before as run %lld (skipped; "
                        "--rerun runs it again)\n", r + 1, total, pts[r].label,
                        (long long)done[r].run_id);
                continue;
            }
            done[r].run_id = 0;
            fprintf(stderr, "sweep %zu/%zu: %s\n", r + 1, total, pts[r].label);
            int slot = 0;
            while (kids[slot].pid) {
                slot++;
            }
            one_run o = {pts[r].cfg, exp_path, exp_dir, db_arg, 0, opt, NULL, err};
            int st = supervise_start(run_one_child, &o, &kids[slot], err);
            if (st != 0) {
                status = status ? status : st;
                stop = 1;
                break;
            }
            point_of[slot] = r;
            running++;
        }
        if (running == 0) {
            break;
        }
        int which = 0;
        mpsl_error e = {{0}};
        int st = supervise_wait_any(kids, jobs, &which, &e);
        running--;
        size_t r = point_of[which];
        done[r].run_id = kids[which].progress->run_id;
        snprintf(done[r].db, sizeof done[r].db, "%s", kids[which].progress->db_path);
        if (st != 0 && status == 0) {
            status = st;
            if (e.msg[0] && !kids[which].progress->run_id) {
                *err = e;
            } else {
                mpsl_err(err, "the run exited with status %d", st);
            }
            mpsl_err_prefix(err, "sweep point %zu/%zu (%s)", r + 1, total, pts[r].label);
        }
        stop = stop || st != 0 || supervise_stop_requested();
    }
    for (int i = 0; i < jobs; i++) {
        supervise_progress_free(kids[i].progress);
    }
    return status;
}

int run_sweep(cfg_node *root, const char *exp_path, const char *exp_dir, const char *db_arg,
              const run_options *opt, const sweep_options *so, mpsl_error *err)
{
    sweep_point *pts = NULL;
    size_t total = 0;
    int rc = expand(root, &pts, &total, err);
    cfg_free(root);
    run_done *done = rc == MPSL_OK ? calloc(total, sizeof *done) : NULL;
    if (rc != MPSL_OK || !done) {
        if (rc == MPSL_OK) {
            mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
        free_points(pts, total);
        return 1;
    }
    int mpi = transport_mpi_launched();
    int status = mpi ? sweep_in_process(pts, total, exp_path, exp_dir, db_arg, opt, done, err)
                     : sweep_supervised(pts, total, exp_path, exp_dir, db_arg, opt, so, done,
                                        err);
    /* Whatever ran (or had finished before) is compared, even when the sweep stopped early. */
    if (!mpi || transport_launched_rank() == 0) {
        compare_runs(done, total);
    }
    free(done);
    free_points(pts, total);
    return status;
}
