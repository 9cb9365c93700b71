/* cmd_compare.c: `mpsl compare RUN...`: runs side by side: final and best test metric, final
 * loss, bytes per client each way, FLOPs per party, wall time and peak memory; optionally how
 * long, how many bytes and how much link time each took to reach a target. Runs that repeat
 * one configuration (seeds; core/results/groups.c) are summarised per group as mean ± sample
 * standard deviation with a Student-t 95% interval (core/util/stats.c). */
#include <getopt.h>
#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config/config.h"
#include "report/report.h"
#include "results/groups.h"
#include "results/store.h"
#include "table.h"
#include "util/stats.h"
#include "util/util.h"

#define MAX_METRICS_LISTED 64

static const char compare_usage[] =
    "usage: mpsl compare RUN... [--sweep ID|last] [--db PATH] [--format table|csv|json]\n"
    "                    [--metric NAME] [--group-by KEYS] [--target VALUE]\n"
    "                    [--link-mbps UP[,DOWN]]\n"
    "Put runs side by side. --metric picks the test metric (default test_acc; one that no\n"
    "selected run recorded is refused); its best is the maximum, or the minimum for a name\n"
    "containing 'loss' or 'error'. --sweep adds the runs of a sweep (its id, or 'last' for\n"
    "the newest sweep).\n"
    "Runs that repeat one configuration (equal configs but for seed, name and output), or\n"
    "with --group-by KEYS equal values of the comma-separated KEYS (run_params columns such\n"
    "as strategy, lr, alpha, or dotted config keys such as data.partition.alpha), form a\n"
    "group; when a group has two runs or more, or with --group-by, each group is summarised:\n"
    "mean ± sample sd, n, and the 95% interval (Student's t). --target VALUE adds the epochs,\n"
    "seconds (summed epoch_seconds), bytes per client (up + down), estimated link time per\n"
    "client and, for runs with a network model, simulated time (summed sim_epoch_seconds)\n"
    "until the metric first reaches VALUE (>= it, or <= for a loss or error); the link\n"
    "is --link-mbps UP,DOWN in Mbit/s (default 10,50; one value for both). In table format\n"
    "each run or group is a column; in csv and json each is a row.\n";

/* What a per-run column becomes in a group's summary. */
typedef enum role {
    ROLE_ID,     /* the run id: the group lists them */
    ROLE_NAME,   /* the run name: the group's label replaces it */
    ROLE_TEXT,   /* its distinct values */
    ROLE_SEED,   /* the seeds, listed */
    ROLE_STATS,  /* mean ± sd, n, 95% interval (the interval shown in text for metrics only) */
    ROLE_METRIC, /* a test metric: as ROLE_STATS, with its interval in text too */
} role;

typedef struct compare_column {
    table_column col;
    role role;
} compare_column;

/* %s: MAX or MIN for the best value; %s: the loss column unless the metric is that loss. */
static const char compare_sql_fmt[] =
    "SELECT s.id, s.name, s.method, s.dataset, s.n_clients, s.seed, s.sweep_id, s.status,"
    " s.epochs,"
    " (SELECT e.value FROM epoch_metrics e WHERE e.run_id = s.id AND e.name = ?2"
    "   ORDER BY e.epoch DESC LIMIT 1),"
    " (SELECT %s(e.value) FROM epoch_metrics e WHERE e.run_id = s.id AND e.name = ?2)"
    "%s, s.bytes_up_per_client, s.bytes_down_per_client, s.client_flops,"
    " s.client_flops_per_client, s.server_flops, s.wall_seconds, s.peak_rss_bytes,"
    " t.server_compute_seconds, t.server_wait_seconds, t.client_compute_seconds,"
    " t.client_wait_seconds, (SELECT transport || ' x' || n_ranks FROM runs WHERE id = s.id) "
    "FROM run_summary s JOIN run_times t ON t.run_id = s.id WHERE s.id = ?1";

/* Per epoch of a run, in order: the metric, its seconds, and the bytes each way. Epochs
 * without the metric (not evaluated) still count their time and bytes. */
static const char target_sql[] =
    "WITH ep(epoch) AS (SELECT epoch FROM epoch_metrics WHERE run_id = ?1"
    "                   UNION SELECT epoch FROM comm WHERE run_id = ?1)"
    " SELECT ep.epoch,"
    "  (SELECT value FROM epoch_metrics WHERE run_id = ?1 AND epoch = ep.epoch AND name = ?2),"
    "  (SELECT value FROM epoch_metrics WHERE run_id = ?1 AND epoch = ep.epoch"
    "     AND name = 'epoch_seconds'),"
    "  (SELECT SUM(bytes) FROM comm WHERE run_id = ?1 AND epoch = ep.epoch AND direction = 'up'),"
    "  (SELECT SUM(bytes) FROM comm WHERE run_id = ?1 AND epoch = ep.epoch"
    "     AND direction = 'down'),"
    "  (SELECT COALESCE(n_clients, (SELECT COUNT(DISTINCT client) FROM comm WHERE run_id = ?1))"
    "     FROM runs WHERE id = ?1),"
    "  (SELECT value FROM epoch_metrics WHERE run_id = ?1 AND epoch = ep.epoch"
    "     AND name = 'sim_epoch_seconds')"
    " FROM ep ORDER BY ep.epoch";

