/* groups.c: runs grouped into configurations (groups.h). Configs are compared as flattened
 * dotted pairs (flatten.h), so the order keys were written in does not matter; a group's
 * label is computed from the pairs in which the groups differ. */
#include <ctype.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "flatten.h"
#include "groups.h"
#include "util/util.h"

#define LABEL_MAX_KEYS 6  /* a label names at most this many differing keys, then "+N more" */
#define GROUP_BY_MAX_KEYS 16

/* run_params columns that read the config, with the config key each reads: a run whose
 * config_json is NULL (recorded before mpsl wrote it) gets the value from its converted YAML. */
static const struct { const char *column, *key; } param_keys[] = {
    {"clients", "data.clients"},           {"partition", "data.partition.scheme"},
    {"alpha", "data.partition.alpha"},     {"mu", "strategy.mu"},
    {"fraction", "strategy.fraction"},     {"local_epochs", "strategy.local_epochs"},
    {"optimizer", "train.optimizer.name"}, {"lr", "train.optimizer.lr"},
    {"batch_size", "train.batch_size"},    {"epochs", "train.epochs"},
    {"encoder", "model.encoder.plugin"},   {"depth", "model.encoder.depth"},
    {"heads", "model.encoder.heads"},      {"fusion", "model.fusion"},
};

typedef struct member {
    int64_t id;
    char *name, *method, *dataset;
    config_pair *cfg; /* flattened config; NULL when the run stored none */
    size_t n_cfg;
    char *key;        /* equal for members of one group */
} member;

/* A growing string; on allocation failure it stays failed and the caller reports it. */
typedef struct sbuf {
    char *s;
    size_t n, cap;
    int failed;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...)
{
    if (b->failed) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (len < 0) {
        b->failed = 1;
        return;
    }
    if (b->n + (size_t)len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->n + (size_t)len + 1) {
            cap *= 2;
        }
        char *s = realloc(b->s, cap);
        if (!s) {
            b->failed = 1;
            return;
        }
        b->s = s;
        b->cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(b->s + b->n, (size_t)len + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)len;
}

/* The finished string (malloc'd; "" when empty), or NULL when an append failed. */
static char *sb_take(sbuf *b)
{
    if (b->failed) {
        free(b->s);
        return NULL;
    }
    return b->s ? b->s : mpsl_strdup("");
}

/* Keys that differ between repeats of one configuration by design. */
static int ignored_key(const char *key)
{
    if (strcmp(key, "seed") == 0 || strcmp(key, "name") == 0) {
        return 1;
    }
    return strncmp(key, "output", 6) == 0 && (key[6] == '\0' || key[6] == '.' || key[6] == '[');
}

static int cmp_pair_key(const void *a, const void *b)
{
    return strcmp((*(const config_pair *const *)a)->key, (*(const config_pair *const *)b)->key);
}

/* The default grouping's key: method, dataset and the sorted config pairs but the ignored. */
static char *config_key(const member *m)
{
    sbuf b = {0};
    sb_add(&b, "method=%s; dataset=%s", m->method ? m->method : "", m->dataset ? m->dataset : "");
    if (!m->cfg) {
        sb_add(&b, "; run=%lld", (long long)m->id); /* no config: a group of its own */
        return sb_take(&b);
    }
    const config_pair **sorted = malloc((m->n_cfg ? m->n_cfg : 1) * sizeof *sorted);
    if (!sorted) {
        free(b.s);
        return NULL;
    }
    for (size_t i = 0; i < m->n_cfg; i++) {
        sorted[i] = &m->cfg[i];
    }
    qsort(sorted, m->n_cfg, sizeof *sorted, cmp_pair_key);
    for (size_t i = 0; i < m->n_cfg; i++) {
        if (!ignored_key(sorted[i]->key)) {
            sb_add(&b, "; %s=%s", sorted[i]->key, sorted[i]->value);
        }
    }
    free(sorted);
    return sb_take(&b);
}

