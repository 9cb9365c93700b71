/* node.c: the config tree itself: building nodes, looking things up, positions for messages,
 * deep copies, removal, equality and the deep merge that includes rely on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_internal.h"
#include "util/hash.h"
#include "util/util.h"

cfg_node *cfg_node_new(cfg_type type, const char *file, int line, int col)
{
    cfg_node *n = calloc(1, sizeof *n);
    if (!n) {
        return NULL;
    }
    n->type = type;
    n->file = mpsl_strdup(file ? file : "");
    if (!n->file) {
        free(n);
        return NULL;
    }
    n->line = line;
    n->col = col;
    return n;
}

cfg_node *cfg_scalar_new(const char *file, int line, int col, const char *text, size_t len,
                         int quoted)
{
    cfg_node *n = cfg_node_new(CFG_SCALAR, file, line, col);
    if (!n) {
        return NULL;
    }
    n->text = malloc(len + 1);
    if (!n->text) {
        cfg_free(n);
        return NULL;
    }
    if (len) {
        memcpy(n->text, text, len);
    }
    n->text[len] = '\0';
    n->quoted = quoted;
    return n;
}

/* Recursion depth is bounded: the parser refuses nesting beyond CFG_MAX_DEPTH and --set
 * paths are bounded the same way, so no tree here is deeper than about twice that. */
void cfg_free(cfg_node *n)
{
    if (!n) {
        return;
    }
    for (size_t i = 0; i < n->n; i++) {
        cfg_free(n->items[i].key);
        cfg_free(n->items[i].val);
    }
    free(n->items);
    free(n->text);
    free(n->file);
    free(n);
}

int cfg_append(cfg_node *parent, cfg_node *key, cfg_node *val)
{
    if (parent->n == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 4;
        cfg_entry *items = realloc(parent->items, cap * sizeof *items);
        if (!items) {
            return MPSL_ERR_NOMEM;
        }
        parent->items = items;
        parent->cap = cap;
    }
    parent->items[parent->n].key = key;
    parent->items[parent->n].val = val;
    parent->n++;
    return MPSL_OK;
}

int cfg_text_is_null(const char *text)
{
    return !text[0] || !strcmp(text, "~") || !strcmp(text, "null") || !strcmp(text, "Null") ||
           !strcmp(text, "NULL");
}

cfg_type cfg_node_type(const cfg_node *n) { return n ? n->type : CFG_SCALAR; }

const char *cfg_scalar(const cfg_node *n)
{
    return n && n->type == CFG_SCALAR ? n->text : NULL;
}

int cfg_scalar_quoted(const cfg_node *n) { return n && n->type == CFG_SCALAR && n->quoted; }

int cfg_is_null(const cfg_node *n)
{
    return !n || (n->type == CFG_SCALAR && !n->quoted && cfg_text_is_null(n->text));
}

size_t cfg_len(const cfg_node *n) { return n && n->type != CFG_SCALAR ? n->n : 0; }

const cfg_node *cfg_at(const cfg_node *n, size_t i)
{
    return n && n->type != CFG_SCALAR && i < n->n ? n->items[i].val : NULL;
}

const char *cfg_key_at(const cfg_node *n, size_t i)
{
    return n && n->type == CFG_MAP && i < n->n ? n->items[i].key->text : NULL;
}

long cfg_find(const cfg_node *map, const char *key)
{
    if (!map || map->type != CFG_MAP || !key) {
        return -1;
    }
    for (size_t i = 0; i < map->n; i++) {
        if (!strcmp(map->items[i].key->text, key)) {
            return (long)i;
        }
    }
    return -1;
}

const cfg_node *cfg_get(const cfg_node *map, const char *key)
{
    long i = cfg_find(map, key);
    return i < 0 ? NULL : map->items[i].val;
}

const cfg_node *cfg_path(const cfg_node *root, const char *dotted)
{
    const cfg_node *n = root;
    const char *p = dotted ? dotted : "";
    char part[256];
    while (n && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        if (len >= sizeof part) {
            return NULL;
        }
        memcpy(part, p, len);
        part[len] = '\0';
        n = cfg_get(n, part);
        p += len + (dot ? 1 : 0);
    }
    return n;
}

const char *cfg_where(const cfg_node *n, char *buf, size_t size)
{
    if (!buf || !size) {
        return buf;
    }
    if (!n) {
        snprintf(buf, size, "(no position)");
    } else if (n->line <= 0) {
        snprintf(buf, size, "%s", n->file);
    } else {
        snprintf(buf, size, "%s:%d:%d", n->file, n->line, n->col);
    }
    return buf;
}