#define N_TARGET 5
static const char *const target_names[N_TARGET] = {
    "epochs_to_target", "seconds_to_target", "bytes_per_client_to_target",
    "est_comm_seconds_to_target", "sim_seconds_to_target"};
static const table_kind target_kinds[N_TARGET] = {TABLE_INT, TABLE_SECONDS, TABLE_BYTES,
                                                  TABLE_SECONDS, TABLE_SECONDS};

typedef struct compare_opts {
    const char *db, *metric, *group_by, *sweep;
    table_format format;
    int metric_given, has_target;
    double target;
    report_link link;           /* --link-mbps: the link model of est_comm_seconds */
} compare_opts;

/* A cell's text for d (table_real_exact); NULL for NaN (no value). */
static const char *number_text(double d, char *buf, size_t n)
{
    if (isnan(d)) {
        return NULL;
    }
    table_real_exact(d, buf, n);
    return buf;
}

/* ---- runs: which, and one row of figures per run */

/* The runs of a sweep ("last": the newest run's sweep), appended to *ids. */
static int add_sweep_runs(sqlite3 *h, const char *db, const char *sweep, long long **ids,
                          int *n)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(h, strcmp(sweep, "last") == 0
        ? "SELECT id FROM runs WHERE sweep_id = (SELECT sweep_id FROM runs WHERE sweep_id IS NOT"
          " NULL ORDER BY id DESC LIMIT 1) ORDER BY id"
        : "SELECT id FROM runs WHERE sweep_id = ?1 ORDER BY id", -1, &st, NULL);
    if (rc == SQLITE_OK && strcmp(sweep, "last") != 0) {
        sqlite3_bind_text(st, 1, sweep, -1, SQLITE_STATIC);
    }
    int before = *n;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        long long *more = realloc(*ids, sizeof *more * (size_t)(*n + 1));
        if (!more) {
            rc = SQLITE_NOMEM;
            break;
        }
        *ids = more;
        (*ids)[(*n)++] = sqlite3_column_int64(st, 0);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "mpsl compare: reading the runs of sweep '%s' in %s: %s\n", sweep, db,
                rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(h));
        return 1;
    }
    if (*n == before) {
        if (strcmp(sweep, "last") == 0) {
            fprintf(stderr, "mpsl compare: --sweep last: no run in %s belongs to a sweep\n", db);
        } else {
            fprintf(stderr, "mpsl compare: --sweep: no runs of sweep '%s' in %s (`mpsl query "
                            "\"SELECT DISTINCT sweep_id FROM runs\"` lists them)\n", sweep, db);
        }
        return 1;
    }
    return 0;
}

/* Refuse a --metric that no selected run recorded, listing those they did. 0, or exit 2. */
static int check_metric(sqlite3 *h, const char *db, const long long *ids, int n,
                        const char *metric)
{
    sqlite3_stmt *st = NULL;
    const char *names[MAX_METRICS_LISTED];
    char *owned[MAX_METRICS_LISTED];
    int n_names = 0, found = 0;
    int rc = sqlite3_prepare_v2(h, "SELECT DISTINCT name FROM epoch_metrics WHERE run_id = ?1",
                                -1, &st, NULL);
    for (int i = 0; rc == SQLITE_OK && i < n && !found; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ids[i]);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            const char *name = (const char *)sqlite3_column_text(st, 0);
            found |= strcmp(name, metric) == 0;
            int seen = 0;
            for (int j = 0; j < n_names && !seen; j++) {
                seen = strcmp(names[j], name) == 0;
            }
            if (!seen && n_names < MAX_METRICS_LISTED && (owned[n_names] = mpsl_strdup(name))) {
                names[n_names] = owned[n_names];
                n_names++;
            }
        }
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    sqlite3_finalize(st);
    int status = 0;
    if (rc != SQLITE_OK) {
        fprintf(stderr, "mpsl compare: reading %s: %s\n", db, sqlite3_errmsg(h));
        status = 1;
    } else if (!found) {
        const char *near = cfg_did_you_mean(metric, names, (size_t)n_names);
        fprintf(stderr, "mpsl compare: --metric %s: no selected run recorded a metric '%s'%s%s%s;"
                        " they recorded: ", metric, metric, near ? " (did you mean '" : "",
                near ? near : "", near ? "'?)" : "");
        for (int j = 0; j < n_names; j++) {
            fprintf(stderr, "%s%s", j ? ", " : "", names[j]);
        }
        fputs(n_names ? "\n" : "no metrics at all\n", stderr);
        status = 2;
    }
    for (int j = 0; j < n_names; j++) {
        free(owned[j]);
    }
    return status;
}