/* A dotted key's value in a member's config: the leaf's value, "{sub=v, ...}" when the key
 * names an object or array, NULL when the config lacks it. *oom set on allocation failure. */
static char *dotted_value(const member *m, const char *key, int *oom)
{
    const char *leaf = config_pairs_get(m->cfg, m->n_cfg, key);
    if (leaf) {
        char *v = mpsl_strdup(leaf);
        *oom |= !v;
        return v;
    }
    /* the leaves under the key, sorted, so that the order they were written in is no matter */
    size_t kl = strlen(key), found = 0;
    const config_pair **under = malloc((m->n_cfg ? m->n_cfg : 1) * sizeof *under);
    if (!under) {
        *oom = 1;
        return NULL;
    }
    for (size_t i = 0; i < m->n_cfg; i++) {
        const char *k = m->cfg[i].key;
        if (strncmp(k, key, kl) == 0 && (k[kl] == '.' || k[kl] == '[')) {
            under[found++] = &m->cfg[i];
        }
    }
    qsort(under, found, sizeof *under, cmp_pair_key);
    sbuf b = {0};
    for (size_t i = 0; i < found; i++) {
        const char *k = under[i]->key;
        sb_add(&b, "%s%s=%s", i ? ", " : "{", k + kl + (k[kl] == '.'), under[i]->value);
    }
    free(under);
    if (!found) {
        return NULL;
    }
    sb_add(&b, "}");
    char *v = sb_take(&b);
    *oom |= !v;
    return v;
}

/* The names of run_params's columns (malloc'd strings), for checking and listing keys. */
static int param_columns(sqlite3 *db, char ***cols, size_t *n, mpsl_error *err)
{
    *cols = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('run_params')", -1, &st,
                                NULL);
    size_t cap = 0;
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        if (*n == cap) {
            cap = cap ? 2 * cap : 32;
            char **c = realloc(*cols, cap * sizeof *c);
            if (!c) {
                rc = SQLITE_NOMEM;
                break;
            }
            *cols = c;
        }
        char *name = mpsl_strdup((const char *)sqlite3_column_text(st, 0));
        if (!name) {
            rc = SQLITE_NOMEM;
            break;
        }
        (*cols)[(*n)++] = name;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        return rc == SQLITE_NOMEM ? mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory")
                                  : mpsl_errs(err, MPSL_ERR_IO, "reading run_params: %s",
                                              sqlite3_errmsg(db));
    }
    return MPSL_OK;
}

static void free_strings(char **s, size_t n)
{
    for (size_t i = 0; s && i < n; i++) {
        free(s[i]);
    }
    free(s);
}

/* One run_params column of a run as text (malloc'd), or NULL when it is NULL. */
static int column_value(sqlite3 *db, const char *column, const member *m, char **out,
                        mpsl_error *err)
{
    *out = NULL;
    char *sql = mpsl_strfmt("SELECT \"%s\" FROM run_params WHERE run_id = ?1", column);
    sqlite3_stmt *st = NULL;
    int rc = sql ? sqlite3_prepare_v2(db, sql, -1, &st, NULL) : SQLITE_NOMEM;
    free(sql);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, m->id);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        rc = SQLITE_OK;
        if (v && !(*out = mpsl_strdup(v))) {
            rc = SQLITE_NOMEM;
        }
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) {
        return rc == SQLITE_NOMEM ? mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory")
                                  : mpsl_errs(err, MPSL_ERR_IO, "reading run_params.%s of run "
                                              "%lld: %s", column, (long long)m->id,
                                              sqlite3_errmsg(db));
    }
    for (size_t i = 0; !*out && i < sizeof param_keys / sizeof param_keys[0]; i++) {
        if (strcmp(param_keys[i].column, column) == 0) {
            int oom = 0;
            *out = dotted_value(m, param_keys[i].key, &oom);
            if (oom) {
                return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
            }
        }
    }
    return MPSL_OK;
}