const char *cfg_where_key(const cfg_node *map, const char *key, char *buf, size_t size)
{
    long i = cfg_find(map, key);
    return cfg_where(i < 0 ? map : map->items[i].key, buf, size);
}

cfg_node *cfg_clone(const cfg_node *n)
{
    if (!n) {
        return NULL;
    }
    cfg_node *c = n->type == CFG_SCALAR
                      ? cfg_scalar_new(n->file, n->line, n->col, n->text, strlen(n->text),
                                       n->quoted)
                      : cfg_node_new(n->type, n->file, n->line, n->col);
    if (!c) {
        return NULL;
    }
    if (n->n) {
        c->items = calloc(n->n, sizeof *c->items);
        if (!c->items) {
            cfg_free(c);
            return NULL;
        }
        c->cap = n->n;
    }
    for (size_t i = 0; i < n->n; i++) {
        cfg_node *k = n->items[i].key ? cfg_clone(n->items[i].key) : NULL;
        cfg_node *v = cfg_clone(n->items[i].val);
        if ((n->items[i].key && !k) || !v) {
            cfg_free(k);
            cfg_free(v);
            cfg_free(c);
            return NULL;
        }
        c->items[i].key = k;
        c->items[i].val = v;
        c->n = i + 1;
    }
    return c;
}

void cfg_remove(cfg_node *map, const char *key)
{
    long i = cfg_find(map, key);
    if (i < 0) {
        return;
    }
    cfg_free(map->items[i].key);
    cfg_free(map->items[i].val);
    memmove(&map->items[i], &map->items[i + 1], (map->n - (size_t)i - 1) * sizeof *map->items);
    map->n--;
}

int cfg_relabel(cfg_node *n, const char *file, int line, int col)
{
    char *f = mpsl_strdup(file);
    if (!f) {
        return MPSL_ERR_NOMEM;
    }
    free(n->file);
    n->file = f;
    n->line = line;
    n->col = col;
    for (size_t i = 0; i < n->n; i++) {
        if ((n->items[i].key && cfg_relabel(n->items[i].key, file, line, col)) ||
            cfg_relabel(n->items[i].val, file, line, col)) {
            return MPSL_ERR_NOMEM;
        }
    }
    return MPSL_OK;
}

/* Would this plain text read as something other than a string under the YAML 1.2 core
 * schema (null, bool, integer, float)? Only then does plain vs quoted change the meaning. */
int cfg_text_is_typed(const char *t)
{
    static const char *const words[] = {"true", "True", "TRUE", "false", "False", "FALSE",
                                        ".inf", ".Inf", ".INF", ".nan", ".NaN", ".NAN"};
    if (cfg_text_is_null(t)) {
        return 1;
    }
    const char *p = t + (*t == '-' || *t == '+');
    for (size_t i = 0; i < MPSL_COUNT(words); i++) {
        if (!strcmp(p, words[i])) {
            return 1;
        }
    }
    if ((!strncmp(t, "0x", 2) && t[2] && strspn(t + 2, "0123456789abcdefABCDEF") == strlen(t + 2)) ||
        (!strncmp(t, "0o", 2) && t[2] && strspn(t + 2, "01234567") == strlen(t + 2))) {
        return 1;
    }
    size_t before = strspn(p, "0123456789"), after = 0;
    p += before;
    if (*p == '.') {
        after = strspn(p + 1, "0123456789");
        p += 1 + after;
    }
    if (!before && !after) {
        return 0;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        p += *p == '-' || *p == '+';
        size_t exp = strspn(p, "0123456789");
        if (!exp) {
            return 0;
        }
        p += exp;
    }
    return *p == '\0';
}

int cfg_equal(const cfg_node *a, const cfg_node *b)
{
    if (!a || !b) {
        return a == b;
    }
    if (a->type != b->type || a->n != b->n) {
        return 0;
    }
    if (a->type == CFG_SCALAR) {
        /* Quoted "5" and plain 5 differ; quoted "a\tb" and plain a<tab>b are the same
         * string (the emitter has to quote the latter). */
        return !strcmp(a->text, b->text) &&
               (a->quoted == b->quoted || !cfg_text_is_typed(a->text));
    }
    for (size_t i = 0; i < a->n; i++) {
        if (a->type == CFG_MAP && strcmp(a->items[i].key->text, b->items[i].key->text)) {
            return 0;
        }
        if (!cfg_equal(a->items[i].val, b->items[i].val)) {
            return 0;
        }
    }
    return 1;
}