/* A run's way to the target: epochs, seconds, bytes per client and link seconds per client
 * up to and including the first epoch whose metric reaches it; NaN when it never does. */
static int target_figures(sqlite3_stmt *st, long long id, const compare_opts *o, int minimize,
                          double out[N_TARGET])
{
    for (int i = 0; i < N_TARGET; i++) {
        out[i] = NAN;
    }
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, o->metric, -1, SQLITE_STATIC);
    double seconds = 0, up = 0, down = 0, sim = 0;
    int epochs = 0, rc, simulated = 1; /* every epoch so far has its simulated time */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        epochs++;
        seconds += sqlite3_column_double(st, 2); /* NULL reads as 0 */
        up += sqlite3_column_double(st, 3);
        down += sqlite3_column_double(st, 4);
        simulated = simulated && sqlite3_column_type(st, 6) != SQLITE_NULL;
        sim += sqlite3_column_double(st, 6);
        if (sqlite3_column_type(st, 1) == SQLITE_NULL) {
            continue;
        }
        double v = sqlite3_column_double(st, 1);
        if (minimize ? v <= o->target : v >= o->target) {
            double clients = sqlite3_column_double(st, 5);
            double per = clients > 0 ? 1.0 / clients : 0.0; /* no clients: no traffic */
            out[0] = epochs;
            out[1] = seconds;
            out[2] = (up + down) * per;
            out[3] = report_link_seconds(&o->link, up * per, down * per);
            out[4] = simulated ? sim : NAN; /* only runs with a network model */
            rc = SQLITE_DONE;
            break;
        }
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The columns of the per-run table, in the order compare_sql_fmt selects them, then the
 * target's. *n receives their count. Names point into final_name/best_name. */
static int run_columns(compare_column *cols, const compare_opts *o, const char *final_name,
                       const char *best_name)
{
    const compare_column all[] = {
        {{"id", TABLE_INT}, ROLE_ID},
        {{"name", TABLE_TEXT}, ROLE_NAME},
        {{"method", TABLE_TEXT}, ROLE_TEXT},
        {{"dataset", TABLE_TEXT}, ROLE_TEXT},
        {{"n_clients", TABLE_INT}, ROLE_TEXT},
        {{"seed", TABLE_INT}, ROLE_SEED},
        {{"sweep", TABLE_TEXT}, ROLE_TEXT},
        {{"status", TABLE_TEXT}, ROLE_TEXT},
        {{"epochs", TABLE_INT}, ROLE_STATS},
        {{final_name, TABLE_REAL}, ROLE_METRIC},
        {{best_name, TABLE_REAL}, ROLE_METRIC},
        {{"final_test_loss", TABLE_REAL}, ROLE_METRIC},
        {{"bytes_up_per_client", TABLE_BYTES}, ROLE_STATS},
        {{"bytes_down_per_client", TABLE_BYTES}, ROLE_STATS},
        {{"client_flops", TABLE_FLOPS}, ROLE_STATS},
        {{"client_flops_per_client", TABLE_FLOPS}, ROLE_STATS},
        {{"server_flops", TABLE_FLOPS}, ROLE_STATS},
        {{"wall_seconds", TABLE_SECONDS}, ROLE_STATS},
        {{"peak_rss_bytes", TABLE_BYTES}, ROLE_STATS},
        /* measured time per party: the server's, and each client's mean (its role's time) */
        {{"server_compute_seconds", TABLE_SECONDS}, ROLE_STATS},
        {{"server_wait_seconds", TABLE_SECONDS}, ROLE_STATS},
        {{"client_compute_seconds", TABLE_SECONDS}, ROLE_STATS},
        {{"client_wait_seconds", TABLE_SECONDS}, ROLE_STATS},
        {{"transport", TABLE_TEXT}, ROLE_TEXT},
    };
    int n = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        /* with --metric test_loss the loss is already there: no fixed column */
        if (all[i].col.name != final_name && strcmp(all[i].col.name, "final_test_loss") == 0 &&
            strcmp(o->metric, "test_loss") == 0) {
            continue;
        }
        cols[n++] = all[i];
    }
    for (int i = 0; o->has_target && i < N_TARGET; i++) {
        cols[n++] = (compare_column){{target_names[i], target_kinds[i]}, ROLE_STATS};
    }
    return n;
}

