/* data.h: what reports and plots read from a results database (docs/results-schema.md):
 * runs chosen by id or by the filters of `mpsl runs`, each run's summary figures (those of
 * `mpsl compare`), per-epoch series, per-client values and class histograms. Reads only;
 * NULLs come back as NaN. */
#ifndef MPSL_REPORT_DATA_H
#define MPSL_REPORT_DATA_H

#include <stdint.h>

#include "mpsl/plugin.h"

struct sqlite3;

/* Filters as in `mpsl runs`: NULL/0 means "any". */
typedef struct report_filter {
    const char *status, *method, *dataset;
    const char *name;              /* a GLOB */
    const char *const *tags;       /* all must match */
    int ntags;
    int64_t limit;                 /* keep the newest N; <= 0: all */
} report_filter;

/* Ids of the runs that pass the filter, oldest first (malloc'd; *n may be 0). */
int report_select_runs(struct sqlite3 *db, const report_filter *f, int64_t **ids, int *n,
                       mpsl_error *err);

/* One run's summary: the figures `mpsl compare` shows. */
typedef struct report_run {
    int64_t id;
    char *name, *method, *dataset, *status, *started_at;
    int retrieval;     /* its task: 1 retrieval (recall_* figures, or a 'retrieval' head),
                          0 classification */
    int64_t n_clients, epochs;
    double final_metric, best_metric, final_test_loss;
    double bytes_up_per_client, bytes_down_per_client;
    double client_flops, client_flops_per_client, server_flops;
    double wall_seconds, peak_rss_bytes;
    /* measured time per party, summed over epochs: the server's role, and the mean client's
     * (NaN where the run recorded none) */
    double server_compute_s, server_wait_s, client_compute_s, client_wait_s;
} report_run;

/* Summaries of runs ids[0..n) in that order, for `metric` (its best is the minimum when the
 * name contains "loss" or "error"). A missing id is an MPSL_ERR_INVALID "no run N in PATH". */
int report_load_runs(struct sqlite3 *db, const char *db_path, const int64_t *ids, int n,
                     const char *metric, report_run **runs, mpsl_error *err);
void report_free_runs(report_run *runs, int n);

/* Run run_id's last value of the per-epoch figure `metric` and its best (the maximum, or the
 * minimum when lower_better); NaN when it has none. */
int report_final_best(struct sqlite3 *db, int64_t run_id, const char *metric, int lower_better,
                      double *final, double *best, mpsl_error *err);

/* The distinct names of per-epoch figures (step_metrics names when steps is 1) across runs
 * ids[0..n), in the order first seen: *names malloc'd (free with report_free_names). */
int report_metric_list(struct sqlite3 *db, const int64_t *ids, int n, int steps, char ***names,
                       int *count, mpsl_error *err);
void report_free_names(char **names, int n);

/* Per-client values of a client metric at the last epoch that has it (malloc'd; *n may be
 * 0; *epoch receives that epoch, or -1). */
int report_load_client_values(struct sqlite3 *db, int64_t run_id, const char *metric,
                              double **values, int *n, int64_t *epoch, mpsl_error *err);

/* Each client's class histogram: counts[client * n_classes + class] (malloc'd), with
 * n_clients and n_classes (0 when the run recorded no client data). */
int report_load_client_data(struct sqlite3 *db, int64_t run_id, double **counts,
                            int *n_clients, int *n_classes, mpsl_error *err);

/* The dataset's names of its classes as the run stored them (runs.class_names): *names
 * malloc'd (free with report_free_names), *n 0 when it stored none (a database from before
 * schema 4 has no such column: none either). */
int report_load_class_names(struct sqlite3 *db, int64_t run_id, char ***names, int *n,
                            mpsl_error *err);

#endif
