/* override.c: `--set a.b.c=value` applied to a loaded tree. The value is read as YAML (so
 * "[1,2]", "{x: 1}" and "'5'" mean what they would in a file) and every node it creates
 * reports its position as "--set a.b.c", so later validation errors point at the flag. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_internal.h"
#include "util/util.h"

static const char *kind_of(const cfg_node *n)
{
    return n->type == CFG_MAP ? "a mapping" : n->type == CFG_SEQ ? "a sequence" : "a scalar";
}

/* Trim spaces around the key path so "--set 'a.b = 4'" works too. */
static char *trimmed(const char *s, size_t len)
{
    while (len && (*s == ' ' || *s == '\t')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
        len--;
    }
    char *t = malloc(len + 1);
    if (t) {
        memcpy(t, s, len);
        t[len] = '\0';
    }
    return t;
}

static int check_path(const char *path, const char *assignment, mpsl_error *err)
{
    if (!path[0]) {
        return mpsl_err(err, "--set %s: missing key before '='; write --set section.key=value",
                        assignment);
    }
    /* Refused before anything echoes it: the key is repeated in every later message (and in
     * the position of every node it creates), which must fit in an mpsl_error. */
    size_t len = strlen(path);
    if (len > CFG_MAX_KEY_CHARS) {
        return mpsl_err(err, "--set %.40s...: the key is %zu characters long; a key is at most "
                        "%d characters (section.key, e.g. model.encoder.depth)",
                        path, len, CFG_MAX_KEY_CHARS);
    }
    int parts = 1;
    for (const char *p = path; *p; p++) {
        parts += *p == '.';
    }
    if (path[0] == '.' || path[strlen(path) - 1] == '.' || strstr(path, "..")) {
        return mpsl_err(err, "--set %s: empty part in key '%s'; write names separated by "
                        "single dots (model.encoder.depth)",
                        assignment, path);
    }
    if (parts > CFG_MAX_DEPTH) {
        return mpsl_err(err, "--set %s: key has more than %d parts", assignment,
                        CFG_MAX_DEPTH);
    }
    return MPSL_OK;
}

/* Walk (creating mappings as needed) to the mapping that holds the last part. */
static cfg_node *walk(cfg_node *root, char *path, const char *label, char **last,
                      mpsl_error *err)
{
    cfg_node *map = root;
    char *part = path;
    for (char *dot = strchr(part, '.'); dot; part = dot + 1, dot = strchr(part, '.')) {
        *dot = '\0';
        long i = cfg_find(map, part);
        if (i < 0) {
            cfg_node *k = cfg_scalar_new(label, 0, 0, part, strlen(part), 0);
            cfg_node *v = cfg_node_new(CFG_MAP, label, 0, 0);
            if (!k || !v || cfg_append(map, k, v)) {
                cfg_free(k);
                cfg_free(v);
                mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", label);
                return NULL;
            }
            map = v;
            continue;
        }
        cfg_node *next = map->items[i].val;
        if (next->type != CFG_MAP) {
            char where[512];
            const char *full = label + strlen("--set "); /* path itself now has NULs */
            /* Say which prefix is in the way and where it was set. */
            mpsl_err(err,
                     "%s: cannot set '%s': '%.*s' is %s (at %s), not a mapping; remove it "
                     "or set it as a whole",
                     label, full, (int)(dot - path), full, kind_of(next),
                     cfg_where(next, where, sizeof where));
            return NULL;
        }
        map = next;
    }
    *last = part;
    return map;
}

/* Store value (owned, consumed in every case) at the dotted path, creating mappings along
 * the way and replacing an existing value. */
