/* load.c: libyaml events -> cfg_node tree. The tree is built with an explicit stack, so
 * hostile files cannot overflow the C stack; nesting, node count after alias expansion,
 * duplicate keys, self-referencing anchors and extra documents are refused with
 * file:line:column messages. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "cfg_internal.h"
#include "util/util.h"

/* An anchor: its node and how many nodes an alias to it expands to. `done` stays 0 while the
 * anchored node is still open, which is how self-references are caught. Anchors live in a
 * small chained hash table, so files with many anchors and aliases still load in linear
 * time. */
typedef struct anchor {
    char *name;
    const cfg_node *node;
    size_t count;
    size_t bytes; /* scalar text inside, so aliases of one huge string are bounded too */
    int done;
    long next; /* older anchor in the same bucket, or -1 */
} anchor;

#define ANCHOR_BUCKETS 256
/* Text that aliases may copy in all, on top of the file itself. */
#define CFG_MAX_ALIAS_BYTES (16 << 20)

typedef struct frame {
    cfg_node *node;
    cfg_node *pending_key; /* mappings: key read, value not yet */
    size_t start_count;    /* nodes counted when this container opened */
    size_t start_bytes;    /* text bytes counted when it opened */
    long anchor;           /* index into anchors, or -1 */
} frame;

typedef struct builder {
    const char *name;
    const char *text;
    size_t len;
    size_t bom; /* bytes of a byte-order mark skipped before text */
    mpsl_error *err;
    cfg_node *root;
    frame stack[CFG_MAX_DEPTH + 1];
    int depth;
    size_t count; /* nodes so far, aliases counted as if expanded */
    size_t bytes; /* scalar text so far, aliases counted as if expanded */
    size_t alias_bytes; /* of which copied by aliases */
    anchor *anchors;
    size_t n_anchors, cap_anchors;
    long bucket[ANCHOR_BUCKETS];
} builder;

