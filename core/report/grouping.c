/* grouping.c: the groups of a report: runs that differ only by seed (or share the values of
 * --group-by keys), found by groups_make for each task apart, so that a retrieval run never
 * shares a line with classification runs. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/report.h"
#include "results/groups.h"
#include "util/util.h"

void report_free_groups(report_group *g, int n)
{
    for (int i = 0; g && i < n; i++) {
        free(g[i].label);
        free(g[i].legend);
        free(g[i].members);
    }
    free(g);
}

/* A group's label as a category under bars, where room is short: dotted keys cut to their
 * last part ("strategy.plugin=fedprox, strategy.mu=0.01 (n=3)" -> "plugin=fedprox,
 * mu=0.01 (n=3)"). malloc'd. */
static char *short_label(const char *label)
{
    char *out = mpsl_strdup(label); /* the result is never longer */
    if (!out) {
        return NULL;
    }
    size_t o = 0;
    for (const char *p = label; *p;) {
        size_t len = strcspn(p, ","); /* one "key=value" part */
        const char *end = p + len, *from = p;
        while (from < end && *from == ' ') {
            out[o++] = *from++;
        }
        const char *eq = memchr(from, '=', (size_t)(end - from));
        size_t key = eq ? strcspn(from, " ") : 0;
        if (eq && from + key >= eq) { /* a key without spaces: cut to its last part */
            for (const char *q = from; q < eq; q++) {
                if (*q == '.') {
                    from = q + 1;
                }
            }
        }
        memcpy(out + o, from, (size_t)(end - from));
        o += (size_t)(end - from);
        p = end;
        if (*p == ',') {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return out;
}

/* The index in runs[0..n) of run id (every id comes from runs). */
static int run_index(const report_run *runs, int n, int64_t id)
{
    for (int i = 0; i < n; i++) {
        if (runs[i].id == id) {
            return i;
        }
    }
    return -1;
}

/* Append the groups of the runs of one task (0 classification, 1 retrieval, -1 both) to
 * *out: a group of groups_make whose runs have both tasks becomes two. */
static int group_task(sqlite3 *db, const report_run *runs, int n, int task,
                      const char *group_by, report_group *out, int *nout, mpsl_error *err)
{
    int64_t *ids = calloc((size_t)(n > 0 ? n : 1), sizeof *ids);
    if (!ids) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory grouping runs");
    }
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (task < 0 || runs[i].retrieval == task) {
            ids[k++] = runs[i].id;
        }
    }
    run_group *g = NULL;
    size_t ng = 0;
    int status = k ? groups_make(db, ids, k, group_by, &g, &ng, err) : MPSL_OK;
    for (int t = 0; t < 2; t++) {
        if (task >= 0 && t != task) {
            continue;
        }
        for (size_t i = 0; status == MPSL_OK && i < ng; i++) {
            report_group r = {.color = *nout, .retrieval = t};
            r.members = calloc(g[i].n ? g[i].n : 1, sizeof *r.members);
            for (size_t j = 0; r.members && j < g[i].n; j++) {
                int at = run_index(runs, n, g[i].ids[j]);
                if (at >= 0 && runs[at].retrieval == t) {
                    r.members[r.n++] = at;
                }
            }
            if (!r.members) {
                status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory grouping runs");
                break;
            }
            if (r.n == 0) {
                free(r.members);
                continue;
            }
            /* One run: its id tells it apart; several: how many the band is over. */
            char *brief = short_label(g[i].label);
            long long id = (long long)runs[r.members[0]].id;
            r.label = r.n == 1 ? mpsl_strfmt("#%lld %s", id, g[i].label)
                               : mpsl_strfmt("%s (n=%d)", g[i].label, r.n);
            r.legend = !brief ? NULL
                       : r.n == 1 ? mpsl_strfmt("#%lld %s", id, brief)
                                  : mpsl_strfmt("%s (n=%d)", brief, r.n);
            free(brief);
            out[(*nout)++] = r;
            if (!r.label || !r.legend) {
                status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory grouping runs");
            }
        }
    }
    groups_free(g, ng);
    free(ids);
    return status;
}

int report_make_groups(sqlite3 *db, const report_run *runs, int n, const char *group_by,
                       report_group **groups, int *ngroups, mpsl_error *err)
{
    *groups = NULL;
    *ngroups = 0;
    report_group *g = calloc((size_t)(n > 0 ? n : 1), sizeof *g);
    if (!g) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory grouping runs");
    }
    int ng = 0, status;
    if (group_by && *group_by) {
        /* The keys are the user's: asked of all runs at once (a key only one task's runs
         * have is still a key), and groups split by task. */
        status = group_task(db, runs, n, -1, group_by, g, &ng, err);
    } else {
        /* Each task apart, so that labels name what differs within it, not the whole
         * model and dataset that tell the tasks apart. */
        status = group_task(db, runs, n, 0, NULL, g, &ng, err);
        if (status == MPSL_OK) {
            status = group_task(db, runs, n, 1, NULL, g, &ng, err);
        }
    }
    if (status != MPSL_OK) {
        report_free_groups(g, ng);
        return status;
    }
    *groups = g;
    *ngroups = ng;
    return MPSL_OK;
}
