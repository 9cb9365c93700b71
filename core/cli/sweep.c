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
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "results/store.h"
#include "run_cli.h"
#include "train/experiment.h"
#include "transport/transport.h"
#include "util/util.h"

#define MAX_SWEEP_RUNS 1000


int run_set_string(cfg_node *root, const char *key, const char *text, mpsl_error *err)
{
    /* a one-key document with the text double-quoted: a string, whatever it looks like */
    size_t n = strlen(text);
    char *doc = malloc(4 * n + 8), *p = doc;
    if (!doc) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    p += sprintf(p, "v: \"");
    for (const unsigned char *t = (const unsigned char *)text; *t; t++) {
        if (*t == '"' || *t == '\\') {
            *p++ = '\\';
            *p++ = (char)*t;
        } else if (*t < 0x20) {
            p += sprintf(p, "\\x%02x", *t);
        } else {
            *p++ = (char)*t;
        }
    }
    strcpy(p, "\"\n");
    cfg_node *parsed = cfg_parse_string(doc, key, err);
    free(doc);
    int rc = parsed ? cfg_set(root, key, cfg_get(parsed, "v"), err) : MPSL_ERR_INVALID;
    cfg_free(parsed);
    return rc;
}

/* How a swept value reads in a label and a run name: a scalar as written; a plugin block by
 * its plugin and its other scalar keys, "fedprox(mu=0.01)"; anything else as JSON. */
static void value_text(const cfg_node *v, char *buf, size_t size)
{
    const cfg_node *plugin = cfg_node_type(v) == CFG_MAP ? cfg_get(v, "plugin") : NULL;
    if (cfg_node_type(v) == CFG_SCALAR) {
        snprintf(buf, size, "%s", cfg_scalar(v));
    } else if (plugin && cfg_node_type(plugin) == CFG_SCALAR) {
        size_t used = (size_t)snprintf(buf, size, "%s", cfg_scalar(plugin));
        int args = 0;
        for (size_t i = 0; i < cfg_len(v) && used < size; i++) {
            const cfg_node *x = cfg_at(v, i);
            if (strcmp(cfg_key_at(v, i), "plugin") == 0 || cfg_node_type(x) != CFG_SCALAR) {
                continue;
            }
            used += (size_t)snprintf(buf + used, size - used, "%s%s=%s", args++ ? "," : "(",
                                     cfg_key_at(v, i), cfg_scalar(x));
        }
        if (args && used < size) {
            snprintf(buf + used, size - used, ")");
        }
    } else {
        char *json = cfg_to_json(v);
        snprintf(buf, size, "%s", json ? json : "...");
        free(json);
    }
}

/* The point's run name: the experiment's name and the swept values, "quickstart/strategy=
 * fedprox(mu=0.01),seed=2" (each key by its last part), so that runs tell themselves apart in
 * `mpsl runs`, compare tables and report legends. */
static int name_point(sweep_point *pt, mpsl_error *err)
{
    const cfg_node *name = cfg_get(pt->cfg, "name");
    const char *base = name && cfg_node_type(name) == CFG_SCALAR ? cfg_scalar(name) : "run";
    char *text = mpsl_strfmt("%s/%s", base, pt->short_label);
    int rc = text ? run_set_string(pt->cfg, "name", text, err)
                  : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    free(text);
    return rc;
}