static int fail(builder *b, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Every message starts with name:line:column. */
static int fail(builder *b, const yaml_mark_t *m, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    mpsl_err(b->err, "%s:%zu:%zu: %s", b->name, m->line + 1, m->column + 1, msg);
    return MPSL_ERR_INVALID;
}

static unsigned long hash_name(const char *s)
{
    unsigned long h = 5381;
    while (*s) {
        h = h * 33 + (unsigned char)*s++;
    }
    return h % ANCHOR_BUCKETS;
}

static long anchor_find(const builder *b, const char *name)
{
    for (long i = b->bucket[hash_name(name)]; i >= 0; i = b->anchors[i].next) {
        if (!strcmp(b->anchors[i].name, name)) {
            return i;
        }
    }
    return -1;
}

/* A later anchor of the same name shadows the earlier one, as YAML says. */
static long anchor_add(builder *b, const char *name, const cfg_node *node)
{
    if (b->n_anchors == b->cap_anchors) {
        size_t cap = b->cap_anchors ? b->cap_anchors * 2 : 16;
        anchor *a = realloc(b->anchors, cap * sizeof *a);
        if (!a) {
            return -1;
        }
        b->anchors = a;
        b->cap_anchors = cap;
    }
    anchor *a = &b->anchors[b->n_anchors];
    a->name = mpsl_strdup(name);
    if (!a->name) {
        return -1;
    }
    a->node = node;
    a->count = 0;
    a->bytes = 0;
    a->done = 0;
    unsigned long h = hash_name(name);
    a->next = b->bucket[h];
    b->bucket[h] = (long)b->n_anchors;
    return (long)b->n_anchors++;
}

static const char *type_name(const cfg_node *n)
{
    return n->type == CFG_MAP ? "a mapping" : n->type == CFG_SEQ ? "a sequence" : "a scalar";
}

static int count_nodes(builder *b, size_t add, const yaml_mark_t *m)
{
    if (add > CFG_MAX_NODES || b->count > CFG_MAX_NODES - add) {
        return fail(b, m,
                    "more than %d nodes after expanding aliases; this looks like an alias "
                    "bomb (aliases that multiply each other)",
                    CFG_MAX_NODES);
    }
    b->count += add;
    return MPSL_OK;
}

/* Attach a finished or just-opened node to the open container (or make it the root).
 * Takes ownership of n in every case. */
static int attach(builder *b, cfg_node *n, const yaml_mark_t *m)
{
    if (b->depth == 0) {
        b->root = n;
        return MPSL_OK;
    }
    frame *f = &b->stack[b->depth - 1];
    int rc;
    if (f->node->type == CFG_SEQ) {
        rc = cfg_append(f->node, NULL, n);
    } else if (!f->pending_key) {
        if (n->type != CFG_SCALAR) {
            rc = fail(b, m, "a key must be a plain string, not %s", type_name(n));
        } else if (!n->quoted && cfg_text_is_null(n->text)) {
            rc = fail(b, m, "missing key (a null key%s%s%s); write a name before ':'",
                      n->text[0] ? " '" : "", n->text, n->text[0] ? "'" : "");
        } else {
            f->pending_key = n;
            return MPSL_OK;
        }
    } else {
        rc = cfg_append(f->node, f->pending_key, n);
        if (rc == MPSL_OK) {
            f->pending_key = NULL;
        }
    }
    if (rc == MPSL_ERR_NOMEM) {
        mpsl_errs(b->err, rc, "%s: out of memory while reading YAML", b->name);
    }
    if (rc != MPSL_OK) {
        cfg_free(n);
    }
    return rc;
}

/* Explicit tags: !!str makes a string; the core schema's other tags are accepted as no-ops;
 * anything else is refused rather than silently ignored. */
static int check_tag(builder *b, const yaml_char_t *tag, int *quoted, const yaml_mark_t *m)
{
    if (!tag) {
        return MPSL_OK;
    }
    const char *t = (const char *)tag;
    static const char *const ok[] = {"tag:yaml.org,2002:int",   "tag:yaml.org,2002:float",
                                     "tag:yaml.org,2002:bool",  "tag:yaml.org,2002:null",
                                     "tag:yaml.org,2002:map",   "tag:yaml.org,2002:seq"};
    if (!strcmp(t, "tag:yaml.org,2002:str") || !strcmp(t, "!")) { /* `! x` is a string too */
        *quoted = 1;
        return MPSL_OK;
    }
    for (size_t i = 0; i < MPSL_COUNT(ok); i++) {
        if (!strcmp(t, ok[i])) {
            return MPSL_OK;
        }
    }
    return fail(b, m, "unsupported tag '%s' (only the core tags such as !!str are allowed)", t);
}

/* Duplicate keys: sort key indices by text, then the duplicate whose second occurrence comes
 * first in the file is the one reported, naming both positions. */
static int cmp_keys(const void *pa, const void *pb, void *ctx)
{
    const cfg_node *sort_map = ctx;
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    int c = strcmp(sort_map->items[a].key->text, sort_map->items[b].key->text);
    return c ? c : (a < b ? -1 : a > b);
}

static int check_duplicates(builder *b, const cfg_node *map)
{
    if (map->n < 2) {
        return MPSL_OK;
    }
    size_t *idx = malloc(map->n * sizeof *idx);
    if (!idx) {
        return mpsl_errs(b->err, MPSL_ERR_NOMEM, "%s: out of memory", b->name);
    }
    for (size_t i = 0; i < map->n; i++) {
        idx[i] = i;
    }
    qsort_r(idx, map->n, sizeof *idx, cmp_keys, (void *)map);
    size_t first = 0, second = (size_t)-1;
    for (size_t i = 1; i < map->n; i++) {
        if (!strcmp(map->items[idx[i - 1]].key->text, map->items[idx[i]].key->text) &&
            idx[i] < second) {
            /* idx[i-1] may itself be a repeat; the first occurrence is the run's start. */
            size_t s = i - 1;
            while (s > 0 && !strcmp(map->items[idx[s - 1]].key->text,
                                    map->items[idx[i]].key->text)) {
                s--;
            }
            first = idx[s];
            second = idx[i];
        }
    }
    free(idx);
    if (second == (size_t)-1) {
        return MPSL_OK;
    }
    const cfg_node *k1 = map->items[first].key, *k2 = map->items[second].key;
    return mpsl_err(b->err, "%s:%d:%d: duplicate key '%s' (first defined at %s:%d:%d); "
                    "each key may appear once per mapping",
                    k2->file, k2->line, k2->col, k2->text, k1->file, k1->line, k1->col);
}

static int on_scalar(builder *b, const yaml_event_t *e)
{
    const yaml_mark_t *m = &e->start_mark;
    int quoted = e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
    if (check_tag(b, e->data.scalar.tag, &quoted, m) || count_nodes(b, 1, m)) {
        return MPSL_ERR_INVALID;
    }
    b->bytes += e->data.scalar.length;
    cfg_node *n = cfg_scalar_new(b->name, (int)m->line + 1, (int)m->column + 1,
                                 (const char *)e->data.scalar.value, e->data.scalar.length,
                                 quoted);
    if (!n) {
        return mpsl_errs(b->err, MPSL_ERR_NOMEM, "%s: out of memory", b->name);
    }
    if (e->data.scalar.anchor) {
        long a = anchor_add(b, (const char *)e->data.scalar.anchor, n);
        if (a < 0) {
            cfg_free(n);
            return mpsl_errs(b->err, MPSL_ERR_NOMEM, "%s: out of memory", b->name);
        }
        b->anchors[a].count = 1;
        b->anchors[a].bytes = e->data.scalar.length;
        b->anchors[a].done = 1;
    }
    return attach(b, n, m);
}

static int on_start(builder *b, const yaml_event_t *e, cfg_type type)
{
    const yaml_mark_t *m = &e->start_mark;
    const yaml_char_t *anchor_name, *tag;
    if (type == CFG_MAP) {
        anchor_name = e->data.mapping_start.anchor;
        tag = e->data.mapping_start.tag;
    } else {
        anchor_name = e->data.sequence_start.anchor;
        tag = e->data.sequence_start.tag;
    }
    int quoted = 0;
    if (b->depth >= CFG_MAX_DEPTH) {
        return fail(b, m,
                    "nesting deeper than %d levels of mappings and sequences; flatten the "
                    "config",
                    CFG_MAX_DEPTH);
    }
    if (check_tag(b, tag, &quoted, m) || count_nodes(b, 1, m)) {
        return MPSL_ERR_INVALID;
    }
    cfg_node *n = cfg_node_new(type, b->name, (int)m->line + 1, (int)m->column + 1);
    if (!n) {
        return mpsl_errs(b->err, MPSL_ERR_NOMEM, "%s: out of memory", b->name);
    }
    long a = -1;
    if (anchor_name) {
        a = anchor_add(b, (const char *)anchor_name, n);
        if (a < 0) {
            cfg_free(n);
            return mpsl_errs(b->err, MPSL_ERR_NOMEM, "%s: out of memory", b->name);
        }
    }
    int rc = attach(b, n, m);
    if (rc) {
        return rc;
    }
    frame *f = &b->stack[b->depth++];
    f->node = n;
    f->pending_key = NULL;
    f->start_count = b->count - 1;
    f->start_bytes = b->bytes;
    f->anchor = a;
    return MPSL_OK;
}

static int on_end(builder *b)
{
    frame *f = &b->stack[b->depth - 1];
    if (f->node->type == CFG_MAP) {
        int rc = check_duplicates(b, f->node);
        if (rc) {
            return rc;
        }
    }
    if (f->anchor >= 0) {
        b->anchors[f->anchor].count = b->count - f->start_count;
        b->anchors[f->anchor].bytes = b->bytes - f->start_bytes;
        b->anchors[f->anchor].done = 1;
    }
    b->depth--;
    return MPSL_OK;
}

static int on_alias(builder *b, const yaml_event_t *e)
{
    const yaml_mark_t *m = &e->start_mark;
    const char *name = (const char *)e->data.alias.anchor;
    long i = anchor_find(b, name);
    if (i < 0) {
        return fail(b, m, "alias *%s refers to an anchor &%s that is not defined before it",
                    name, name);
    }
    const anchor *a = &b->anchors[i];
    if (!a->done) {
        return fail(b, m,
                    "alias *%s refers to its own anchor &%s (at %s:%d:%d), which is still "
                    "being defined; a value cannot contain itself",
                    name, name, a->node->file, a->node->line, a->node->col);
    }
    /* Count before copying: a billion-laughs file is refused after at most CFG_MAX_NODES
     * nodes were materialised. */
    if (count_nodes(b, a->count, m)) {
        return MPSL_ERR_INVALID;
    }
    if (a->bytes > CFG_MAX_ALIAS_BYTES - b->alias_bytes) {
        return fail(b, m,
                    "aliases expand to more than %d MiB of text; this looks like an alias bomb "
                    "(one long string repeated by many aliases)",
                    CFG_MAX_ALIAS_BYTES >> 20);
    }
    b->alias_bytes += a->bytes;
    b->bytes += a->bytes;
    cfg_node *c = cfg_clone(a->node);
    if (!c) {
        return mpsl_errs(b->err, MPSL_ERR_NOMEM, "%s: out of memory", b->name);
    }
    /* The copy's root reports where the alias is; its insides where they were written. */
    c->line = (int)m->line + 1;
    c->col = (int)m->column + 1;
    return attach(b, c, m);
}

/* libyaml reports reader errors by byte offset; turn that into line:column. */
static void offset_to_mark(const char *text, size_t len, size_t offset, yaml_mark_t *m)
{
    m->line = 0;
    m->column = 0;
    for (size_t i = 0; i < offset && i < len; i++) {
        if (text[i] == '\n') {
            m->line++;
            m->column = 0;
        } else if (((unsigned char)text[i] & 0xC0) != 0x80) {
            m->column++;
        }
    }
}

static int syntax_error(builder *b, const yaml_parser_t *p)
{
    yaml_mark_t m = p->problem_mark;
    const char *problem = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_MEMORY_ERROR) {
        return mpsl_errs(b->err, MPSL_ERR_NOMEM, "%s: out of memory while reading YAML",
                         b->name);
    }
    if (p->error == YAML_READER_ERROR) {
        offset_to_mark(b->text, b->len, p->problem_offset, &m);
        return fail(b, &m, "%s (byte %zu); the file must be UTF-8 text", problem,
                    p->problem_offset + b->bom);
    }
    const char *hint = "";
    if (p->problem && strstr(p->problem, "cannot start any token") &&
        m.index < b->len && b->text[m.index] == '\t') {
        hint = "; YAML does not allow tabs for indentation";
    }
    if (p->context) {
        return fail(b, &m, "YAML syntax error: %s %s (started at line %zu, column %zu)%s",
                    problem, p->context, p->context_mark.line + 1,
                    p->context_mark.column + 1, hint);
    }
    return fail(b, &m, "YAML syntax error: %s%s", problem, hint);
}