/* One row per run (in the order given) with every figure; the target's columns computed. */
static int fill_runs(sqlite3 *h, const compare_opts *o, const long long *ids, int nruns,
                     table *t, int first_target_col)
{
    int minimize = report_metric_lower_better(o->metric);
    char sql[sizeof compare_sql_fmt + 32];
    snprintf(sql, sizeof sql, compare_sql_fmt, minimize ? "MIN" : "MAX",
             strcmp(o->metric, "test_loss") != 0 ? ", s.final_test_loss" : "");
    sqlite3_stmt *st = NULL, *tst = NULL;
    int rc = sqlite3_prepare_v2(h, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && o->has_target) {
        rc = sqlite3_prepare_v2(h, target_sql, -1, &tst, NULL);
    }
    int status = 0;
    for (int i = 0; rc == SQLITE_OK && i < nruns; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ids[i]);
        sqlite3_bind_text(st, 2, o->metric, -1, SQLITE_STATIC);
        int before = table_rows(t);
        rc = table_add_stmt_rows(t, st);
        if (rc == SQLITE_OK && table_rows(t) == before) {
            fprintf(stderr, "mpsl compare: no run %lld in %s\n", ids[i], o->db);
            status = 1;
            break;
        }
        double fig[N_TARGET];
        if (rc == SQLITE_OK && o->has_target &&
            (rc = target_figures(tst, ids[i], o, minimize, fig)) == SQLITE_OK) {
            for (int k = 0; k < N_TARGET; k++) {
                char buf[40];
                if (table_set(t, before, first_target_col + k,
                              number_text(fig[k], buf, sizeof buf)) != 0) {
                    rc = SQLITE_NOMEM;
                }
            }
        }
    }
    if (rc != SQLITE_OK) {
        fprintf(stderr, "mpsl compare: reading %s: %s\n", o->db,
                rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errmsg(h));
        status = 1;
    }
    sqlite3_finalize(st);
    sqlite3_finalize(tst);
    return status;
}

/* ---- groups: one summary per group */

/* A growing list of strings for the summary's column names, freed together. */
typedef struct name_list {
    char **v;
    int n, cap;
} name_list;

static const char *keep(name_list *ns, char *s)
{
    if (!s) {
        return NULL;
    }
    if (ns->n == ns->cap) {
        int cap = ns->cap ? 2 * ns->cap : 32;
        char **v = realloc(ns->v, sizeof *v * (size_t)cap);
        if (!v) {
            free(s);
            return NULL;
        }
        ns->v = v;
        ns->cap = cap;
    }
    return ns->v[ns->n++] = s;
}

static void names_free(name_list *ns)
{
    for (int i = 0; i < ns->n; i++) {
        free(ns->v[i]);
    }
    free(ns->v);
}

/* The per-run row of a run id. */
static int row_of(const table *t, int64_t id)
{
    for (int r = 0; r < table_rows(t); r++) {
        const char *v = table_get(t, r, 0);
        if (v && strtoll(v, NULL, 10) == id) {
            return r;
        }
    }
    return -1;
}

/* The per-run rows of a group's runs (malloc'd), looked up once for all its cells. */
static int *group_rows(const table *t, const run_group *g)
{
    int *rows = malloc(sizeof *rows * (g->n ? g->n : 1));
    for (size_t i = 0; rows && i < g->n; i++) {
        rows[i] = row_of(t, g->ids[i]);
    }
    return rows;
}

/* A numeric column over a group's runs (their rows[0..nr)): the values that are there. */
static stats_summary column_stats(const table *t, const int *rows, size_t nr, int col)
{
    double *v = malloc(sizeof *v * (nr ? nr : 1));
    size_t n = 0;
    for (size_t i = 0; v && i < nr; i++) {
        const char *cell = table_get(t, rows[i], col);
        if (cell) {
            v[n++] = strtod(cell, NULL);
        }
    }
    stats_summary s = stats_summarise(v, n);
    free(v);
    return s;
}

/* A text column over a group's runs (their rows[0..nr)): "a" when all agree, else
 * "a x2, b x1" (NULL: "-").
 * seeds: every value, comma-separated, or as a JSON array when json is set. */