static int put(cfg_node *root, char *path, const char *label, cfg_node *value, mpsl_error *err)
{
    char *last = NULL;
    cfg_node *map = walk(root, path, label, &last, err);
    if (!map) {
        cfg_free(value);
        return MPSL_ERR_INVALID;
    }
    int rc = MPSL_OK;
    cfg_node *key = cfg_scalar_new(label, 0, 0, last, strlen(last), 0);
    long i = cfg_find(map, last);
    if (!key) {
        rc = MPSL_ERR_NOMEM;
    } else if (i >= 0) {
        cfg_free(map->items[i].key);
        cfg_free(map->items[i].val);
        map->items[i].key = key;
        map->items[i].val = value;
        value = NULL;
    } else if (cfg_append(map, key, value) == MPSL_OK) {
        value = NULL;
    } else {
        cfg_free(key);
        rc = MPSL_ERR_NOMEM;
    }
    if (rc == MPSL_ERR_NOMEM) {
        mpsl_errs(err, rc, "%s: out of memory", label);
    }
    cfg_free(value);
    return rc;
}

int cfg_set(cfg_node *root, const char *dotted, const cfg_node *value, mpsl_error *err)
{
    if (!root || root->type != CFG_MAP) {
        return mpsl_err(err, "cannot set '%s': the config is not a mapping", dotted);
    }
    char *path = mpsl_strdup(dotted);
    char *label = mpsl_strfmt("--set %s", dotted);
    cfg_node *copy = cfg_clone(value); /* keeps its positions: messages point at the source */
    int rc = path && label && copy ? check_path(path, dotted, err) : MPSL_ERR_NOMEM;
    if (rc == MPSL_OK) {
        rc = put(root, path, label, copy, err);
        copy = NULL;
    } else if (rc == MPSL_ERR_NOMEM) {
        mpsl_errs(err, rc, "out of memory setting '%s'", dotted);
    }
    cfg_free(copy);
    free(path);
    free(label);
    return rc;
}

int cfg_apply_override(cfg_node *root, const char *assignment, mpsl_error *err)
{
    if (!assignment) {
        return mpsl_err(err, "--set: nothing given; write --set section.key=value");
    }
    const char *eq = strchr(assignment, '=');
    if (!eq) {
        return mpsl_err(err, "--set %s: missing '='; write --set section.key=value",
                        assignment);
    }
    if (!root || root->type != CFG_MAP) {
        return mpsl_err(err, "--set %s: the config is not a mapping", assignment);
    }
    char *path = trimmed(assignment, (size_t)(eq - assignment));
    char *label = path ? mpsl_strfmt("--set %s", path) : NULL;
    if (!path || !label) {
        free(path);
        free(label);
        return mpsl_errs(err, MPSL_ERR_NOMEM, "--set: out of memory");
    }
    int rc = check_path(path, assignment, err);
    cfg_node *value = NULL;
    if (rc == MPSL_OK) {
        int empty;
        const char *text = eq + 1;
        value = cfg_parse_text(text, strlen(text), label, &empty, err);
        if (!value && empty) {
            value = cfg_scalar_new(label, 0, 0, "", 0, 0); /* "a=" sets null */
        } else if (!value && err) {
            /* "--set a.b:2:1: problem": a line:column inside a one-line value says little;
             * quote the value instead. */
            char problem[sizeof err->msg];
            const char *p = err->msg;
            /* Skip the parser's "--set a.b:1:2: " only where the message really starts with
             * it (the label alone could be longer than the message buffer). */
            size_t skip = strlen(label);
            if (skip < sizeof err->msg && !strncmp(p, label, skip)) {
                p += skip;
                p += strspn(p, ":0123456789");
                p += strspn(p, " ");
            }
            snprintf(problem, sizeof problem, "%s", p);
            mpsl_err(err, "%s: cannot read the value '%.200s': %s", label, text, problem);
        }
        rc = !value ? MPSL_ERR_INVALID : cfg_relabel(value, label, 0, 0);
        if (rc == MPSL_ERR_NOMEM) {
            mpsl_errs(err, rc, "%s: out of memory", label);
        }
    }
    if (rc == MPSL_OK) {
        rc = put(root, path, label, value, err);
        value = NULL;
    }
    cfg_free(value);
    free(path);
    free(label);
    return rc;
}