static int on_event(builder *b, const yaml_event_t *e, int *docs)
{
    switch (e->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (++*docs > 1) {
            return fail(b, &e->start_mark,
                        "a second YAML document starts here; an experiment file holds one "
                        "document (remove the '---' or split the file)");
        }
        return MPSL_OK;
    case YAML_SCALAR_EVENT:
        return on_scalar(b, e);
    case YAML_SEQUENCE_START_EVENT:
        return on_start(b, e, CFG_SEQ);
    case YAML_MAPPING_START_EVENT:
        return on_start(b, e, CFG_MAP);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        return on_end(b);
    case YAML_ALIAS_EVENT:
        return on_alias(b, e);
    default:
        return MPSL_OK;
    }
}

cfg_node *cfg_parse_text(const char *text, size_t len, const char *name, int *empty,
                         mpsl_error *err)
{
    builder *b = calloc(1, sizeof *b);
    *empty = 0;
    if (!b) {
        mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    /* A UTF-8 byte-order mark, as some Windows editors write, is not part of the text.
     * libyaml drops it only when it detects the encoding itself; with UTF-8 set below its
     * scanner skips the mark but counts it as a column, so the first key sat one column to
     * the right of the next and a file of two keys failed with "did not find expected
     * <document start>". */
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) {
        b->bom = 3;
        text += 3;
        len -= 3;
    }
    b->name = name;
    b->text = text;
    b->len = len;
    b->err = err;
    for (int i = 0; i < ANCHOR_BUCKETS; i++) {
        b->bucket[i] = -1;
    }
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        free(b);
        mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
    int rc = MPSL_OK, docs = 0, done = 0;
    while (rc == MPSL_OK && !done) {
        yaml_event_t e;
        if (!yaml_parser_parse(&p, &e)) {
            rc = syntax_error(b, &p);
            break;
        }
        done = e.type == YAML_STREAM_END_EVENT;
        rc = on_event(b, &e, &docs);
        yaml_event_delete(&e);
    }
    yaml_parser_delete(&p);
    for (int i = 0; i < b->depth; i++) {
        cfg_free(b->stack[i].pending_key);
    }
    for (size_t i = 0; i < b->n_anchors; i++) {
        free(b->anchors[i].name);
    }
    free(b->anchors);
    cfg_node *root = b->root;
    free(b);
    if (rc != MPSL_OK) {
        cfg_free(root);
        return NULL;
    }
    *empty = root == NULL;
    return root;
}

cfg_node *cfg_parse_string(const char *text, const char *name, mpsl_error *err)
{
    int empty;
    const char *nm = name ? name : "<string>";
    cfg_node *root = cfg_parse_text(text ? text : "", text ? strlen(text) : 0, nm, &empty, err);
    if (!root && empty) {
        root = cfg_node_new(CFG_MAP, nm, 1, 1);
        if (!root) {
            mpsl_errs(err, MPSL_ERR_NOMEM, "%s: out of memory", nm);
        }
    }
    return root;
}