static char *column_values(const table *t, const int *rows, size_t nr, int col, int list,
                           int json)
{
    size_t cap = 64, used = 0;
    char *out = malloc(cap);
    const char **seen = calloc(nr ? nr : 1, sizeof *seen);
    size_t *count = calloc(nr ? nr : 1, sizeof *count);
    size_t n_seen = 0;
    for (size_t i = 0; out && seen && count && i < nr; i++) {
        const char *v = table_get(t, rows[i], col);
        size_t j = 0;
        while (!list && j < n_seen && !(v ? seen[j] && !strcmp(seen[j], v) : !seen[j])) {
            j++;
        }
        if (list || j == n_seen) {
            seen[n_seen] = v;
            count[n_seen++] = 0;
            j = n_seen - 1;
        }
        count[j]++;
    }
    if (out) {
        out[0] = '\0';
    }
    if (!list && n_seen == 1 && !seen[0]) { /* no run has a value */
        free(out);
        out = NULL;
    }
    for (size_t j = 0; out && seen && count && j < n_seen; j++) {
        const char *v = seen[j] ? seen[j] : json ? "null" : "-";
        char tail[32] = "";
        if (!list && n_seen > 1) {
            snprintf(tail, sizeof tail, " x%zu", count[j]);
        }
        size_t need = used + strlen(v) + strlen(tail) + 8;
        if (need > cap) {
            cap = 2 * need;
            char *o = realloc(out, cap);
            if (!o) {
                free(out);
                out = NULL;
                break;
            }
            out = o;
        }
        int quote = json && seen[j] && strspn(v, "-0123456789") != strlen(v);
        used += (size_t)sprintf(out + used, "%s%s%s%s%s", j ? ", " : json ? "[" : "",
                                quote ? "\"" : "", v, quote ? "\"" : "", tail);
    }
    if (out && json) {
        char *o = realloc(out, used + 2);
        if (o) {
            strcpy(o + used, n_seen ? "]" : "[]");
        } else {
            free(out);
        }
        out = o;
    }
    free(seen);
    free(count);
    return out;
}

/* "0.8123 ± 0.0123" in the column's units; "0.8123 (n=2)" when fewer runs than the group's
 * have the figure; NULL when none has. */
static char *mean_sd_text(table_kind kind, stats_summary s, size_t group_n)
{
    if (s.n == 0) {
        return NULL;
    }
    table_kind k = kind == TABLE_INT ? TABLE_REAL : kind; /* a mean of integers is not one */
    char num[40], buf[128], mean[128], sd[128], tail[32] = "";
    snprintf(mean, sizeof mean, "%s", table_human(k, number_text(s.mean, num, sizeof num), buf,
                                                   sizeof buf));
    if (s.n < group_n) {
        snprintf(tail, sizeof tail, " (n=%zu)", s.n);
    }
    if (s.n < 2) {
        return mpsl_strfmt("%s%s", mean, tail);
    }
    snprintf(sd, sizeof sd, "%s", table_human(k, number_text(s.sd, num, sizeof num), buf,
                                               sizeof buf));
    return mpsl_strfmt("%s ± %s%s", mean, sd, tail);
}

/* "[0.78, 0.84]": the 95% interval of the mean; NULL with fewer than two values. */
static char *interval_text(table_kind kind, stats_summary s)
{
    if (s.n < 2 || isnan(s.ci95)) {
        return NULL;
    }
    table_kind k = kind == TABLE_INT ? TABLE_REAL : kind;
    char num[40], buf[128], lo[128], hi[128];
    snprintf(lo, sizeof lo, "%s", table_human(k, number_text(s.mean - s.ci95, num, sizeof num),
                                               buf, sizeof buf));
    snprintf(hi, sizeof hi, "%s", table_human(k, number_text(s.mean + s.ci95, num, sizeof num),
                                               buf, sizeof buf));
    return mpsl_strfmt("[%s, %s]", lo, hi);
}

/* Set a cell from a malloc'd string (taken); NULL stays NULL. -1 when out of memory. */
static int set_owned(table *t, int row, int col, char *s)
{
    int rc = table_set(t, row, col, s);
    free(s);
    return rc;
}

