/* init_cache.h: the initial parameters of models a session creates more than once. A model's
 * initial values are a pure function of its parameter declarations (each tensor draws from a
 * stream seeded by its name and the run's seed, model.c), so models of one layout start
 * identical: FedAvg's K clients each create the whole model, MPSL's K clients their
 * tokenizers. Drawing the quickstart's 122,826 normals takes about a millisecond, a second
 * of every run with 1000 clients. The cache remembers each layout it is shown; the second
 * model of a layout leaves a copy of what it drew and every later one copies that instead of
 * drawing: the same bytes. A layout made once (the server's model) costs only its key. */
#ifndef MPSL_INIT_CACHE_H
#define MPSL_INIT_CACHE_H

#include <stdint.h>

/* What decides one declared tensor's initial values, compared byte for byte (zero any
 * padding before filling one). */
typedef struct init_decl {
    int64_t offset, count;      /* in floats, in the model's flat buffer */
    uint64_t stream;            /* the seed of the tensor's random stream */
    int32_t init;               /* mpsl_init */
    int32_t trainable;
    float scale;
    int32_t unused;             /* keeps the struct free of implicit padding */
} init_decl;

typedef struct init_cache init_cache;

/* Fill param (n floats) and *n_trainable from the cached copy of the layout
 * decls[0..n_decls) and return the layout's trainable mask (n), which the cache owns and
 * every model of the layout may share read-only while the cache lives (no model changes its
 * mask after it is made: 0.12 MB less per FedAvg client). NULL: the layout has no copy yet
 * (draw, then offer). */
const uint8_t *init_cache_copy(const init_cache *c, const init_decl *decls, int n_decls,
                               int64_t n, float *param, int64_t *n_trainable);

/* Show the cache a freshly drawn model: the first time a layout is seen only its key is kept,
 * the second time a copy of its values. *c is made on first use; without memory nothing is
 * cached (models then draw, as they would anyway). */
void init_cache_offer(init_cache **c, const init_decl *decls, int n_decls, int64_t n,
                      const float *param, const uint8_t *trainable, int64_t n_trainable);

void init_cache_free(init_cache *c);

#endif
