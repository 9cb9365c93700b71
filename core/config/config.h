/* config.h: experiment files as a tree of YAML nodes that remember where they came from.
 * Loading resolves `include:` fragments and refuses malformed YAML (duplicate keys,
 * self-referencing anchors, alias bombs, very deep nesting) with file:line:column messages;
 * cfg_parse_params() validates a mapping against a table of mpsl_param_spec. */
#ifndef MPSL_CONFIG_H
#define MPSL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "mpsl/plugin.h"

typedef enum cfg_type { CFG_SCALAR = 0, CFG_SEQ, CFG_MAP } cfg_type;

typedef struct cfg_node cfg_node;

/* Limits that keep hostile files from hanging or exhausting the stack. */
#define CFG_MAX_DEPTH 64          /* nesting of mappings/sequences */
#define CFG_MAX_NODES 200000      /* nodes after alias expansion, also of all includes together */
#define CFG_MAX_INCLUDE_DEPTH 8
#define CFG_MAX_KEY_CHARS 255     /* a dotted --set or sweep key, e.g. model.encoder.depth */

/* Load a file. Top-level `include:` (a string or a list of strings) names fragments, resolved
 * relative to the including file first, then to the configs/ directories given in
 * search_dirs (NULL-terminated, may be NULL). Fragments are merged in order, deep-merging
 * mappings; the including file's own keys win. The `include` key is removed from the result.
 * Returns NULL with err set ("file:line:column: message"). */
cfg_node *cfg_load_file(const char *path, const char *const *search_dirs, mpsl_error *err);

/* Parse YAML text; `name` is used as the file name in messages. No includes are resolved. */
cfg_node *cfg_parse_string(const char *text, const char *name, mpsl_error *err);

void cfg_free(cfg_node *n);

/* Apply `a.b.c=value` (from --set). Creates missing mappings along the path. The value is
 * parsed as a YAML flow scalar/sequence/mapping ("4", "[1,2]", "{x: 1}"). Its position is
 * reported as "--set a.b.c". */
int cfg_apply_override(cfg_node *root, const char *assignment, mpsl_error *err);

/* Set the value at a dotted path to a deep copy of `value` (positions kept), creating
 * mappings along the way. Same refusals as cfg_apply_override. */
int cfg_set(cfg_node *root, const char *dotted, const cfg_node *value, mpsl_error *err);

/* Inspection. */
cfg_type cfg_node_type(const cfg_node *n);
const char *cfg_scalar(const cfg_node *n);            /* NULL unless a scalar */
size_t cfg_len(const cfg_node *n);                    /* entries of a map or seq */
const cfg_node *cfg_at(const cfg_node *n, size_t i);  /* i-th value of a map or seq */
const char *cfg_key_at(const cfg_node *n, size_t i);  /* i-th key of a map */
const cfg_node *cfg_get(const cfg_node *map, const char *key); /* NULL if absent */
const cfg_node *cfg_path(const cfg_node *root, const char *dotted); /* "model.encoder" */
/* "file:line:column" of the node (line/column 1-based) written into buf; returns buf. */
const char *cfg_where(const cfg_node *n, char *buf, size_t size);
/* The position of the key `key` in map (or of the map itself when absent). */
const char *cfg_where_key(const cfg_node *map, const char *key, char *buf, size_t size);

/* 1 when the scalar was written quoted (or tagged !!str): it is a string even if it reads
 * "5" or "true". 0 for plain scalars and non-scalars. */
int cfg_scalar_quoted(const cfg_node *n);
/* 1 for NULL and for plain null scalars (empty, "~", "null", "Null", "NULL"). */
int cfg_is_null(const cfg_node *n);
/* 1 when two trees mean the same: same types, keys in the same order, same scalar texts,
 * and quoted-ness equal wherever it matters (quoted "5" differs from plain 5; a plain and a
 * quoted "a b" are the same string). Positions are not compared. */
int cfg_equal(const cfg_node *a, const cfg_node *b);

/* Deep copy of a subtree (positions kept). */
cfg_node *cfg_clone(const cfg_node *n);
/* Remove key from a map (no-op when absent). */
void cfg_remove(cfg_node *map, const char *key);

/* Emit canonical YAML (block style, keys in file order, strings quoted when needed) of the
 * resolved tree; parsing the text again gives an equal tree. Caller frees with free(). */
char *cfg_to_yaml(const cfg_node *n);

/* The same tree as one line of JSON (json.c): plain numbers, booleans and nulls typed as YAML
 * reads them, everything else a string. Caller frees with free(); NULL when out of memory. */
char *cfg_to_json(const cfg_node *n);

/* Validate the mapping `map` against specs and fill `out` (params_size bytes, zeroed first).
 * map may be NULL (all defaults). Keys listed in `ignore` (NULL-terminated, may be NULL) are
 * skipped (e.g. "plugin"). `context` names the section in messages ("model.encoder").
 * Refuses: a non-mapping, unknown keys (with "did you mean 'x'?" when one is close), wrong
 * types, NaN/inf, values outside [min,max], ENUM values not in choices, missing required
 * keys. Every message starts with file:line:column. */
int cfg_parse_params(const cfg_node *map, const mpsl_param_spec *specs, size_t n_specs,
                     void *out, size_t params_size, const char *context,
                     const char *const *ignore, mpsl_error *err);

/* The closest of `candidates` (n of them) to `word` within a small edit distance, or NULL. */
const char *cfg_did_you_mean(const char *word, const char *const *candidates, size_t n);

#endif