/* The group summary as text: a column per group, a row per figure. */
static table *groups_text(const table *runs, const compare_column *cols, int ncols,
                          const run_group *g, size_t ng, int first_target_col, name_list *ns)
{
    table_column *gc = calloc((size_t)ncols * 2 + 4, sizeof *gc);
    int *src = calloc((size_t)ncols * 2 + 4, sizeof *src); /* per-run column, or -1 */
    enum { GC_GROUP = -2, GC_RUNS = -3, GC_N = -4, GC_REACHED = -5 };
    int n = 0;
    table *t = NULL;
    if (!gc || !src) {
        goto out;
    }
    gc[n] = (table_column){"group", TABLE_TEXT}, src[n++] = GC_GROUP;
    gc[n] = (table_column){"runs", TABLE_TEXT}, src[n++] = GC_RUNS;
    gc[n] = (table_column){"n", TABLE_TEXT}, src[n++] = GC_N;
    for (int c = 0; c < ncols; c++) {
        if (cols[c].role == ROLE_ID || cols[c].role == ROLE_NAME) {
            continue;
        }
        if (c == first_target_col) {
            gc[n] = (table_column){"target_reached", TABLE_TEXT}, src[n++] = GC_REACHED;
        }
        gc[n] = (table_column){cols[c].role == ROLE_SEED ? "seeds" : cols[c].col.name,
                               TABLE_TEXT};
        src[n++] = c;
        if (cols[c].role == ROLE_METRIC) {
            const char *name = keep(ns, mpsl_strfmt("%s 95%% CI", cols[c].col.name));
            if (!name) {
                goto out;
            }
            gc[n] = (table_column){name, TABLE_TEXT}, src[n++] = -100 - c;
        }
    }
    t = table_create(gc, n);
    for (size_t k = 0; t && k < ng; k++) {
        int *rows = group_rows(runs, &g[k]);
        int row = table_add_row(t);
        int bad = row < 0 || !rows;
        stats_summary s = {0};
        int stats_col = -1; /* the column s summarises */
        for (int j = 0; !bad && j < n; j++) {
            char *cell = NULL;
            int c = src[j] <= -100 ? -100 - src[j] : src[j];
            if (src[j] == GC_GROUP) {
                cell = mpsl_strdup(g[k].label);
            } else if (src[j] == GC_RUNS) {
                cell = column_values(runs, rows, g[k].n, 0, 1, 0);
            } else if (src[j] == GC_N) {
                cell = mpsl_strfmt("%zu", g[k].n);
            } else if (src[j] == GC_REACHED) {
                cell = mpsl_strfmt("%zu/%zu", column_stats(runs, rows, g[k].n,
                                                           first_target_col).n, g[k].n);
            } else if (cols[c].role == ROLE_TEXT || cols[c].role == ROLE_SEED) {
                cell = column_values(runs, rows, g[k].n, c, cols[c].role == ROLE_SEED, 0);
            } else {
                /* a metric's interval follows its mean: one summary for both */
                if (c != stats_col) {
                    s = column_stats(runs, rows, g[k].n, c);
                    stats_col = c;
                }
                int interval = src[j] <= -100;
                cell = interval ? interval_text(cols[c].col.kind, s)
                                : mean_sd_text(cols[c].col.kind, s, g[k].n);
                /* NULL is no value: an interval of fewer than two runs, a mean of none */
                bad = !cell && s.n >= (interval ? 2u : 1u) && !(interval && isnan(s.ci95));
            }
            bad = bad || set_owned(t, row, j, cell) != 0;
            if (c >= first_target_col && first_target_col >= 0 && src[j] >= 0) {
                table_set_null_text(t, j, "not reached");
            }
        }
        free(rows);
        if (bad) {
            table_destroy(t);
            t = NULL;
        }
    }
out:
    free(gc);
    free(src);
    return t;
}

/* The group summary for csv and json: a row per group; per figure _mean, _sd, _ci95, _n. */
static table *groups_fields(const table *runs, const compare_column *cols, int ncols,
                            const run_group *g, size_t ng, int first_target_col, name_list *ns)
{
    table_column *gc = calloc((size_t)ncols * 4 + 4, sizeof *gc);
    int *src = calloc((size_t)ncols * 4 + 4, sizeof *src);
    int *part = calloc((size_t)ncols * 4 + 4, sizeof *part); /* 0 mean, 1 sd, 2 ci95, 3 n */
    enum { GC_GROUP = -2, GC_RUNS = -3, GC_N = -4, GC_REACHED = -5 };
    static const char *const suffix[4] = {"mean", "sd", "ci95", "n"};
    int n = 0;
    table *t = NULL;
    if (!gc || !src || !part) {
        goto out;
    }
    gc[n] = (table_column){"group", TABLE_TEXT}, src[n++] = GC_GROUP;
    gc[n] = (table_column){"runs", TABLE_JSON_RAW}, src[n++] = GC_RUNS;
    gc[n] = (table_column){"n", TABLE_INT}, src[n++] = GC_N;
    for (int c = 0; c < ncols; c++) {
        role r = cols[c].role;
        if (r == ROLE_ID || r == ROLE_NAME) {
            continue;
        }
        if (c == first_target_col) {
            gc[n] = (table_column){"target_reached", TABLE_INT}, src[n++] = GC_REACHED;
        }
        if (r == ROLE_TEXT || r == ROLE_SEED) {
            gc[n] = (table_column){r == ROLE_SEED ? "seeds" : cols[c].col.name,
                                   r == ROLE_SEED ? TABLE_JSON_RAW : TABLE_TEXT};
            src[n++] = c;
            continue;
        }
        for (int p = 0; p < 4; p++) {
            const char *name = keep(ns, mpsl_strfmt("%s_%s", cols[c].col.name, suffix[p]));
            if (!name) {
                goto out;
            }
            gc[n] = (table_column){name, p == 3 ? TABLE_INT : TABLE_REAL};
            part[n] = p;
            src[n++] = c;
        }
    }
    t = table_create(gc, n);
    for (size_t k = 0; t && k < ng; k++) {
        int *rows = group_rows(runs, &g[k]);
        int row = table_add_row(t);
        int bad = row < 0 || !rows;
        stats_summary s = {0};
        int stats_col = -1; /* the column s summarises */
        for (int j = 0; !bad && j < n; j++) {
            char *cell = NULL;
            char num[40];
            int c = src[j];
            if (c == GC_GROUP) {
                cell = mpsl_strdup(g[k].label);
            } else if (c == GC_RUNS) {
                cell = column_values(runs, rows, g[k].n, 0, 1, 1);
            } else if (c == GC_N) {
                cell = mpsl_strfmt("%zu", g[k].n);
            } else if (c == GC_REACHED) {
                cell = mpsl_strfmt("%zu", column_stats(runs, rows, g[k].n, first_target_col).n);
            } else if (cols[c].role == ROLE_TEXT || cols[c].role == ROLE_SEED) {
                cell = column_values(runs, rows, g[k].n, c, cols[c].role == ROLE_SEED,
                                     cols[c].role == ROLE_SEED);
            } else {
                /* a figure's _mean, _sd, _ci95 and _n follow each other: one summary */
                if (c != stats_col) {
                    s = column_stats(runs, rows, g[k].n, c);
                    stats_col = c;
                }
                double v = part[j] == 0 ? s.mean : part[j] == 1 ? s.sd : s.ci95;
                const char *text = part[j] == 3 ? mpsl_strfmt("%zu", s.n)
                                                : number_text(v, num, sizeof num);
                cell = part[j] == 3 ? (char *)text : text ? mpsl_strdup(text) : NULL;
                bad = text && !cell;
            }
            bad = bad || set_owned(t, row, j, cell) != 0;
        }
        free(rows);
        if (bad) {
            table_destroy(t);
            t = NULL;
        }
    }
out:
    free(gc);
    free(src);
    free(part);
    return t;
}

