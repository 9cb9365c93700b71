/* cfg_internal.h: the node layout and the helpers shared by the files of core/config/
 * (tree building, the YAML event parser, includes, overrides). Not part of the public API. */
#ifndef MPSL_CFG_INTERNAL_H
#define MPSL_CFG_INTERNAL_H

#include <stddef.h>

#include "config.h"

/* One entry of a mapping (key is a scalar node) or of a sequence (key is NULL). Keys are
 * nodes rather than strings so that messages can point at the key itself. */
typedef struct cfg_entry {
    cfg_node *key;
    cfg_node *val;
} cfg_entry;

struct cfg_node {
    cfg_type type;
    char *file;      /* owned; for nodes made by --set this is "--set a.b.c" */
    int line, col;   /* 1-based; line 0 means "no position inside file" (--set) */
    char *text;      /* scalars: the text as written (never NULL) */
    int quoted;      /* scalars: 1 when written quoted (or tagged !!str): always a string */
    cfg_entry *items;
    size_t n, cap;
};

cfg_node *cfg_node_new(cfg_type type, const char *file, int line, int col);
cfg_node *cfg_scalar_new(const char *file, int line, int col, const char *text, size_t len,
                         int quoted);
/* Append an entry (key NULL for sequences). Takes ownership of key and val only on
 * success; returns MPSL_OK or MPSL_ERR_NOMEM. */
int cfg_append(cfg_node *parent, cfg_node *key, cfg_node *val);
/* Index of key in map, or -1. */
long cfg_find(const cfg_node *map, const char *key);
/* Re-label a whole subtree with a new file name and line/column (used for --set). */
int cfg_relabel(cfg_node *n, const char *file, int line, int col);
/* Deep-merge src into dst (both mappings): nested mappings merge, everything else is
 * replaced by src's value, and so is a mapping whose `plugin` differs from dst's (its other
 * keys belonged to the other plugin). src is consumed (freed) in every case. */
int cfg_merge(cfg_node *dst, cfg_node *src);
/* Nodes in a tree, keys included (as the parser counts them against CFG_MAX_NODES). */
size_t cfg_count_nodes(const cfg_node *n);
/* Plain scalars that YAML reads as null: "", "~", "null", "Null", "NULL". */
int cfg_text_is_null(const char *text);
/* Plain scalars that the YAML 1.2 core schema reads as something other than a string: the
 * null words above, true/false, integers (also 0x, 0o), floats, .inf and .nan. */
int cfg_text_is_typed(const char *text);

/* Parse one YAML document of `len` bytes. Returns the root, or NULL: with *empty set to 1
 * when the stream held no document (not an error), else with err set. */
cfg_node *cfg_parse_text(const char *text, size_t len, const char *name, int *empty,
                         mpsl_error *err);

#endif
