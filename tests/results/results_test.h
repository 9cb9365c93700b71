/* results_test.h: helpers the results tests share: scratch directories, raw SQL counts,
 * capturing a verb's stdout/stderr, and a minimal JSON validator. */
#ifndef MPSL_RESULTS_TEST_H
#define MPSL_RESULTS_TEST_H

#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "results/store.h"

/* A fresh directory under $TMPDIR (or /tmp); the path is static storage per call site. */
static inline char *rt_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *tmpl = NULL;
    if (asprintf(&tmpl, "%s/mpsl-results-XXXXXX", base && *base ? base : "/tmp") < 0) {
        return NULL;
    }
    if (!mkdtemp(tmpl)) {
        free(tmpl);
        return NULL;
    }
    return tmpl;
}

static inline char *rt_path(const char *dir, const char *name)
{
    char *p = NULL;
    return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

static inline void rt_rmtree(const char *dir)
{
    char *cmd = NULL;
    if (asprintf(&cmd, "rm -rf '%s'", dir) >= 0) {
        if (system(cmd) != 0) {
            fprintf(stderr, "could not remove %s\n", dir);
        }
    }
    free(cmd);
}

/* The integer a one-value query returns on a raw connection (-1 on error). */
static inline long long rt_query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        v = sqlite3_column_int64(st, 0);
    } else {
        fprintf(stderr, "query failed: %s: %s\n", sql, sqlite3_errmsg(db));
    }
    sqlite3_finalize(st);
    return v;
}

static inline long long rt_file_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    long long v = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK) {
        v = rt_query_int(db, sql);
    }
    sqlite3_close(db);
    return v;
}

static inline char *rt_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf) {
        buf[n] = '\0';
    }
    fclose(f);
    return buf;
}

/* Run a verb with stdout and stderr captured into *out and *err (caller frees). */
typedef int (*rt_verb)(int argc, char **argv);
static inline int rt_capture(const char *dir, rt_verb verb, char **out, char **err, int argc,
                             char **argv)
{
    char *po = rt_path(dir, "stdout.txt"), *pe = rt_path(dir, "stderr.txt");
    fflush(stdout);
    fflush(stderr);
    int save_out = dup(1), save_err = dup(2);
    int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fo, 1);
    dup2(fe, 2);
    close(fo);
    close(fe);
    /* getopt permutes argv: give the verb a copy so callers can reuse theirs. */
    char **copy = calloc((size_t)argc + 1, sizeof *copy);
    memcpy(copy, argv, sizeof *copy * (size_t)argc);
    int rc = verb(argc, copy);
    free(copy);
    fflush(stdout);
    fflush(stderr);
    dup2(save_out, 1);
    dup2(save_err, 2);
    close(save_out);
    close(save_err);
    *out = rt_read_file(po);
    *err = rt_read_file(pe);
    free(po);
    free(pe);
    return rc;
}

/* ---- minimal JSON validator: returns the end of one value, or NULL when invalid */
static const char *rt_json_value(const char *p);

static inline const char *rt_json_ws(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') {
        p++;
    }
    return p;
}

static inline const char *rt_json_string(const char *p)
{
    if (*p++ != '"') {
        return NULL;
    }
    while (*p && *p != '"') {
        if ((unsigned char)*p < 0x20) {
            return NULL;
        }
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++) {
                    if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i]) {
                        return NULL;
                    }
                }
                p += 4;
            } else if (!*p || !strchr("\"\\/bfnrt", *p)) {
                return NULL;
            }
        }
        p++;
    }
    return *p == '"' ? p + 1 : NULL;
}

static inline const char *rt_json_number(const char *p)
{
    const char *start = p;
    if (*p == '-') {
        p++;
    }
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (*p >= '0' && *p <= '9') p++;
    } else {
        return NULL;
    }
    if (*p == '.') {
        p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return NULL;
        while (*p >= '0' && *p <= '9') p++;
    }
    return p > start ? p : NULL;
}

static const char *rt_json_value(const char *p)
{
    p = rt_json_ws(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        int object = *p == '{';
        p = rt_json_ws(p + 1);
        if (*p == close) {
            return p + 1;
        }
        for (;;) {
            if (object) {
                p = rt_json_string(rt_json_ws(p));
                if (!p) return NULL;
                p = rt_json_ws(p);
                if (*p++ != ':') return NULL;
            }
            p = rt_json_value(p);
            if (!p) return NULL;
            p = rt_json_ws(p);
            if (*p == ',') {
                p++;
                continue;
            }
            return *p == close ? p + 1 : NULL;
        }
    }
    if (*p == '"') return rt_json_string(p);
    if (!strncmp(p, "true", 4)) return p + 4;
    if (!strncmp(p, "false", 5)) return p + 5;
    if (!strncmp(p, "null", 4)) return p + 4;
    return rt_json_number(p);
}

/* 1 when s is exactly one JSON value (with whitespace around it). */
static inline int rt_json_valid(const char *s)
{
    if (!s) return 0;
    const char *end = rt_json_value(s);
    return end && *rt_json_ws(end) == '\0';
}

#endif