/* ---- the verb */

static int parse_options(int argc, char **argv, compare_opts *o)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'd'},
        {"format", required_argument, NULL, 'f'},
        {"metric", required_argument, NULL, 'm'},
        {"group-by", required_argument, NULL, 'g'},
        {"target", required_argument, NULL, 't'},
        {"link-mbps", required_argument, NULL, 'l'},
        {"sweep", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 0;
    opterr = 0;
    int c;
    char *end = NULL;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': o->db = optarg; break;
        case 'f':
            if (table_format_parse(optarg, &o->format) != 0) {
                fprintf(stderr, "mpsl compare: unknown format '%s' (table, csv or json)\n",
                        optarg);
                return 2;
            }
            break;
        case 'm':
            if (!*optarg) {
                fprintf(stderr, "mpsl compare: --metric wants a metric name\n");
                return 2;
            }
            o->metric = optarg;
            o->metric_given = 1;
            break;
        case 'g':
            if (!*optarg) {
                fprintf(stderr, "mpsl compare: --group-by wants comma-separated keys "
                                "(e.g. strategy,alpha)\n");
                return 2;
            }
            o->group_by = optarg;
            break;
        case 't':
            o->target = strtod(optarg, &end);
            if (end == optarg || *end || !isfinite(o->target)) {
                fprintf(stderr, "mpsl compare: --target '%s' is not a number (the metric's "
                                "value to reach, e.g. 0.8)\n", optarg);
                return 2;
            }
            o->has_target = 1;
            break;
        case 'l':
            if (report_link_parse(optarg, &o->link) != 0) {
                fprintf(stderr, "mpsl compare: --link-mbps '%s': expected UP or UP,DOWN in "
                                "Mbit/s, positive numbers (e.g. 10,50)\n", optarg);
                return 2;
            }
            break;
        case 's':
            if (!*optarg) {
                fprintf(stderr, "mpsl compare: --sweep wants a sweep id or 'last'\n");
                return 2;
            }
            o->sweep = optarg;
            break;
        case 'h': fputs(compare_usage, stdout); return -1;
        case ':':
            fprintf(stderr, "mpsl compare: option '%s' needs a value\n%s", argv[optind - 1],
                    compare_usage);
            return 2;
        default:
            fprintf(stderr, "mpsl compare: unknown option '%s'\n%s", argv[optind - 1],
                    compare_usage);
            return 2;
        }
    }
    return 0;
}

/* The text table's note on what the target rows mean. */
static void print_target_note(const compare_opts *o)
{
    int minimize = report_metric_lower_better(o->metric);
    printf("target: %s %s %g; est. comm time at %g Mbit/s up, %g Mbit/s down per client\n",
           o->metric, minimize ? "<=" : ">=", o->target, o->link.up_mbps, o->link.down_mbps);
}

