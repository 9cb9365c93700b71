/* flatten.c: a run's resolved config as dotted key = value pairs (flatten.h), for comparing
 * configs key by key. jansson parses the JSON; numbers are written back in the shortest form
 * that reads as the same double, so "0.01" stays "0.01". */
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "flatten.h"
#include "util/util.h"

typedef struct pair_list {
    config_pair *v;
    size_t n, cap;
    int failed;
} pair_list;

static void add(pair_list *p, const char *key, const char *value)
{
    if (p->failed) {
        return;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        config_pair *v = realloc(p->v, cap * sizeof *v);
        if (!v) {
            p->failed = 1;
            return;
        }
        p->v = v;
        p->cap = cap;
    }
    char *k = mpsl_strdup(key), *val = mpsl_strdup(value);
    if (!k || !val) {
        free(k);
        free(val);
        p->failed = 1;
        return;
    }
    p->v[p->n].key = k;
    p->v[p->n].value = val;
    p->n++;
}

/* The shortest %g form that reads back as x: 0.1 rather than 0.10000000000000001. */
static void shortest_real(double x, char *buf, size_t size)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, size, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) {
            return;
        }
    }
}

static void leaf_text(const json_t *v, char *buf, size_t size)
{
    switch (json_typeof(v)) {
    case JSON_INTEGER: snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: shortest_real(json_real_value(v), buf, size); break;
    case JSON_TRUE: snprintf(buf, size, "true"); break;
    case JSON_FALSE: snprintf(buf, size, "false"); break;
    case JSON_NULL: snprintf(buf, size, "null"); break;
    case JSON_OBJECT: snprintf(buf, size, "{}"); break; /* only reached when empty */
    case JSON_ARRAY: snprintf(buf, size, "[]"); break;
    case JSON_STRING: buf[0] = '\0'; break; /* the caller uses the string itself */
    }
}

static void walk(pair_list *p, const json_t *v, const char *path)
{
    if (json_is_object(v) && json_object_size(v) > 0) {
        const char *k;
        json_t *child;
        json_object_foreach((json_t *)v, k, child) {
            char *sub = *path ? mpsl_strfmt("%s.%s", path, k) : mpsl_strdup(k);
            if (!sub) {
                p->failed = 1;
                return;
            }
            walk(p, child, sub);
            free(sub);
        }
    } else if (json_is_array(v) && json_array_size(v) > 0) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            char *sub = mpsl_strfmt("%s[%zu]", path, i);
            if (!sub) {
                p->failed = 1;
                return;
            }
            walk(p, json_array_get(v, i), sub);
            free(sub);
        }
    } else if (json_is_string(v)) {
        add(p, path, json_string_value(v));
    } else {
        char buf[64];
        leaf_text(v, buf, sizeof buf);
        add(p, path, buf);
    }
}

int config_flatten(const char *config_json, config_pair **out, size_t *n, mpsl_error *err)
{
    *out = NULL;
    *n = 0;
    json_error_t jerr;
    json_t *root = json_loads(config_json ? config_json : "", 0, &jerr);
    if (!root && strstr(jerr.text, "too big")) {
        /* a seed above 2^63: read every integer as a double instead */
        root = json_loads(config_json, JSON_DECODE_INT_AS_REAL, &jerr);
    }
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return mpsl_errs(err, MPSL_ERR_INVALID, "stored config is not a JSON object%s%s",
                         root ? "" : ": ", root ? "" : jerr.text);
    }
    pair_list p = {0};
    walk(&p, root, "");
    json_decref(root);
    if (p.failed) {
        config_pairs_free(p.v, p.n);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory flattening a config");
    }
    *out = p.v;
    *n = p.n;
    return MPSL_OK;
}

void config_pairs_free(config_pair *pairs, size_t n)
{
    for (size_t i = 0; pairs && i < n; i++) {
        free(pairs[i].key);
        free(pairs[i].value);
    }
    free(pairs);
}

const char *config_pairs_get(const config_pair *pairs, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(pairs[i].key, key) == 0) {
            return pairs[i].value;
        }
    }
    return NULL;
}

int config_of_run(sqlite3 *db, long long id, char **json, mpsl_error *err)
{
    *json = NULL;
    /* config_json exists from schema 4 on; an older file opened read-only lacks it */
    sqlite3_stmt *st = NULL;
    int version = 0;
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        version = sqlite3_column_int(st, 0);
    }
    sqlite3_finalize(st);
    st = NULL;
    rc = sqlite3_prepare_v2(db, version >= 4 ? "SELECT config_json, config_yaml FROM runs WHERE id = ?1"
                                             : "SELECT NULL, config_yaml FROM runs WHERE id = ?1",
                            -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        rc = sqlite3_step(st);
    }
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(st);
        return mpsl_errs(err, MPSL_ERR_INVALID, "no run %lld in the database", id);
    }
    if (rc != SQLITE_ROW) {
        int status = mpsl_errs(err, MPSL_ERR_IO, "reading run %lld's config: %s", id,
                               sqlite3_errmsg(db));
        sqlite3_finalize(st);
        return status;
    }
    const char *stored = (const char *)sqlite3_column_text(st, 0);
    const char *yaml = (const char *)sqlite3_column_text(st, 1);
    int status = MPSL_OK;
    if (stored) {
        *json = mpsl_strdup(stored);
        status = *json ? MPSL_OK : mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
    } else if (yaml) {
        mpsl_error ignored = {{0}};
        cfg_node *root = cfg_parse_string(yaml, "stored config", &ignored);
        /* a YAML that no longer parses counts as no config, as schema 4's upgrade treats it */
        *json = root ? cfg_to_json(root) : NULL;
        if (root && !*json) {
            status = mpsl_errs(err, MPSL_ERR_NOMEM, "out of memory");
        }
        cfg_free(root);
    }
    sqlite3_finalize(st);
    return status;
}