/* An index of a mapping's keys for cfg_merge. Looking each key of src up in dst with
 * cfg_find made merging a fragment of n keys O(n^2) (99,000 keys took a minute); with this
 * open-addressing table, built once per merged mapping, a merge is linear. Slots hold an
 * entry's index + 1 (0: empty), so growing dst->items does not invalidate them. */
typedef struct key_index {
    size_t *slot; /* NULL: no index, fall back to cfg_find (small maps, or out of memory) */
    size_t mask;
} key_index;

static size_t key_hash(const char *key) { return (size_t)mpsl_fnv1a64(key, strlen(key)); }

static void index_add(key_index *ix, const cfg_node *map, size_t i)
{
    size_t h = key_hash(map->items[i].key->text) & ix->mask;
    while (ix->slot[h]) {
        h = (h + 1) & ix->mask;
    }
    ix->slot[h] = i + 1;
}

/* Room for `expect` keys at most half full; dst's present keys are added now. */
static void index_build(key_index *ix, const cfg_node *map, size_t expect)
{
    ix->slot = NULL;
    if (expect <= 16) {
        return; /* a scan is as fast, and most config mappings are this small */
    }
    size_t cap = 32;
    while (cap < 2 * expect) {
        cap *= 2;
    }
    ix->slot = calloc(cap, sizeof *ix->slot);
    ix->mask = cap - 1;
    for (size_t i = 0; ix->slot && i < map->n; i++) {
        index_add(ix, map, i);
    }
}

static long index_find(const key_index *ix, const cfg_node *map, const char *key)
{
    if (!ix->slot) {
        return cfg_find(map, key);
    }
    for (size_t h = key_hash(key) & ix->mask; ix->slot[h]; h = (h + 1) & ix->mask) {
        size_t i = ix->slot[h] - 1;
        if (!strcmp(map->items[i].key->text, key)) {
            return (long)i;
        }
    }
    return -1;
}

/* A block that names a different plugin than the block it would merge into replaces it whole:
 * the included block's other keys are that plugin's parameters (an experiment that includes
 * one with `strategy: {plugin: fedprox, mu: 0.1}` and says `strategy: {plugin: fedavg}` gets
 * FedAvg with its defaults, not an error about `mu`). */
static int names_other_plugin(const cfg_node *dst, const cfg_node *src)
{
    const cfg_node *a = cfg_get(dst, "plugin"), *b = cfg_get(src, "plugin");
    return a && b && a->type == CFG_SCALAR && b->type == CFG_SCALAR && strcmp(a->text, b->text);
}

int cfg_merge(cfg_node *dst, cfg_node *src)
{
    int rc = MPSL_OK;
    key_index ix = {NULL, 0}; /* mask is read only with slot, but GCC -O3 cannot tell */
    index_build(&ix, dst, dst->n + src->n);
    for (size_t i = 0; i < src->n && rc == MPSL_OK; i++) {
        cfg_entry *e = &src->items[i];
        long j = index_find(&ix, dst, e->key->text);
        if (j < 0) {
            rc = cfg_append(dst, e->key, e->val);
            if (rc == MPSL_OK) {
                e->key = e->val = NULL;
                if (ix.slot) {
                    /* src's keys are distinct when it was parsed, but not necessarily
                     * when built by hand: index new keys too so a repeat replaces. */
                    index_add(&ix, dst, dst->n - 1);
                }
            }
            continue;
        }
        cfg_entry *d = &dst->items[j];
        if (d->val->type == CFG_MAP && e->val->type == CFG_MAP &&
            !names_other_plugin(d->val, e->val)) {
            rc = cfg_merge(d->val, e->val);
            e->val = NULL; /* consumed by the recursive merge */
        } else {
            /* The winning value keeps its own position, and so does its key, so messages
             * about it point at the file that set it. */
            cfg_free(d->key);
            cfg_free(d->val);
            d->key = e->key;
            d->val = e->val;
            e->key = e->val = NULL;
        }
    }
    free(ix.slot);
    cfg_free(src);
    return rc;
}

size_t cfg_count_nodes(const cfg_node *n)
{
    if (!n) {
        return 0;
    }
    size_t count = 1;
    for (size_t i = 0; i < n->n; i++) {
        count += (n->items[i].key ? 1 : 0) + cfg_count_nodes(n->items[i].val);
    }
    return count;
}
