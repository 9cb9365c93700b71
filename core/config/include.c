/* include.c: cfg_load_file(): read a file, parse it, and resolve its top-level `include:`
 * fragments (relative to the including file, then the configs/ search directories), deep-
 * merging them in order with the including file's own keys last so they win. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg_internal.h"
#include "util/util.h"

/* Experiment files are small; anything this big is a mistake, not a config. */
#define CFG_MAX_FILE_BYTES (64u << 20)

/* The files being included right now, innermost first, to name cycles. */
typedef struct chain {
    const char *path;
    const char *real;
    const struct chain *up;
} chain;

static char *read_file(const char *path, size_t *len, mpsl_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        mpsl_errs(err, MPSL_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            if (cap > CFG_MAX_FILE_BYTES) {
                mpsl_errs(err, MPSL_ERR_IO, "%s: larger than %u MiB; not a config file", path,
                          CFG_MAX_FILE_BYTES >> 20);
                free(buf);
                fclose(f);
                return NULL;
            }
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            break;
        }
    }
    if (!buf) {
        fclose(f);
        mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    if (ferror(f)) {
        int e = errno;
        fclose(f);
        free(buf);
        mpsl_errs(err, MPSL_ERR_IO, "%s: cannot read: %s", path, strerror(e));
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* "dir/name" where dir is the directory part of `file` ("" when it has none). */
static char *sibling(const char *file, const char *name)
{
    const char *slash = strrchr(file, '/');
    if (!slash) {
        return mpsl_strdup(name);
    }
    return mpsl_strfmt("%.*s/%s", (int)(slash - file), file, name);
}

/* Find an include: absolute paths as given; otherwise next to the including file, then in
 * each search directory. On failure err names the include and every path tried. */
static char *resolve(const cfg_node *name, const char *includer, const char *const *dirs,
                     mpsl_error *err)
{
    char where[512];
    cfg_where(name, where, sizeof where);
    const char *nm = name->text;
    if (nm[0] == '/') {
        if (access(nm, F_OK) == 0) {
            return mpsl_strdup(nm);
        }
        mpsl_errs(err, MPSL_ERR_IO, "%s: cannot find included file '%s': %s", where, nm,
                  strerror(errno));
        return NULL;
    }
    char tried[768] = "";
    size_t used = 0;
    for (int i = -1; i < 0 || (dirs && dirs[i]); i++) {
        char *p = i < 0 ? sibling(includer, nm) : mpsl_strfmt("%s/%s", dirs[i], nm);
        if (!p) {
            mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", where);
            return NULL;
        }
        if (access(p, F_OK) == 0) {
            return p;
        }
        if (used < sizeof tried) {
            used += (size_t)snprintf(tried + used, sizeof tried - used, "%s%s",
                                     used ? ", " : "", p);
        }
        free(p);
    }
    mpsl_errs(err, MPSL_ERR_IO,
              "%s: cannot find included file '%s' (tried %s); includes are looked up next to "
              "the including file, then in the configs/ directories",
              where, nm, tried);
    return NULL;
}

static int cycle_error(const cfg_node *name, const char *found, const chain *c,
                       mpsl_error *err)
{
    const chain *order[CFG_MAX_INCLUDE_DEPTH + 2];
    int n = 0;
    for (; c && n < (int)MPSL_COUNT(order); c = c->up) {
        order[n++] = c;
    }
    char path[640] = "";
    size_t used = 0;
    for (int i = n - 1; i >= 0 && used < sizeof path; i--) {
        used += (size_t)snprintf(path + used, sizeof path - used, "%s -> ", order[i]->path);
    }
    char where[512];
    return mpsl_err(err, "%s: include cycle: %s%s; a file cannot include itself, directly or "
                    "through other files",
                    cfg_where(name, where, sizeof where), path, found);
}

static cfg_node *load_rec(const char *path, const char *const *dirs, const chain *up,
                          int depth, size_t *nodes, mpsl_error *err);

/* Load one include (a scalar naming a file) and merge it into acc. */
static int include_one(cfg_node *acc, const cfg_node *name, const char *includer,
                       const char *const *dirs, const chain *me, int depth, size_t *nodes,
                       mpsl_error *err)
{
    char where[512];
    cfg_where(name, where, sizeof where);
    if (name->type != CFG_SCALAR || cfg_is_null(name)) {
        return mpsl_err(err, "%s: include: expected a file name or a list of file names",
                        where);
    }
    if (depth >= CFG_MAX_INCLUDE_DEPTH) {
        return mpsl_err(err, "%s: includes nested more than %d deep (including '%s')", where,
                        CFG_MAX_INCLUDE_DEPTH, name->text);
    }
    char *found = resolve(name, includer, dirs, err);
    if (!found) {
        return MPSL_ERR_IO;
    }
    char *real = realpath(found, NULL);
    for (const chain *c = me; c && real; c = c->up) {
        if (c->real && !strcmp(c->real, real)) {
            int rc = cycle_error(name, found, me, err);
            free(real);
            free(found);
            return rc;
        }
    }
    free(real);
    cfg_node *frag = load_rec(found, dirs, me, depth + 1, nodes, err);
    free(found);
    if (!frag) {
        /* The fragment's message names its own position; add where it was included. */
        if (err && strlen(err->msg) + strlen(where) + 20 < sizeof err->msg) {
            strcat(err->msg, " (included from ");
            strcat(err->msg, where);
            strcat(err->msg, ")");
        }
        return MPSL_ERR_INVALID;
    }
    int rc = cfg_merge(acc, frag);
    if (rc) {
        mpsl_errs(err, rc, "%s: out of memory merging includes", where);
    }
    return rc;
}

/* `nodes` counts the nodes of every file read so far for this experiment, the same file
 * again each time it is included: the parser's limit holds per file, this one for the
 * whole tree, so neither a few huge fragments nor one fragment included many times over
 * (through a diamond of includes) can make the merged tree larger than one file may be. */
static cfg_node *load_rec(const char *path, const char *const *dirs, const chain *up,
                          int depth, size_t *nodes, mpsl_error *err)
{
    size_t len;
    char *text = read_file(path, &len, err);
    if (!text) {
        return NULL;
    }
    int empty;
    cfg_node *root = cfg_parse_text(text, len, path, &empty, err);
    free(text);
    if (!root && !empty) {
        return NULL;
    }
    if (!root || cfg_is_null(root)) {
        /* An empty file (or a lone null) is an empty mapping. */
        cfg_free(root);
        root = cfg_node_new(CFG_MAP, path, 1, 1);
        if (!root) {
            mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", path);
            return NULL;
        }
    }
    if (root->type != CFG_MAP) {
        char where[512];
        mpsl_err(err, "%s: expected a mapping (key: value lines) at the top of the file, got %s",
                 cfg_where(root, where, sizeof where),
                 root->type == CFG_SEQ ? "a sequence" : "a scalar");
        cfg_free(root);
        return NULL;
    }
    size_t own = cfg_count_nodes(root);
    if (own > CFG_MAX_NODES - *nodes) {
        mpsl_err(err, "%s: more than %d nodes in the experiment's files together: %zu here "
                 "on top of %zu read before it (a file included twice counts twice); an "
                 "experiment is not this large, check the includes",
                 path, CFG_MAX_NODES, own, *nodes);
        cfg_free(root);
        return NULL;
    }
    *nodes += own;
    long i = cfg_find(root, "include");
    if (i < 0) {
        return root;
    }
    char *real = realpath(path, NULL);
    chain me = {path, real, up};
    cfg_node *acc = cfg_node_new(CFG_MAP, root->file, root->line, root->col);
    int rc = acc ? MPSL_OK : mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", path);
    const cfg_node *inc = root->items[i].val;
    if (rc == MPSL_OK && inc->type == CFG_SEQ) {
        for (size_t k = 0; k < inc->n && rc == MPSL_OK; k++) {
            rc = include_one(acc, inc->items[k].val, path, dirs, &me, depth, nodes, err);
        }
    } else if (rc == MPSL_OK) {
        rc = include_one(acc, inc, path, dirs, &me, depth, nodes, err);
    }
    free(real);
    if (rc != MPSL_OK) {
        cfg_free(acc);
        cfg_free(root);
        return NULL;
    }
    cfg_remove(root, "include");
    rc = cfg_merge(acc, root);
    if (rc) {
        mpsl_errs(err, rc, "%s: out of memory merging includes", path);
        cfg_free(acc);
        return NULL;
    }
    return acc;
}

cfg_node *cfg_load_file(const char *path, const char *const *search_dirs, mpsl_error *err)
{
    if (!path) {
        mpsl_err(err, "cfg_load_file: no path given");
        return NULL;
    }
    size_t nodes = 0;
    return load_rec(path, search_dirs, NULL, 0, &nodes, err);
}