/* Split group_by at commas into trimmed keys (pointers into buf). */
static int split_keys(char *buf, char **keys, size_t *n, mpsl_error *err)
{
    *n = 0;
    for (char *p = buf;;) {
        char *comma = strchr(p, ',');
        if (comma) {
            *comma = '\0';
        }
        while (isspace((unsigned char)*p)) {
            p++;
        }
        char *end = p + strlen(p);
        while (end > p && isspace((unsigned char)end[-1])) {
            *--end = '\0';
        }
        if (!*p) {
            return mpsl_errs(err, MPSL_ERR_INVALID, "group-by: an empty key (write keys "
                             "separated by single commas, e.g. strategy,alpha)");
        }
        if (*n == GROUP_BY_MAX_KEYS) {
            return mpsl_errs(err, MPSL_ERR_INVALID, "group-by: more than %d keys",
                             GROUP_BY_MAX_KEYS);
        }
        keys[(*n)++] = p;
        if (!comma) {
            return MPSL_OK;
        }
        p = comma + 1;
    }
}

/* Refusal of an unknown undotted key: the columns, a suggestion, and the dotted form. */
static int unknown_key(const char *key, char **cols, size_t n_cols, mpsl_error *err)
{
    sbuf b = {0};
    for (size_t i = 0; i < n_cols; i++) {
        sb_add(&b, "%s%s", i ? ", " : "", cols[i]);
    }
    const char *near = cfg_did_you_mean(key, (const char *const *)cols, n_cols);
    int rc = mpsl_errs(err, MPSL_ERR_INVALID,
                       "group-by: unknown key '%s'%s%s%s; use a column of run_params (%s) or a "
                       "dotted config key such as strategy.plugin or data.partition.alpha",
                       key, near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "",
                       b.failed || !b.s ? "none" : b.s);
    free(b.s);
    return rc;
}

/* Refusal of a dotted key that no run's config has, with the nearest key some run has. */
static int missing_key(const char *key, const member *ms, size_t n, mpsl_error *err)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        total += ms[i].n_cfg;
    }
    const char **all = malloc((total ? total : 1) * sizeof *all);
    size_t k = 0;
    for (size_t i = 0; all && i < n; i++) {
        for (size_t j = 0; j < ms[i].n_cfg; j++) {
            all[k++] = ms[i].cfg[j].key;
        }
    }
    const char *near = all ? cfg_did_you_mean(key, all, k) : NULL;
    int rc = mpsl_errs(err, MPSL_ERR_INVALID,
                       "group-by: no selected run's config has the key '%s'%s%s%s", key,
                       near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
    free(all);
    return rc;
}