/* Every combination of the sweep's values, the last key varying fastest. */
int sweep_expand(const cfg_node *root, sweep_point **out, size_t *n_out, mpsl_error *err)
{
    const cfg_node *sweep = cfg_get(root, "sweep");
    char w[256];
    size_t n_keys = cfg_node_type(sweep) == CFG_MAP ? cfg_len(sweep) : 0;
    if (n_keys == 0 || n_keys > SWEEP_MAX_KEYS) {
        return mpsl_err(err, "%s: sweep must map 1 to %d dotted keys to lists of values "
                        "(e.g. strategy: [{plugin: mpsl}, {plugin: fedavg}])",
                        cfg_where(sweep, w, sizeof w), SWEEP_MAX_KEYS);
    }
    size_t total = 1, len[SWEEP_MAX_KEYS];
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
        size_t used = 0, short_used = 0;
        for (size_t k = 0; k < n_keys && rc == MPSL_OK; k++) {
            size_t stride = 1;
            for (size_t j = k + 1; j < n_keys; j++) {
                stride *= len[j];
            }
            const cfg_node *v = cfg_at(cfg_at(sweep, k), (r / stride) % len[k]);
            const char *key = cfg_key_at(sweep, k);
            rc = cfg_set(pts[r].cfg, key, v, err);
            char text[256];
            value_text(v, text, sizeof text);
            snprintf(pts[r].values[k], sizeof pts[r].values[k], "%s", text);
            snprintf(pts[r].keys[k], sizeof pts[r].keys[k], "%s", key);
            pts[r].n_keys = n_keys;
            size_t room = used < sizeof pts[r].label ? sizeof pts[r].label - used : 0;
            used += (size_t)snprintf(pts[r].label + used, room, "%s%s=%s", k ? ", " : "", key,
                                     text);
            const char *leaf = strrchr(key, '.');
            room = short_used < sizeof pts[r].short_label ? sizeof pts[r].short_label - short_used
                                                           : 0;
            short_used += (size_t)snprintf(pts[r].short_label + short_used, room, "%s%s=%s",
                                           k ? "," : "", leaf ? leaf + 1 : key, text);
            char *json = cfg_to_json(v);
            if (!json) {
                rc = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
                break;
            }
            char *both = mpsl_strfmt("%s%s%s\"%s\":%s", pts[r].point_json ? pts[r].point_json : "",
                                     pts[r].point_json ? "," : "", "", key, json);
            free(json);
            free(pts[r].point_json);
            pts[r].point_json = both;
            if (!both) {
                rc = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
            }
        }
        if (rc == MPSL_OK) {
            char *obj = mpsl_strfmt("{%s}", pts[r].point_json ? pts[r].point_json : "");
            free(pts[r].point_json);
            pts[r].point_json = obj;
            rc = obj ? name_point(&pts[r], err) : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
    }
    *out = pts;
    *n_out = total;
    return rc;
}

