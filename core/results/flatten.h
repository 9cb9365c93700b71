/* flatten.h: a run's resolved config (JSON) as dotted key = value pairs, the form `mpsl diff`
 * and the run groups of `mpsl compare` compare configs in: "strategy.plugin" = "fedprox",
 * "model.tokenizers[0].dim" = "64". */
#ifndef MPSL_RESULTS_FLATTEN_H
#define MPSL_RESULTS_FLATTEN_H

#include <stddef.h>

#include "mpsl/plugin.h"

typedef struct config_pair {
    char *key;   /* dotted path; array elements as key[i] (what json_extract's '$.'||key reads) */
    char *value; /* a string without quotes, a number in its shortest exact form, true, false,
                  * null; an empty object or array as {} or [] */
} config_pair;

/* The leaves of config_json (an object) in document order; *pairs is malloc'd (free with
 * config_pairs_free). MPSL_ERR_INVALID naming the problem when the text is not a JSON object. */
int config_flatten(const char *config_json, config_pair **pairs, size_t *n, mpsl_error *err);
void config_pairs_free(config_pair *pairs, size_t n);

/* The value of key among pairs, or NULL when it is not there. */
const char *config_pairs_get(const config_pair *pairs, size_t n, const char *key);

/* The resolved config of run `id` as JSON (malloc'd) in *json: its config_json, or, where that
 * is NULL (runs recorded before schema 4 by an mpsl that did not write it) its config_yaml
 * converted. *json is NULL when the run stored no config. MPSL_ERR_INVALID naming the run when
 * there is no such run; MPSL_ERR_IO with SQLite's message on a read error. */
struct sqlite3;
int config_of_run(struct sqlite3 *db, long long id, char **json, mpsl_error *err);

#endif
