/* groups.h: runs grouped into configurations, for statistics over repeats (seeds) in
 * `mpsl compare` and the HTML report. By default two runs are repeats of one configuration
 * when their resolved configs are equal but for seed, name and output (and they ran the same
 * method on the same dataset); with group_by, when they have equal values of every listed key. */
#ifndef MPSL_RESULTS_GROUPS_H
#define MPSL_RESULTS_GROUPS_H

#include <stddef.h>
#include <stdint.h>

#include "mpsl/plugin.h"

typedef struct run_group {
    char *label;  /* what tells the group apart: "strategy.plugin=fedprox, strategy.mu=0.01" */
    char *key;    /* equal for runs of one group, different between groups */
    int64_t *ids; /* its runs, in the order they were given */
    size_t n;
} run_group;

/* Group runs ids[0..n) (a repeated id counts once). group_by: NULL or "" for the default
 * grouping; else comma-separated keys, each a column of the run_params view (strategy, lr,
 * alpha, mu, ...) or a dotted config key (data.partition.alpha, looked up in the run's config
 * as json_extract(config_json, '$.'||key) would). Groups come in the order their first run
 * was given. Labels: with group_by "key=value, key=value" ("(unset)" where a run lacks it);
 * by default the config keys in which the group differs from the others, or, when none does,
 * the first run's name without its swept seed.
 * MPSL_ERR_INVALID with a message for an unknown key (listing the run_params columns), a
 * dotted key no run has (naming it), or a run that does not exist; MPSL_ERR_IO on a read
 * error. *out is malloc'd: free with groups_free. */
struct sqlite3;
int groups_make(struct sqlite3 *db, const int64_t *ids, size_t n, const char *group_by,
                run_group **out, size_t *n_out, mpsl_error *err);
void groups_free(run_group *g, size_t n);

#endif