int cmd_compare(int argc, char **argv)
{
    compare_opts o = {.db = cli_default_db(), .metric = "test_acc",
                      .format = TABLE_FORMAT_TABLE, .link = {REPORT_LINK_UP_MBPS, REPORT_LINK_DOWN_MBPS}};
    int status = parse_options(argc, argv, &o);
    if (status != 0) {
        return status < 0 ? 0 : status;
    }
    int nruns = argc - optind;
    if (nruns < 1 && !o.sweep) {
        fprintf(stderr, "mpsl compare: which runs? (ids from `mpsl runs`, or --sweep ID)\n%s",
                compare_usage);
        return 2;
    }
    long long *ids = calloc(nruns > 0 ? (size_t)nruns : 1, sizeof *ids);
    if (!ids) {
        fputs("mpsl compare: out of memory\n", stderr);
        return 1;
    }
    for (int i = 0; i < nruns; i++) {
        if (cli_parse_run_id(argv[optind + i], &ids[i]) != 0) {
            fprintf(stderr, "mpsl compare: '%s' is not a run id (a positive number from "
                            "`mpsl runs`)\n", argv[optind + i]);
            free(ids);
            return 2;
        }
    }

    mpsl_error err = {{0}};
    store *s = NULL;
    if (store_open(o.db, STORE_READ_ONLY, &s, &err) != MPSL_OK) {
        fprintf(stderr, "mpsl compare: %s\n", err.msg);
        free(ids);
        return 1;
    }
    sqlite3 *h = store_db(s);
    if (o.sweep) {
        status = add_sweep_runs(h, o.db, o.sweep, &ids, &nruns);
    }

    char final_name[160], best_name[160];
    snprintf(final_name, sizeof final_name, "final_%s", o.metric);
    snprintf(best_name, sizeof best_name, "best_%s", o.metric);
    compare_column cols[32];
    int ncols = run_columns(cols, &o, final_name, best_name);
    int first_target_col = o.has_target ? ncols - N_TARGET : -1;
    table_column plain[32];
    for (int c = 0; c < ncols; c++) {
        plain[c] = cols[c].col;
    }
    table *t = status == 0 ? table_create(plain, ncols) : NULL;
    if (status == 0 && !t) {
        fputs("mpsl compare: out of memory\n", stderr);
        status = 1;
    }
    for (int c = first_target_col; t && c >= 0 && c < ncols; c++) {
        table_set_null_text(t, c, "not reached");
    }
    if (status == 0) {
        status = fill_runs(h, &o, ids, nruns, t, first_target_col);
    }
    if (status == 0 && o.metric_given) {
        status = check_metric(h, o.db, ids, nruns, o.metric);
    }

    run_group *groups = NULL;
    size_t ng = 0;
    if (status == 0) {
        int64_t *ids64 = malloc(sizeof *ids64 * (size_t)nruns);
        int rc = ids64 ? MPSL_OK : MPSL_ERR_NOMEM;
        for (int i = 0; ids64 && i < nruns; i++) {
            ids64[i] = ids[i];
        }
        if (rc == MPSL_OK) {
            rc = groups_make(h, ids64, (size_t)nruns, o.group_by, &groups, &ng, &err);
        }
        free(ids64);
        if (rc != MPSL_OK) {
            /* an unknown or absent --group-by key is a usage error */
            fprintf(stderr, "mpsl compare: %s%s\n", o.group_by ? "--" : "",
                    rc == MPSL_ERR_NOMEM ? "out of memory" : err.msg);
            status = rc == MPSL_ERR_INVALID ? 2 : 1;
        }
    }
    int grouped = 0;
    for (size_t k = 0; k < ng; k++) {
        grouped |= groups[k].n >= 2;
    }
    grouped |= o.group_by != NULL;

    /* Grouped: the summary of each group in place of the runs. */
    name_list ns = {0};
    table *gt = NULL;
    if (status == 0 && grouped) {
        gt = o.format == TABLE_FORMAT_TABLE
                 ? groups_text(t, cols, ncols, groups, ng, first_target_col, &ns)
                 : groups_fields(t, cols, ncols, groups, ng, first_target_col, &ns);
        if (!gt) {
            fputs("mpsl compare: out of memory\n", stderr);
            status = 1;
        }
    }
    if (status == 0 && o.format == TABLE_FORMAT_TABLE) {
        if (o.has_target) {
            print_target_note(&o);
        }
        table_print_transposed(gt ? gt : t, stdout);
    } else if (status == 0) {
        table_print(gt ? gt : t, o.format, stdout);
    }
    table_destroy(gt);
    names_free(&ns);
    groups_free(groups, ng);
    table_destroy(t);
    store_close(s);
    free(ids);
    return status;
}