void sweep_free_points(sweep_point *pts, size_t n)
{
    for (size_t i = 0; pts && i < n; i++) {
        cfg_free(pts[i].cfg);
        free(pts[i].point_json);
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
        if (rank == 0 && !opt[r].quiet) {
            fprintf(stderr, "sweep %zu/%zu: %s\n", r + 1, total, pts[r].label);
        }
        status = run_one(pts[r].cfg, exp_path, exp_dir, db_arg, 0, &opt[r], &done[r], err);
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
                if (!opt[r].quiet) {
                    fprintf(stderr, "sweep %zu/%zu: %s: finished before as run %lld (skipped; "
                            "--rerun runs it again)\n", r + 1, total, pts[r].label,
                            (long long)done[r].run_id);
                }
                continue;
            }
            done[r].run_id = 0;
            if (!opt[r].quiet) {
                fprintf(stderr, "sweep %zu/%zu: %s\n", r + 1, total, pts[r].label);
            }
            int slot = 0;
            while (kids[slot].pid) {
                slot++;
            }
            one_run o = {pts[r].cfg, exp_path, exp_dir, db_arg, 0, &opt[r], NULL, err};
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

/* Does the point match KEY=VALUE? KEY is a swept key, whole or by its last part ("lr" for
 * train.optimizer.lr); VALUE is the value as the label shows it ("fedprox(mu=0.01)"), or
 * a plugin block's plugin alone ("fedprox"). */
static int point_matches(const sweep_point *pt, const char *key, const char *value)
{
    for (size_t k = 0; k < pt->n_keys; k++) {
        const char *leaf = strrchr(pt->keys[k], '.');
        if (strcmp(key, pt->keys[k]) != 0 && !(leaf && strcmp(key, leaf + 1) == 0)) {
            continue;
        }
        size_t n = strlen(value);
        const char *v = pt->values[k];
        return strcmp(v, value) == 0 || (strncmp(v, value, n) == 0 && v[n] == '(');
    }
    return -1; /* not a swept key */
}

/* Keep the points every --only KEY=VALUE matches; refuse a filter that names no swept key
 * or that no point matches, listing what would. */
static int filter_points(sweep_point *pts, size_t *total, const sweep_options *so,
                         mpsl_error *err)
{
    for (int f = 0; f < so->n_only; f++) {
        const char *eq = strchr(so->only[f], '=');
        if (!eq || eq == so->only[f]) {
            return mpsl_err(err, "--only %s: KEY=VALUE expected (a swept key and one of its "
                            "values, e.g. --only strategy=fedavg)", so->only[f]);
        }
        char key[128];
        snprintf(key, sizeof key, "%.*s", (int)(eq - so->only[f]), so->only[f]);
        size_t kept = 0;
        int known = 0;
        char values[512] = "";
        for (size_t r = 0; r < *total; r++) {
            int m = point_matches(&pts[r], key, eq + 1);
            known |= m >= 0;
            for (size_t k = 0; m >= 0 && k < pts[r].n_keys; k++) {
                const char *leaf = strrchr(pts[r].keys[k], '.');
                if ((!strcmp(key, pts[r].keys[k]) || (leaf && !strcmp(key, leaf + 1))) &&
                    !strstr(values, pts[r].values[k]) && strlen(values) < 400) {
                    snprintf(values + strlen(values), sizeof values - strlen(values), "%s%s",
                             values[0] ? ", " : "", pts[r].values[k]);
                }
            }
            if (m == 1) {
                sweep_point keep = pts[kept];
                pts[kept++] = pts[r];
                pts[r] = keep;
            }
        }
        if (!known) {
            char keys[512] = "";
            for (size_t k = 0; k < pts[0].n_keys && strlen(keys) < 400; k++) {
                snprintf(keys + strlen(keys), sizeof keys - strlen(keys), "%s%s",
                         k ? ", " : "", pts[0].keys[k]);
            }
            return mpsl_err(err, "--only %s: '%s' is not a swept key (the sweep varies %s)",
                            so->only[f], key, keys);
        }
        if (kept == 0) {
            return mpsl_err(err, "--only %s: no point of the sweep has %s=%s (its values: %s)",
                            so->only[f], key, eq + 1, values);
        }
        for (size_t r = kept; r < *total; r++) { /* the points left out */
            cfg_free(pts[r].cfg);
            free(pts[r].point_json);
            pts[r].cfg = NULL;
            pts[r].point_json = NULL;
        }
        *total = kept;
    }
    return MPSL_OK;
}

/* An id the points of this sweep share: its start time and a random tail, so that sweeps of
 * the same file, on other machines or merged later, stay apart. */
static void make_sweep_id(char *buf, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y%m%dT%H%M%SZ", &tm);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t mix = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    mix ^= (uint64_t)getpid() << 32;
    mix ^= mix >> 33;
    mix *= 0xff51afd7ed558ccdULL; /* a 64-bit finaliser: every bit of the input moves */
    mix ^= mix >> 33;
    snprintf(buf, size, "%s-%06llx", when, (unsigned long long)(mix & 0xffffff));
}

int run_sweep(cfg_node *root, const char *exp_path, const char *exp_dir, const char *db_arg,
              const run_options *opt, const sweep_options *so, mpsl_error *err)
{
    sweep_point *pts = NULL;
    size_t total = 0, expanded = 0;
    int rc = sweep_expand(root, &pts, &total, err);
    cfg_free(root);
    expanded = total;
    if (rc == MPSL_OK) {
        rc = filter_points(pts, &total, so, err);
    }
    run_done *done = rc == MPSL_OK ? calloc(total, sizeof *done) : NULL;
    run_options *point_opt = rc == MPSL_OK ? calloc(total, sizeof *point_opt) : NULL;
    if (rc != MPSL_OK || !done || !point_opt) {
        if (rc == MPSL_OK) {
            mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
        free(done);
        free(point_opt);
        sweep_free_points(pts, expanded);
        return 1;
    }
    char sweep_id[48];
    make_sweep_id(sweep_id, sizeof sweep_id);
    for (size_t r = 0; r < total; r++) {
        point_opt[r] = *opt;
        point_opt[r].sweep_id = sweep_id;
        point_opt[r].sweep_point = pts[r].point_json;
    }
    if (!opt->quiet && (!transport_mpi_launched() || transport_launched_rank() == 0)) {
        fprintf(stderr, "sweep %s: %zu point%s%s\n", sweep_id, total, total == 1 ? "" : "s",
                total < expanded ? " (--only)" : "");
    }
    int mpi = transport_mpi_launched();
    int status = mpi ? sweep_in_process(pts, total, exp_path, exp_dir, db_arg, point_opt, done,
                                        err)
                     : sweep_supervised(pts, total, exp_path, exp_dir, db_arg, point_opt, so,
                                        done, err);
    /* Whatever ran (or had finished before) is compared, even when the sweep stopped early. */
    if (!opt->quiet && (!mpi || transport_launched_rank() == 0)) {
        compare_runs(done, total);
    }
    free(done);
    free(point_opt);
    sweep_free_points(pts, expanded);
    return status;
}