/* With group_by: each member's key "k=v, k=v", which is also its group's label. */
static int keys_by_values(sqlite3 *db, member *ms, size_t n, const char *group_by,
                          mpsl_error *err)
{
    char *buf = mpsl_strdup(group_by);
    char *keys[GROUP_BY_MAX_KEYS];
    size_t n_keys = 0, n_cols = 0;
    char **cols = NULL;
    if (!buf) {
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    int rc = split_keys(buf, keys, &n_keys, err);
    if (rc == MPSL_OK) {
        rc = param_columns(db, &cols, &n_cols, err);
    }
    /* every key is checked before any value is read, so the message names the first bad one */
    for (size_t k = 0; rc == MPSL_OK && k < n_keys; k++) {
        int is_column = 0;
        for (size_t c = 0; c < n_cols; c++) {
            is_column |= strcmp(cols[c], keys[k]) == 0;
        }
        if (!is_column && !strpbrk(keys[k], ".[")) {
            rc = unknown_key(keys[k], cols, n_cols, err);
        } else if (!is_column) {
            int any = 0, oom = 0;
            for (size_t i = 0; i < n && !any; i++) {
                char *v = dotted_value(&ms[i], keys[k], &oom);
                any = v != NULL;
                free(v);
            }
            rc = oom ? mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory")
                 : any ? MPSL_OK : missing_key(keys[k], ms, n, err);
        }
    }
    for (size_t i = 0; rc == MPSL_OK && i < n; i++) {
        sbuf b = {0};
        for (size_t k = 0; rc == MPSL_OK && k < n_keys; k++) {
            char *v = NULL;
            int oom = 0;
            if (strpbrk(keys[k], ".[")) {
                v = dotted_value(&ms[i], keys[k], &oom);
                rc = oom ? mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory") : MPSL_OK;
            } else {
                rc = column_value(db, keys[k], &ms[i], &v, err);
            }
            sb_add(&b, "%s%s=%s", k ? ", " : "", keys[k], v ? v : "(unset)");
            free(v);
        }
        ms[i].key = sb_take(&b);
        if (rc == MPSL_OK && !ms[i].key) {
            rc = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
    }
    free_strings(cols, n_cols);
    free(buf);
    return rc;
}

/* A run name without its swept seed: "exp/strategy=fedavg,seed=2" -> "exp/strategy=fedavg",
 * "exp/seed=2" -> "exp". */
static char *name_without_seed(const char *name)
{
    char *s = mpsl_strdup(name ? name : "");
    if (!s) {
        return NULL;
    }
    for (char *p = s; (p = strstr(p, "seed=")) != NULL; p++) {
        if (p != s && p[-1] != '/' && p[-1] != ',') {
            continue;
        }
        char *end = p + strcspn(p, ",");
        if (*end == ',') {
            memmove(p, end + 1, strlen(end + 1) + 1); /* "seed=2,x" -> "x" */
        } else if (p != s) {
            p[-1] = '\0'; /* ",seed=2" or "/seed=2" at the end */
        } else {
            *p = '\0';
        }
        break;
    }
    return s;
}

/* Default labels: the group's values of the distinguishing keys; a key the group's config
 * lacks is left out (the other groups' labels name it), unless nothing else is left. */
static char *config_label(const member *rep, char **keys, size_t n_keys)
{
    if (n_keys == 0 || !rep->cfg) { /* nothing tells it apart, or it has no config */
        return name_without_seed(rep->name);
    }
    sbuf b = {0};
    size_t shown = 0, set = 0;
    for (size_t k = 0; k < n_keys; k++) {
        set += config_pairs_get(rep->cfg, rep->n_cfg, keys[k]) != NULL;
    }
    for (size_t k = 0; k < n_keys; k++) {
        const char *v = config_pairs_get(rep->cfg, rep->n_cfg, keys[k]);
        if ((!v && set > 0) || shown == LABEL_MAX_KEYS) {
            continue;
        }
        sb_add(&b, "%s%s=%s", shown++ ? ", " : "", keys[k], v ? v : "(unset)");
    }
    if (set > LABEL_MAX_KEYS) {
        sb_add(&b, ", +%zu more", set - LABEL_MAX_KEYS);
    }
    return sb_take(&b);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* How many distinct strings sig[0..n) holds (sorted is scratch space for n pointers). */
static size_t distinct(char **sig, char **sorted, size_t n)
{
    memcpy(sorted, sig, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_str);
    size_t d = n > 0;
    for (size_t i = 1; i < n; i++) {
        d += strcmp(sorted[i - 1], sorted[i]) != 0;
    }
    return d;
}

/* The keys that tell the groups apart: in the order first seen in the groups' first runs,
 * each key that tells more groups apart than the keys before it did, until all are told
 * apart. So fedavg against fedprox with two values of mu is labelled by strategy.plugin and
 * strategy.mu, not by every default the two strategies' blocks resolved to. Each group's
 * values of the keys chosen so far are kept as one signature string ("\x1f" between
 * values, "\x1e" for a key the group lacks), so a candidate costs a sort of the groups. */
static int distinguishing_keys(const member *const *reps, size_t n_groups, char ***out,
                               size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    size_t total = 0;
    for (size_t g = 0; g < n_groups; g++) {
        total += reps[g]->n_cfg;
    }
    char **keys = malloc((total + 1) * sizeof *keys);
    char **sig = calloc(n_groups + 1, sizeof *sig), **cand = calloc(n_groups + 1, sizeof *cand);
    char **sorted = malloc((n_groups + 1) * sizeof *sorted);
    int rc = keys && sig && cand && sorted ? MPSL_OK : MPSL_ERR_NOMEM;
    for (size_t g = 0; rc == MPSL_OK && g < n_groups; g++) {
        if (!(sig[g] = mpsl_strdup(""))) {
            rc = MPSL_ERR_NOMEM;
        }
    }
    size_t n = 0, apart = rc == MPSL_OK ? distinct(sig, sorted, n_groups) : 0;
    for (size_t g = 0; rc == MPSL_OK && g < n_groups && apart < n_groups; g++) {
        for (size_t i = 0; rc == MPSL_OK && i < reps[g]->n_cfg && apart < n_groups; i++) {
            char *key = reps[g]->cfg[i].key; /* borrowed from the member's pairs */
            int seen = ignored_key(key);
            for (size_t j = 0; j < n && !seen; j++) {
                seen = strcmp(keys[j], key) == 0;
            }
            if (seen) {
                continue;
            }
            for (size_t h = 0; rc == MPSL_OK && h < n_groups; h++) {
                const char *v = config_pairs_get(reps[h]->cfg, reps[h]->n_cfg, key);
                free(cand[h]);
                cand[h] = mpsl_strfmt("%s\x1f%s", sig[h], v ? v : "\x1e");
                rc = cand[h] ? MPSL_OK : MPSL_ERR_NOMEM;
            }
            size_t more = rc == MPSL_OK ? distinct(cand, sorted, n_groups) : 0;
            if (more > apart) {
                char **t = sig;
                sig = cand;
                cand = t;
                apart = more;
                keys[n++] = key;
            }
        }
    }
    for (size_t g = 0; g < n_groups; g++) {
        free(sig ? sig[g] : NULL);
        free(cand ? cand[g] : NULL);
    }
    free(sig);
    free(cand);
    free(sorted);
    if (rc != MPSL_OK) {
        free(keys);
        return rc;
    }
    *out = keys;
    *n_out = n;
    return MPSL_OK;
}

static char *column_text(sqlite3_stmt *st, int col, int *oom)
{
    const char *v = (const char *)sqlite3_column_text(st, col);
    char *s = v ? mpsl_strdup(v) : NULL;
    *oom |= v && !s;
    return s;
}

/* Each member's name, method, dataset and flattened config. */
static int load_members(sqlite3 *db, member *ms, size_t n, mpsl_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT name, method, dataset FROM runs WHERE id = ?1", -1,
                                &st, NULL);
    if (rc != SQLITE_OK) {
        return mpsl_errs(err, MPSL_ERR_IO, "reading runs: %s", sqlite3_errmsg(db));
    }
    int status = MPSL_OK;
    for (size_t i = 0; status == MPSL_OK && i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_int64(st, 1, ms[i].id);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            status = mpsl_errs(err, MPSL_ERR_INVALID, "no run %lld in the database",
                               (long long)ms[i].id);
            break;
        }
        if (rc != SQLITE_ROW) {
            status = mpsl_errs(err, MPSL_ERR_IO, "reading run %lld: %s", (long long)ms[i].id,
                               sqlite3_errmsg(db));
            break;
        }
        int oom = 0;
        ms[i].name = column_text(st, 0, &oom);
        ms[i].method = column_text(st, 1, &oom);
        ms[i].dataset = column_text(st, 2, &oom);
        if (oom) {
            status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
            break;
        }
        char *json = NULL;
        status = config_of_run(db, ms[i].id, &json, err);
        if (status == MPSL_OK && json) {
            /* a stored config that is not a JSON object (never written so) counts as none:
             * the run forms a group of its own rather than failing the comparison */
            mpsl_error bad = {{0}};
            status = config_flatten(json, &ms[i].cfg, &ms[i].n_cfg, &bad);
            if (status == MPSL_ERR_INVALID) {
                status = MPSL_OK;
            } else if (status != MPSL_OK) {
                *err = bad;
            }
        }
        free(json);
    }
    sqlite3_finalize(st);
    return status;
}

static void free_members(member *ms, size_t n)
{
    for (size_t i = 0; ms && i < n; i++) {
        free(ms[i].name);
        free(ms[i].method);
        free(ms[i].dataset);
        free(ms[i].key);
        config_pairs_free(ms[i].cfg, ms[i].n_cfg);
    }
    free(ms);
}

int groups_make(sqlite3 *db, const int64_t *ids, size_t n, const char *group_by,
                run_group **out, size_t *n_out, mpsl_error *err)
{
    *out = NULL;
    *n_out = 0;
    member *ms = calloc(n ? n : 1, sizeof *ms);
    run_group *gs = calloc(n ? n : 1, sizeof *gs);
    const member **reps = calloc(n ? n : 1, sizeof *reps);
    if (!ms || !gs || !reps) {
        free(ms);
        free(gs);
        free(reps);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    size_t n_ms = 0;
    for (size_t i = 0; i < n; i++) { /* a run given twice counts once */
        int seen = 0;
        for (size_t j = 0; j < n_ms && !seen; j++) {
            seen = ms[j].id == ids[i];
        }
        if (!seen) {
            ms[n_ms++].id = ids[i];
        }
    }
    int by_values = group_by && *group_by;
    int rc = load_members(db, ms, n_ms, err);
    if (rc == MPSL_OK && by_values) {
        rc = keys_by_values(db, ms, n_ms, group_by, err);
    }
    for (size_t i = 0; rc == MPSL_OK && !by_values && i < n_ms; i++) {
        ms[i].key = config_key(&ms[i]);
        rc = ms[i].key ? MPSL_OK : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    /* groups in the order their first run came */
    size_t n_groups = 0;
    for (size_t i = 0; rc == MPSL_OK && i < n_ms; i++) {
        size_t g = 0;
        while (g < n_groups && strcmp(gs[g].key, ms[i].key) != 0) {
            g++;
        }
        if (g == n_groups) {
            reps[g] = &ms[i];
            gs[g].key = mpsl_strdup(ms[i].key);
            gs[g].ids = calloc(n_ms, sizeof *gs[g].ids);
            n_groups++;
            if (!gs[g].key || !gs[g].ids) {
                rc = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
                break;
            }
        }
        gs[g].ids[gs[g].n++] = ms[i].id;
    }
    char **diff = NULL;
    size_t n_diff = 0;
    if (rc == MPSL_OK && !by_values && distinguishing_keys(reps, n_groups, &diff, &n_diff) != MPSL_OK) {
        rc = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    for (size_t g = 0; rc == MPSL_OK && g < n_groups; g++) {
        gs[g].label = by_values ? mpsl_strdup(gs[g].key)
                                : config_label(reps[g], diff, n_diff);
        rc = gs[g].label ? MPSL_OK : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    }
    free(diff);
    free(reps);
    free_members(ms, n_ms);
    if (rc != MPSL_OK) {
        groups_free(gs, n_groups);
        return rc;
    }
    *out = gs;
    *n_out = n_groups;
    return MPSL_OK;
}

void groups_free(run_group *g, size_t n)
{
    for (size_t i = 0; g && i < n; i++) {
        free(g[i].label);
        free(g[i].key);
        free(g[i].ids);
    }
    free(g);
}
